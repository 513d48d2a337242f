"""``share_work``: how a process goes through the buckets of a ``ClaimBook``.

The claims themselves (the table, what a live claim is, dead holders) are described in
``orcapod.functions.engine.claims``. This module is the loop one process runs over them:

* It claims a batch of free buckets at a time, one batch ahead in a background thread, so
  the next batch is claimed while the current one is computed (batches shrink as free
  buckets run out, and hold at least ``min_batch`` items so a concurrent executor is fed);
  the claim starts shortly before the current batch's estimated end, or when the buckets
  held need renewing (its commit renews them).
* It goes through the buckets in its own order, from ``start``; while other processes hold
  claims, it takes its own region first (up to the next holder's start) and then steals
  from the back of the others' regions (``_Sharer._ordered``); alone in its view, it jumps
  to a random place after a claim lost buckets to another process (so processes that start
  at once spread out instead of fighting over the same buckets). After a claim that lost
  every bucket it commits its finished work and pauses a random part of a poll before the
  next. Buckets a claim lost are released with its next commit, not in one of their own,
  unless the claim was made ahead (the next commit may be a batch away).
* One read of the claims per pass: a pass that follows a claim at once uses the read that
  checked that claim (it holds every bucket's rows).
* It renews what it holds with each claim commit, and every third of the lease when no
  commit came sooner (that renewal commits in a claims thread while the calls go on);
  results are committed by the caller's ``flush`` (its flush policy, or at the latest every
  half lease) before their buckets are marked done.
* It looks up the results of a claimed bucket only if another process held it before (a
  holder that died or let go may have stored some); a bucket only this process ever claimed
  is computed without a look-up.
* With nothing left to claim it polls, from every ``poll_seconds`` up to four times that
  while nothing changes (on object storage a poll costs requests that slow the others),
  taking over expired buckets (or those of holders that are surely dead), until every
  bucket is done; it looks up the results of the buckets others finished at most once a
  second meanwhile, and once at the end.
* An error releases every bucket it holds, so the others take them at once.

Decisions, measured on an S3 API server on loopback (4 processes, 200 rows of 50 ms): there
every request costs, and the requests grow with the commits to the claims table times the
processes reading them (each reads every other's commit), so the loop keeps both few; the
claims are read whole (a small table) rather than by bucket.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import random
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np

from orcapod.errors import OrcapodError
from orcapod.functions.engine.claims import ClaimBook, ClaimRow

__all__ = ["share_work"]

#: a costly claim grows a batch up to this many times a sixteenth of the items
_GROWTH = 4
#: the claim of the next batch starts this many passes (as long as the last claim took)
#: before the current batch's estimated end
_AHEAD_PASSES = 2
#: a waiting process polls at most this many times ``poll_seconds`` apart
_POLL_GROWTH = 4
#: a waiting process looks up the buckets done elsewhere at most this often, and at the end
_LOOK_UP_SECONDS = 1.0


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
    item_seconds: float = 0.0,
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
    is never smaller than twice the items its claiming costs (the last pass's reads and
    commits, timed against the items' compute time; ``item_seconds`` is the estimate before
    the first batch), up to ``_GROWTH`` sixteenths of the items and the free items divided
    by the number of processes: a tail of one-item batches would spend more on claiming
    than on the work, and on object storage, where a pass costs many requests and every
    commit costs each other process reads, a process makes few passes. Buckets other
    processes finished are looked up (their rows become known) only once this process has
    nothing left to claim, while it waits for the others' last buckets, so a pass with work
    to do reads only the claims.

    Claiming runs one batch ahead: while a batch computes, a background thread claims the
    next one (its reads and commits overlap the calls instead of adding to them), starting
    two passes (as long as the last claim took) before the batch's estimated end, or
    earlier when the buckets held need renewing; that commit also renews the buckets held
    and marks done those whose results are committed (so a process makes few commits that
    only renew: on object storage every commit costs each other process reads).
    Results are not committed per batch: the caller's own flushes (``compute`` may commit as
    it goes) and ``flush()`` at the latest every half lease, before waiting for others and at
    the end; a bucket is marked done after a ``flush()`` that followed its compute. ``compute``,
    ``flush`` and ``still_missing`` always run in the calling thread; the background thread
    touches only the claims table, and, when ``look_up`` is given, looks the claimed items'
    results up: ``look_up(items)`` (a read only) runs right after the claim, in that thread,
    and ``still_missing(items, found)`` gets its answer. An error releases the buckets held.
    """
    sharer = _Sharer(book, buckets, start, min_batch, look_up)
    sharer.item_seconds = item_seconds
    held = _Held(book, flush)
    # two claims threads: the claim made ahead, and a renewal that must not wait behind it
    with ThreadPoolExecutor(2, thread_name_prefix="orcapod-claims") as pool:
        ahead = _Ahead(pool, sharer, held)
        try:
            while sharer.pending or ahead.future is not None:
                batch = (
                    ahead.result() if ahead.future is not None else sharer.take(*held.to_write())
                )
                if batch is None:  # nothing to claim now
                    if sharer.pending:
                        # others may be waiting for these (after a claim that lost every
                        # bucket with nothing to mark done, the next claim releases them)
                        if not sharer.lost_all or held.unsettled():
                            held.settle(sharer.take_lost(), sharer.take_finished())
                        if sharer.wait(compute, still_missing, poll_seconds) and flush:
                            flush()
                    continue
                held.claimed(batch)
                items = batch.items  # (none when its rows were computed before claiming)
                if len(batch.checked):  # buckets others held before: what did they store?
                    found = () if look_up is None else (batch.found,)
                    left = still_missing(batch.checked, *found)
                    items = np.concatenate([items, left]) if len(left) else items
                if len(items):
                    computing = time.monotonic()
                    # the next batch is claimed while this one computes, in time for its end
                    ahead.due = (
                        computing
                        + len(items) * sharer.item_seconds
                        - _AHEAD_PASSES * (sharer.claim_seconds)
                    )
                    compute(items, held.heartbeat(ahead, pool))
                    sharer.item_seconds = (time.monotonic() - computing) / len(items)
                held.computed(batch.buckets)
            if sharer.look_up_done(compute, still_missing) and flush:
                flush()
        except BaseException:
            if ahead.future is not None:  # let the claim finish first
                ahead.future.cancel()
                wait([ahead.future])
                with contextlib.suppress(BaseException):
                    following = ahead.future.result()
                    if following is not None:
                        held.claimed(following)
            if held.renewing is not None:  # (a renewal must not land after the release)
                wait([held.renewing])
            with contextlib.suppress(OrcapodError):  # others take them over at once
                book.renew(
                    (),
                    finished=sharer.take_finished(),
                    released=held.buckets() + sharer.take_lost(),
                )
            raise
    held.settle(sharer.take_lost(), sharer.take_finished())


