"""The claim side of ``share_work``: which free buckets a process claims next, and how many.

``Sharer.take`` makes one *pass*: it reads the claims (or reuses the read that checked the
last claim, when the pass follows it at once), works out which pending buckets are free,
orders them and claims a batch of them in one commit, which also marks the finished buckets
done, renews the ones held and releases the ones the last claim lost.

* Order. Alone in its view, a process goes through the buckets in sorted order from its
  start place; after a claim that lost buckets to another process it jumps to a random place
  among the free buckets (processes that start at once spread out). While others hold claims,
  every holder has a region (from its start place to the next holder's): a process claims
  its own region from the front, then steals from the back of the others' regions, the one
  with the most free items first, so two processes meet only at a region's last buckets.
* Size (guided self-scheduling). A batch holds at most a sixteenth of all the items and at
  most the free items divided by twice the number of holders, so batches shrink as the work
  runs out; but at least twice the items the last pass cost (its reads and commits against
  the items' compute time), up to ``GROWTH`` sixteenths and a fair share, and at least
  ``min_batch`` (the calls an executor runs at once).
* Waiting. With nothing free, ``Sharer.wait`` sets aside the buckets done elsewhere and polls
  until every bucket is done: every half ``poll_seconds`` while the others' remaining work
  is short, else a poll grows (up to ``POLL_GROWTH`` times) while nothing changes, as a poll
  costs requests on object storage. The results of buckets done elsewhere are looked up at
  most every ``LOOK_UP_SECONDS`` while the others' remaining work is longer than that, and
  once at the end. A row still missing then is not computed again when its bucket was
  finished with failed rows in this run (``ClaimBook.status``): it failed there, and is
  handed to ``failed_elsewhere``; a missing row of a bucket done without failures (stored for
  the finisher under another ``cache_match``) is computed here.
"""

from __future__ import annotations

import bisect
import math
import random
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from orcapod.functions.engine.claim_logs import ClaimRow
from orcapod.functions.engine.claims import ClaimBook

__all__ = ["GROWTH", "LOOK_UP_SECONDS", "POLL_GROWTH", "Batch", "Sharer"]

#: a costly claim grows a batch up to this many times a sixteenth of the items
GROWTH = 4
#: a waiting process polls at most this many times ``poll_seconds`` apart
POLL_GROWTH = 4
#: a waiting process looks up the buckets done elsewhere at most this often, and at the end
LOOK_UP_SECONDS = 1.0


@dataclass
class Batch:
    """Buckets this process claimed together, and their items."""

    buckets: list[str]
    items: np.ndarray  # the items of buckets nobody else held before: computed at once
    checked: np.ndarray  # the others: their results are looked up first
    renewed: float  # when the claims were written
    renewed_held: list[str]  # the buckets held before, renewed in the same commit
    found: object = None  # what ``look_up`` answered for ``checked``


