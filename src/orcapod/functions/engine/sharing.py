"""``share_work``: how a process goes through the buckets of a ``ClaimBook``.

The claims themselves (the table, what a live claim is, dead holders) are described in
``orcapod.functions.engine.claims``. This module is the loop one process runs over them:

* It claims a batch of free buckets at a time, one batch ahead in a background thread, so
  the next batch is claimed while the current one is computed (batches shrink as free
  buckets run out, and hold at least ``min_batch`` items so a concurrent executor is fed).
* It goes through the buckets in its own order, from ``start``, and jumps to a random place
  only after a claim lost buckets to another process (so processes that start at once
  spread out instead of fighting over the same buckets).
* It renews what it holds with each claim commit, and on its own every third of the lease
  when no commit came sooner; results are committed by the caller's ``flush`` (its flush
  policy, or at the latest every half lease) before their buckets are marked done.
* With nothing left to claim it polls every ``poll_seconds``, taking over expired buckets
  (or those of holders that are surely dead), until every bucket is done.
* An error releases every bucket it holds, so the others take them at once.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np

from orcapod.errors import OrcapodError
from orcapod.functions.engine.claims import ClaimBook

__all__ = ["share_work"]


def share_work(
    book: ClaimBook,
    buckets: dict[str, np.ndarray],
    compute: Callable[[np.ndarray, Callable[[], None]], object],
    still_missing: Callable[..., np.ndarray],
    poll_seconds: float,
    start: int = 0,
    min_batch: int = 1,
    look_up: Callable[[np.ndarray], object] | None = None,
    flush: Callable[[], None] | None = None,
) -> None:
    """Compute every bucket's items exactly once across the processes sharing ``book``.

    ``buckets``: bucket -> the items (e.g. packet indices) of this process's work in it (a
    bucket may have none left: it is claimed and marked done all the same).
    ``compute(items, heartbeat)`` computes them, calling ``heartbeat()`` between items;
    ``flush()`` commits every result computed so far (None: ``compute`` commits its own
    results before returning). ``still_missing(items)`` returns the items whose results are
    not stored yet and takes note of the others (e.g. records them as reused; it is never
    asked about an item twice once the item is found). ``start``: where this process begins
    in the sorted bucket order, going on from there (processes starting at different places
    meet less often; after a claim that lost buckets to another process, the next batch
    starts at a random place among the free buckets). ``min_batch``: the fewest items
    a batch takes while there are that many (the calls the executor runs at once: a smaller
    batch would leave workers idle).

    A process claims several buckets per commit, a *batch* (guided self-scheduling): at most
    a sixteenth of all the items, and at most the free items divided by twice the number of
    processes seen holding claims, so batches shrink as the work runs out and the processes
    finish at nearly the same time, while a process alone needs about twenty claims. A batch
    never shrinks below twice the items its claiming costs (a pass's reads and commits,
    timed against the items' compute time): a tail of one-item batches would spend more on
    claiming than on the work. Buckets other processes finished are looked up (their rows
    become known) only once this process has nothing left to claim, while it waits for the
    others' last buckets, so a pass with work to do reads only the claims.

    Claiming runs one batch ahead: while a batch computes, a background thread claims the
    next one (its reads and commits overlap the calls instead of adding to them); that
    commit also renews the buckets held and marks done those whose results are committed.
    Results are not committed per batch: the caller's own flushes (``compute`` may commit as
    it goes) and ``flush()`` at the latest every half lease, before waiting for others and at
    the end; a bucket is marked done after a ``flush()`` that followed its compute. ``compute``,
    ``flush`` and ``still_missing`` always run in the calling thread; the background thread
    touches only the claims table, and, when ``look_up`` is given, looks the claimed items'
    results up: ``look_up(items)`` (a read only) runs right after the claim, in that thread,
    and ``still_missing(items, found)`` gets its answer. An error releases the buckets held.
    """
    sharer = _Sharer(book, buckets, start, min_batch, look_up)
    held = _Held(book, flush)
    ahead: Future[_Batch | None] | None = None
    with ThreadPoolExecutor(1, thread_name_prefix="orcapod-claims") as pool:
        try:
            while sharer.pending or ahead is not None:
                if ahead is not None:
                    batch, ahead = ahead.result(), None
                else:
                    batch = sharer.take(*held.to_write())
                if batch is None:  # nothing to claim now
                    if sharer.pending:
                        held.settle()  # others may be waiting for these
                        if sharer.wait(compute, still_missing, poll_seconds) and flush:
                            flush()
                    continue
                held.claimed(batch)
                if sharer.pending:  # claim the next batch while this one computes
                    ahead = pool.submit(sharer.take, *held.to_write())
                items = batch.items  # (none when its rows were computed before claiming)
                if len(items):
                    found = () if look_up is None else (batch.found,)
                    items = still_missing(items, *found)
                if len(items):
                    computing = time.monotonic()
                    compute(items, held.heartbeat(ahead))
                    sharer.item_seconds = (time.monotonic() - computing) / len(items)
                held.computed(batch.buckets)
        except BaseException:
            if ahead is not None:  # let the claim finish first
                ahead.cancel()
                wait([ahead])
                with contextlib.suppress(BaseException):
                    following = ahead.result()
                    if following is not None:
                        held.claimed(following)
            with contextlib.suppress(OrcapodError):  # others take them over at once
                book.release(held.buckets())
            raise
    held.settle()


@dataclass
class _Batch:
    """Buckets this process claimed together, and their items."""

    buckets: list[str]
    items: np.ndarray
    renewed: float  # when the claims were written
    found: object = None  # what ``look_up`` answered for the items


class _Held:
    """The buckets this process holds: when their claims were last written, which ones are
    computed, and which of those are committed (to be marked done)."""

    def __init__(self, book: ClaimBook, flush: Callable[[], None] | None) -> None:
        self.book = book
        self.flush = flush
        self.written: dict[str, float] = {}  # held bucket -> when its claim was last written
        self.uncommitted: list[str] = []  # computed, results not yet flushed
        self.uncommitted_since = 0.0  # when the oldest of them was computed
        self.committed: list[str] = []  # results committed, not yet marked done

    def buckets(self) -> list[str]:
        return list(self.written)

    def claimed(self, batch: _Batch) -> None:
        for bucket in batch.buckets:
            self.written[bucket] = batch.renewed

    def computed(self, buckets: Sequence[str]) -> None:
        now = time.monotonic()
        if self.flush is None:  # ``compute`` committed them
            self.committed.extend(buckets)
            return
        if not self.uncommitted:
            self.uncommitted_since = now
        self.uncommitted.extend(buckets)
        if now - self.uncommitted_since >= self.book.lease_seconds / 2:
            self._flush()

    def _flush(self) -> None:
        if self.uncommitted and self.flush is not None:
            self.flush()
        self.committed.extend(self.uncommitted)
        self.uncommitted = []

    def to_write(self) -> tuple[list[str], list[str]]:
        """``(finished, renew)`` for the next claim commit: the committed buckets (now marked
        done, no longer held) and the others held (counted as renewed from now)."""
        finished, self.committed = self.committed, []
        for bucket in finished:
            self.written.pop(bucket, None)
        now = time.monotonic()
        for bucket in self.written:
            self.written[bucket] = now
        return finished, list(self.written)

    def settle(self) -> None:
        """Commit every computed result and mark its buckets done."""
        self._flush()
        finished, self.committed = self.committed, []
        for bucket in finished:
            self.written.pop(bucket, None)
        self.book.finish(finished)

    def heartbeat(self, ahead: Future[_Batch | None] | None) -> Callable[[], None]:
        """Renews the buckets held (and the next batch's, once claimed) when the oldest claim
        was written a third of the lease ago."""
        every = self.book.lease_seconds / 3

        def beat() -> None:
            if not self.written:
                return
            now = time.monotonic()
            if now - min(self.written.values()) < every:
                return
            renew = list(self.written)
            if ahead is not None and ahead.done() and not ahead.exception():
                following = ahead.result()
                renew += [] if following is None else following.buckets
            self.book.renew(renew)
            for bucket in self.written:
                self.written[bucket] = now

        return beat


class _Sharer:
    """The claim side of ``share_work``: which buckets are left and how big a batch is."""

    def __init__(
        self,
        book: ClaimBook,
        buckets: dict[str, np.ndarray],
        start: int,
        min_batch: int,
        look_up: Callable[[np.ndarray], object] | None,
    ) -> None:
        order = sorted(buckets)
        if order:
            order = order[start % len(order) :] + order[: start % len(order)]
        self.book = book
        self.buckets = buckets
        self.pending = dict.fromkeys(order)
        total = sum(len(items) for items in buckets.values())
        self.cap = max(1, -(-total // 16))
        self.min_batch = min_batch
        self.look_up = look_up
        self.random = random.Random(book.owner)
        #: a claim lost buckets to another process: the next pass starts at a random place
        self.collided = False
        # the last claim's time and the last batch's per-item compute time
        self.claim_seconds = self.item_seconds = 0.0
        self.status: dict[str, tuple[bool, set[str]]] = {}

    def take(self, finished: Sequence[str], renew: Sequence[str]) -> _Batch | None:
        """Claim the next batch (marking ``finished`` done and renewing ``renew`` in the same
        commit); None when every pending bucket is done or held by someone else."""
        book, buckets, pending = self.book, self.buckets, self.pending
        while True:
            started = time.monotonic()
            rows = book.rows(list(pending))
            status = {bucket: book.status(rows.get(bucket, [])) for bucket in pending}
            self.status = status
            free = [b for b in pending if not status[b][0] and not status[b][1] - {book.owner}]
            if not free:
                book.renew(renew, finished=finished)
                return None
            if self.collided:  # two processes at one end of the free buckets: part ways
                turn = self.random.randrange(len(free))
                free = free[turn:] + free[:turn]
            holders = {o for b in pending for o in status[b][1]} | {book.owner}
            free_items = sum(len(buckets[b]) for b in free)
            want = max(1, min(self.cap, -(-free_items // (2 * len(holders)))))
            if self.item_seconds > 0:
                cost = int(2 * self.claim_seconds / self.item_seconds) + 1
                want = max(want, min(self.cap, cost))
            want = max(want, self.min_batch)
            batch, size = [], 0
            for bucket in free:
                if size >= want:
                    break
                batch.append(bucket)
                size += len(buckets[bucket])
            taken = book.claim(batch, finished=finished, renew=renew)
            finished = renew = ()
            self.collided = len(taken) < len(batch)
            if not taken:  # lost to someone else's claim: look again at once
                continue
            for bucket in taken:
                del pending[bucket]
            now = time.monotonic()
            self.claim_seconds = now - started
            claimed = _Batch(taken, np.concatenate([buckets[b] for b in taken]), now)
            if self.look_up is not None and len(claimed.items):
                claimed.found = self.look_up(claimed.items)
            return claimed

    def wait(
        self,
        compute: Callable[[np.ndarray, Callable[[], None]], object],
        still_missing: Callable[[np.ndarray], np.ndarray],
        poll_seconds: float,
    ) -> bool:
        """Nothing to claim: take note of the results of the pending buckets done elsewhere
        (computing the rows that failed there: True when there were any); while some are
        not done yet, wait a poll."""
        pending, buckets = self.pending, self.buckets
        done = [b for b in pending if self.status[b][0]]
        left: np.ndarray = np.empty(0, dtype=np.int64)
        if done:
            items = np.concatenate([buckets[b] for b in done])
            left = still_missing(items) if len(items) else items
            for bucket in done:
                del pending[bucket]
            if len(left):  # finished elsewhere, but these rows failed there: try here
                compute(left, _no_heartbeat)
        if pending:
            time.sleep(poll_seconds)
        return bool(len(left))


def _no_heartbeat() -> None:
    return None