@dataclass
class _Batch:
    """Buckets this process claimed together, and their items."""

    buckets: list[str]
    items: np.ndarray  # the items of buckets nobody else held before: computed at once
    checked: np.ndarray  # the others: their results are looked up first
    renewed: float  # when the claims were written
    renewed_held: list[str]  # the buckets held before, renewed in the same commit
    found: object = None  # what ``look_up`` answered for ``checked``


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
        self.renewing: Future[None] | None = None  # a renewal committing in the claims thread

    def buckets(self) -> list[str]:
        return list(self.written)

    def claimed(self, batch: _Batch) -> None:
        for bucket in batch.buckets:
            self.written[bucket] = batch.renewed
        for bucket in batch.renewed_held:
            if bucket in self.written:
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

    def unsettled(self) -> bool:
        """Are there computed buckets not yet marked done?"""
        return bool(self.uncommitted or self.committed)

    def _flush(self) -> None:
        if self.uncommitted and self.flush is not None:
            self.flush()
        self.committed.extend(self.uncommitted)
        self.uncommitted = []

    def to_write(self) -> tuple[list[str], list[str]]:
        """``(finished, renew)`` for the next claim commit: the committed buckets (to be
        marked done, no longer held) and the others held (counted as renewed once a claim
        commit wrote them: ``claimed``)."""
        finished, self.committed = self.committed, []
        for bucket in finished:
            self.written.pop(bucket, None)
        return finished, list(self.written)

    def settle(self, released: Sequence[str] = (), finished: Sequence[str] = ()) -> None:
        """Commit every computed result and mark its buckets (and ``finished``) done,
        releasing ``released`` in the same commit."""
        self._flush()
        done, self.committed = [*finished, *self.committed], []
        for bucket in done:
            self.written.pop(bucket, None)
        self.book.renew((), finished=done, released=released)

    def heartbeat(self, ahead: _Ahead, pool: ThreadPoolExecutor) -> Callable[[], None]:
        """Starts the claim of the next batch once it is due (``ahead.due``) or the buckets
        held need renewing (the claim's commit renews them); renews the buckets held (and
        the next batch's, once claimed) when the oldest claim was written a third of the
        lease ago and no claim is on its way (or it has been on its way for another third):
        the commits run in ``pool`` (claims threads), so the calls go on meanwhile; a
        renewal's error is raised at the next beat."""
        every = self.book.lease_seconds / 3

        def beat() -> None:
            if self.renewing is not None and self.renewing.done():
                renewing, self.renewing = self.renewing, None
                renewing.result()  # (raises what the renewal raised)
            now = time.monotonic()
            oldest = min(self.written.values(), default=now)
            due = now >= ahead.due or now - oldest >= every
            if ahead.future is None and due and ahead.start():
                return
            if not self.written or self.renewing is not None:
                return
            following = None
            if ahead.future is not None:
                if not ahead.future.done():
                    if now - oldest < 2 * every:  # its commit will renew them
                        return
                elif not ahead.future.exception():
                    following = ahead.future.result()  # its commit renewed what was held then
                    if following is not None:
                        for bucket in following.renewed_held:
                            if bucket in self.written:
                                self.written[bucket] = max(self.written[bucket], following.renewed)
                        oldest = min(self.written.values())
            if now - oldest < every:
                return
            renew = list(self.written) + ([] if following is None else following.buckets)
            self.renewing = pool.submit(self.book.renew, renew)
            for bucket in self.written:
                self.written[bucket] = now

        return beat