class Sharer:
    """The claim side of ``share_work``: which buckets are left and how big a batch is."""

    def __init__(
        self,
        book: ClaimBook,
        buckets: dict[str, np.ndarray],
        start: int,
        min_batch: int,
        look_up: Callable[[np.ndarray], object] | None,
        failed_elsewhere: Callable[[np.ndarray], object] | None = None,
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
        self.status: dict[str, tuple[str | None, set[str]]] = {}
        self.lost: list[str] = []  # buckets the last claim lost, released with the next commit
        self.finished: list[str] = []  # finished buckets a pass did not mark (``take``)
        self.done_elsewhere: list[str] = []  # pending buckets done elsewhere, to look up
        #: of the pending buckets, those finished elsewhere with failed rows (by the last
        #: pass); of those set aside, the ones still to look up
        self.failed_done: set[str] = set()
        self.failed_elsewhere: set[str] = set()
        #: where the rows that failed elsewhere go (None: they are computed here)
        self.report_failed = failed_elsewhere
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
    ) -> Batch | None:
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
        self.failed_done = {b for b in pending if status[b][0] == "failed"}
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
            want = max(want, min(cost, GROWTH * self.cap, -(-free_items // len(holders))))
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
        now = time.monotonic()
        self.claim_seconds = now - started
        return self.hold(taken, rows, now, renew)

    def hold(
        self,
        taken: Sequence[str],
        rows: dict[str, list[ClaimRow]],
        at: float,
        renewed_held: Sequence[str] = (),
    ) -> Batch:
        """The batch of the buckets ``taken``, claimed by this process at ``at`` (``rows``:
        the claims read after that claim); they are no longer pending. Used by ``take``,
        and for buckets claimed before sharing began (``share_work``'s ``held``)."""
        book, buckets = self.book, self.buckets
        for bucket in taken:
            self.pending.pop(bucket, None)
        # a bucket only this process ever claimed holds no results computed under a claim:
        # its items are computed without looking their results up
        others = {b for b in taken if any(r[0] != book.owner for r in rows.get(b, []))}
        fresh = [buckets[b] for b in taken if b not in others]
        seen = [buckets[b] for b in taken if b in others]
        claimed = Batch(list(taken), _joined(fresh), _joined(seen), at, list(renewed_held))
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
        that found nothing new, up to ``POLL_GROWTH`` times ``poll_seconds``: a poll costs
        requests on object storage that slow the others down; but while the others' pending
        work, at this process's last time per item and spread over them, is that short, a
        poll is half ``poll_seconds``). After a claim that lost every bucket to other
        processes the pause is a random part of ``poll_seconds`` instead. The results of the
        buckets set aside are looked up (``look_up_done``: True when it computed rows) once
        every bucket is done, or at most every ``LOOK_UP_SECONDS`` meanwhile while the
        others' pending work is longer than that."""
        pending = self.pending
        done = [b for b in pending if self.status[b][0]]
        for bucket in done:
            del pending[bucket]
        self.done_elsewhere.extend(done)
        self.failed_elsewhere.update(b for b in done if b in self.failed_done)
        # the others' pending work, spread over them, at this process's last time per item
        holders = {o for b in pending for o in self.status[b][1]} - {self.book.owner}
        left = sum(len(self.buckets[b]) for b in pending) * self.item_seconds
        left /= max(1, len(holders))
        now = time.monotonic()
        failed = False
        # a look-up meanwhile only while the wait is long: else the one at the end finds
        # those results with the others', and one meanwhile would only add one
        if not pending or (left > LOOK_UP_SECONDS and now - self.looked_at >= LOOK_UP_SECONDS):
            failed = self.look_up_done(compute, still_missing)
        if not pending:
            return failed
        if self.lost_all:  # free buckets are left: look again soon, at a random moment
            self.lost_all = False
            time.sleep(self.random.uniform(0, poll_seconds))
            return failed
        if left <= POLL_GROWTH * poll_seconds:
            # their last buckets are done any moment: a poll every half ``poll_seconds``
            # finds them soon after (each process's run ends only once it has seen them)
            self.poll = poll_seconds / 2
        else:
            self.poll = poll_seconds if done or self.poll == 0 else self.poll * 2
            self.poll = min(self.poll, POLL_GROWTH * poll_seconds)
        time.sleep(max(0.0, self.read_at + self.poll - time.monotonic()))
        return failed

    def look_up_done(
        self,
        compute: Callable[[np.ndarray, Callable[[], None]], object],
        still_missing: Callable[[np.ndarray], np.ndarray],
    ) -> bool:
        """Take note of the results of the buckets set aside as done elsewhere (one look-up).
        A row still missing in a bucket finished with failed rows in this run failed there:
        it goes to ``failed_elsewhere`` (when given), not computed again; the other rows
        still missing are computed here (True when there were any)."""
        self.looked_at = time.monotonic()
        items = _joined([self.buckets[b] for b in self.done_elsewhere])
        failed = _joined(
            [self.buckets[b] for b in self.done_elsewhere if b in self.failed_elsewhere]
        )
        self.failed_elsewhere.difference_update(self.done_elsewhere)
        self.done_elsewhere = []
        left = still_missing(items) if len(items) else items
        if len(left) and len(failed) and self.report_failed is not None:
            there = np.isin(left, failed)
            if there.any():
                self.report_failed(left[there])
                left = left[~there]
        if len(left):  # finished elsewhere, but missing for this process: computed here
            compute(left, _no_heartbeat)
        return bool(len(left))


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _no_heartbeat() -> None:
    return None