class _Ahead:
    """The claim of the next batch, made in a claims thread while a batch computes: started
    by the heartbeat once ``due`` (a few passes before the batch's estimated end, so the
    claim lands in time, and its read is recent: fewer buckets lost to other processes) or
    when the buckets held need renewing (the claim's commit renews them: one commit instead
    of two)."""

    def __init__(self, pool: ThreadPoolExecutor, sharer: _Sharer, held: _Held) -> None:
        self.pool = pool
        self.sharer = sharer
        self.held = held
        self.future: Future[_Batch | None] | None = None
        self.due = 0.0

    def start(self) -> bool:
        """Start the claim (True), unless it runs already or nothing is left to claim."""
        if self.future is not None or not self.sharer.pending:
            return False
        self.future = self.pool.submit(self.sharer.take, *self.held.to_write(), ahead=True)
        return True

    def result(self) -> _Batch | None:
        assert self.future is not None
        future, self.future = self.future, None
        return future.result()


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
        #: every bucket's place in the sorted order, and this process's start place in it
        self.places = {bucket: i for i, bucket in enumerate(order)}
        self.start = start % len(order) if order else 0
        order = order[self.start :] + order[: self.start]
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
        self.lost: list[str] = []  # buckets the last claim lost, released with the next commit
        self.finished: list[str] = []  # finished buckets a pass did not mark (``take``)
        self.done_elsewhere: list[str] = []  # pending buckets done elsewhere, to look up
        self.looked_at = -math.inf
        self.poll = 0.0  # the current wait between polls
        self.read_at = 0.0  # when the claims the last pass used were read
        self.lost_all = False  # the last claim lost every bucket of its batch
        #: the next pass may use the rows read by the last claim (``_rows``)
        self.reuse = False

    def _rows(self) -> dict[str, list[ClaimRow]]:
        """The claim rows of the pending buckets: those the last claim read, when this pass
        follows that claim at once (its read is younger than a pass takes: a read now would
        tell little more), else a new read."""
        latest, reuse, self.reuse = self.book.latest, self.reuse, False
        now = time.monotonic()
        if reuse and latest is not None and now - latest[0] <= self.claim_seconds:
            self.read_at = latest[0]
            return latest[1]
        self.read_at = now
        return self.book.rows(list(self.pending))

    def _ordered(self, free: list[str], holders: set[str]) -> list[str]:
        """The free buckets in the order this process claims them while other processes
        hold claims too. Each holder has a region: the buckets from its start place (for
        another process, ``zlib.crc32`` of its owner id, as ``compute_shared`` places a
        process) up to the next holder's. This process's own region comes first, from its
        start; then the others' regions, the one with the most free items first, each from
        its end: a process claims its own region from the front, so two processes meet
        only at a region's last buckets (walking the same way from their starts, one would
        run into the other's next buckets at every claim)."""
        n, places = len(self.places), self.places
        starts = sorted(
            (self.start if owner == self.book.owner else zlib.crc32(owner.encode()) % n, owner)
            for owner in holders
        )
        firsts = [place for place, _ in starts]
        regions: dict[str, list[tuple[int, str]]] = {owner: [] for _, owner in starts}
        for bucket in free:
            place = places[bucket]
            first, owner = starts[bisect.bisect_right(firsts, place) - 1]  # (-1: the last)
            regions[owner].append(((place - first) % n, bucket))
        own = sorted(regions.pop(self.book.owner))
        others = sorted(
            (sorted(region, reverse=True) for region in regions.values() if region),
            key=lambda region: -sum(len(self.buckets[b]) for _, b in region),
        )
        return [bucket for region in (own, *others) for _, bucket in region]

    def take_finished(self) -> list[str]:
        """The finished buckets a pass with nothing to claim left to the caller to mark."""
        finished, self.finished = self.finished, []
        return finished

    def take_lost(self) -> list[str]:
        """The buckets the last claim lost (to be released by the caller's next commit)."""
        lost, self.lost = self.lost, []
        return lost

    def take(
        self, finished: Sequence[str], renew: Sequence[str], ahead: bool = False
    ) -> _Batch | None:
        """Claim the next batch (marking ``finished`` done, renewing ``renew`` and releasing
        the buckets the last claim lost, in the same commit); None when every pending bucket
        is done or held by someone else, committing nothing (the caller settles next, and
        marks ``finished`` done then: ``take_finished``), or when the claim lost every bucket
        of its batch to other processes (the caller settles, releasing them, and ``wait``
        pauses a random part of a poll before the next pass: processes contending for the
        last free buckets stop claiming them at the same moments). A pass never sleeps
        here: it runs in a claims thread while the caller computes, and a caller with
        nothing left to compute must not wait behind it to commit its finished work.
        ``ahead``: the pass runs while the caller computes a batch, so the buckets a claim
        lost entirely are released at once (the caller's next commit may be a batch away,
        and until then nobody takes them)."""
        book, buckets, pending = self.book, self.buckets, self.pending
        started = time.monotonic()
        rows = self._rows()
        status = {bucket: book.status(rows.get(bucket, [])) for bucket in pending}
        self.status = status
        lost = set(self.lost)
        free = [
            b
            for b in pending
            if not status[b][0] and not status[b][1] - {book.owner} and b not in lost
        ]
        if not free:  # (the caller's ``settle`` writes ``finished`` and the lost ones)
            self.finished.extend(finished)
            return None
        holders = {o for b in pending for o in status[b][1]} | {book.owner}
        if len(holders) > 1:  # each process in a region of its own, stealing from the back
            free = self._ordered(free, holders)
        elif self.collided:  # two processes at one end of the free buckets: part ways
            turn = self.random.randrange(len(free))
            free = free[turn:] + free[:turn]
        free_items = sum(len(buckets[b]) for b in free)
        want = max(1, min(self.cap, -(-free_items // (2 * len(holders)))))
        if self.item_seconds > 0 and self.claim_seconds > 0:
            # a costly claim (object storage) takes more per pass, up to a fair share
            cost = int(2 * self.claim_seconds / self.item_seconds) + 1
            want = max(want, min(cost, _GROWTH * self.cap, -(-free_items // len(holders))))
        want = max(want, self.min_batch)
        batch, size = [], 0
        for bucket in free:
            if size >= want:
                break
            batch.append(bucket)
            size += len(buckets[bucket])
        taken = book.claim(
            batch, finished=finished, renew=renew, released=self.take_lost(), release_lost=False
        )
        self.reuse = True
        self.lost = [b for b in batch if b not in taken]
        self.collided = bool(self.lost)
        if not taken:  # lost to someone else's claim (who may have lost too)
            self.lost_all = True
            if ahead:
                book.release(self.take_lost())
            return None
        for bucket in taken:
            del pending[bucket]
        now = time.monotonic()
        self.claim_seconds = now - started
        # a bucket only this process ever claimed holds no results computed under a claim:
        # its items are computed without looking their results up
        others = {b for b in taken if any(r[0] != book.owner for r in rows.get(b, []))}
        fresh = [buckets[b] for b in taken if b not in others]
        seen = [buckets[b] for b in taken if b in others]
        claimed = _Batch(taken, _joined(fresh), _joined(seen), now, list(renew))
        if self.look_up is not None and len(claimed.checked):
            claimed.found = self.look_up(claimed.checked)
        return claimed

    def wait(
        self,
        compute: Callable[[np.ndarray, Callable[[], None]], object],
        still_missing: Callable[[np.ndarray], np.ndarray],
        poll_seconds: float,
    ) -> bool:
        """Nothing to claim: set aside the pending buckets done elsewhere; while some are not
        done yet, wait until a poll has passed since the last read of the claims (the
        caller's settling and the look-ups count towards it; a poll is longer after each one
        that found nothing new, up to ``_POLL_GROWTH`` times ``poll_seconds``: a poll costs
        requests on object storage that slow the others down; but not while the others'
        pending work, at this process's last time per item, is that short). After a claim
        that lost every bucket to other processes the pause is a random part of
        ``poll_seconds`` instead. The results of the buckets set aside are looked up (and the
        rows that failed there computed: True when there were any) once every bucket is
        done, or at most every ``_LOOK_UP_SECONDS`` meanwhile."""
        pending = self.pending
        done = [b for b in pending if self.status[b][0]]
        for bucket in done:
            del pending[bucket]
        self.done_elsewhere.extend(done)
        now = time.monotonic()
        failed = False
        if not pending or now - self.looked_at >= _LOOK_UP_SECONDS:
            failed = self.look_up_done(compute, still_missing)
        if not pending:
            return failed
        if self.lost_all:  # free buckets are left: look again soon, at a random moment
            self.lost_all = False
            time.sleep(self.random.uniform(0, poll_seconds))
            return failed
        # the others' pending work, spread over them: while it is short, their last buckets
        # are done any moment, and a poll every ``poll_seconds`` finds them soon after
        holders = {o for b in pending for o in self.status[b][1]} - {self.book.owner}
        left = sum(len(self.buckets[b]) for b in pending) * self.item_seconds
        soon = left <= _POLL_GROWTH * poll_seconds * max(1, len(holders))
        self.poll = poll_seconds if done or soon or self.poll == 0 else self.poll * 2
        self.poll = min(self.poll, _POLL_GROWTH * poll_seconds)
        time.sleep(max(0.0, self.read_at + self.poll - time.monotonic()))
        return failed

    def look_up_done(
        self,
        compute: Callable[[np.ndarray, Callable[[], None]], object],
        still_missing: Callable[[np.ndarray], np.ndarray],
    ) -> bool:
        """Take note of the results of the buckets set aside as done elsewhere, computing the
        rows that failed there: True when there were any."""
        self.looked_at = time.monotonic()
        items = _joined([self.buckets[b] for b in self.done_elsewhere])
        self.done_elsewhere = []
        left = still_missing(items) if len(items) else items
        if len(left):  # finished elsewhere, but these rows failed there: try here
            compute(left, _no_heartbeat)
        return bool(len(left))


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _no_heartbeat() -> None:
    return None
