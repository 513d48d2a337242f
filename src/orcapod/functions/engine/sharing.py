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
  from the back of the others' regions (``batches.Sharer``); alone in its view, it jumps
  to a random place after a claim lost buckets to another process (so processes that start
  at once spread out instead of fighting over the same buckets). After a claim that lost
  every bucket it commits its finished work and pauses a random part of a poll before the
  next. Buckets a claim lost are released with its next commit, not in one of their own,
  unless the claim was made ahead (the next commit may be a batch away).
* One read of the claims per pass: a pass that follows a claim at once uses the read that
  checked that claim (it holds every bucket's rows).
* It renews what it holds with each claim commit, and every third of the lease when no
  commit came sooner (that renewal commits in a claims thread while the calls go on; a
  watcher thread beats in place of the calls while one runs longer than a sixth of the
  lease, so a call of hours keeps its bucket);
  results are committed by the caller's ``commits`` (its flush policy, or at the latest every
  half lease; in a committing thread of the caller's, while the calls go on) and a bucket is
  marked done only once the commit holding its results has landed.
* It looks up the results of a claimed bucket only if another process held it before (a
  holder that died or let go may have stored some); a bucket only this process ever claimed
  is computed without a look-up.
* With nothing left to claim it polls, from every ``poll_seconds`` up to four times that
  while nothing changes (on object storage a poll costs requests that slow the others),
  taking over expired buckets (or those of holders that are surely dead), until every
  bucket is done; it looks up the results of the buckets others finished at most once a
  second meanwhile, and once at the end.
* A bucket is finished once its rows were attempted, failed ones included (``failed`` tells
  which buckets held rows that failed here: they are marked ``failed``, not ``done``). A row
  still missing in a bucket another process marked ``failed`` in this run is not attempted
  here: it goes to ``failed_elsewhere``, so a row failing after hours costs its hours once,
  not once per process; the next run retries it (``claims``, "Failed rows").
* An error releases every bucket it holds, so the others take them at once.

Decisions, measured on an S3 API server on loopback (4 processes, 200 rows of 50 ms): there
every request costs, and the requests grow with the commits to the claims table times the
processes reading them (each reads every other's commit), so the loop keeps both few; the
claims are read whole (a small table) rather than by bucket.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait

import numpy as np

from orcapod.errors import OrcapodError
from orcapod.functions.engine.batches import Batch, Sharer
from orcapod.functions.engine.claims import ClaimBook, beating
from orcapod.functions.engine.commits import Commits, SyncCommits

__all__ = ["share_work"]

#: the claim of the next batch starts this many passes (as long as the last claim took)
#: before the current batch's estimated end
_AHEAD_PASSES = 2


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
    commits: Commits | None = None,
    held: Sequence[str] = (),
    failed: Callable[[str], bool] | None = None,
    failed_elsewhere: Callable[[np.ndarray], object] | None = None,
) -> None:
    """Compute every bucket's items exactly once across the processes sharing ``book``.

    ``buckets``: bucket -> the items (e.g. packet indices) of this process's work in it (a
    bucket may have none left: it is claimed and marked done all the same).
    ``compute(items, heartbeat)`` computes them, calling ``heartbeat()`` between items;
    ``commits`` commits the results computed so far (``commits.Commits``: ``flush_soon()``
    may commit them in a thread of its own, counted as ``landed`` once done; a plain
    ``flush()`` callable instead commits them before returning; neither: ``compute`` commits
    its own results before returning). ``still_missing(items)`` returns the items whose results are
    not stored yet and takes note of the others (e.g. records them as reused; it is never
    asked about an item twice once the item is found). ``start``: where this process begins
    in the sorted bucket order, going on from there (processes starting at different places
    meet less often; after a claim that lost buckets to another process, the next batch
    starts at a random place among the free buckets). ``min_batch``: the fewest items
    a batch takes while there are that many (the calls the executor runs at once: a smaller
    batch would leave workers idle). ``held``: buckets this process claimed through ``book``
    before calling (in the book's last claim, whose read ``book.latest`` holds): they are
    the first batch, computed before anything else is claimed. ``failed(bucket)``: did an
    item of ``bucket`` fail here (asked once its batch is computed; the bucket is then marked
    ``failed``, ``ClaimBook.failing``). ``failed_elsewhere(items)``: the items still missing
    in buckets another process marked ``failed`` in this run, not computed here (without it
    they are computed here).

    A process claims several buckets per commit, a *batch* (guided self-scheduling): at most
    a sixteenth of all the items, and at most the free items divided by twice the number of
    processes seen holding claims, so batches shrink as the work runs out and the processes
    finish at nearly the same time, while a process alone needs about twenty claims. A batch
    is never smaller than twice the items its claiming costs (the last pass's reads and
    commits, timed against the items' compute time; ``item_seconds`` is the estimate before
    the first batch), up to ``batches.GROWTH`` sixteenths of the items and the free items divided
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
    it goes) and ``commits.flush_soon()`` at the latest every half lease (the calls go on
    while it commits), ``commits.flush()`` before waiting for others and at the end; a bucket
    is marked done only once a commit taken after its compute has landed. ``compute``,
    ``commits`` and ``still_missing`` are called in the calling thread; the claims threads
    touch only the claims table, and, when ``look_up`` is given, looks the claimed items'
    results up: ``look_up(items)`` (a read only) runs right after the claim, in that thread,
    and ``still_missing(items, found)`` gets its answer. An error releases the buckets held.
    """
    sharer = Sharer(book, buckets, start, min_batch, look_up, failed_elsewhere)
    sharer.item_seconds = item_seconds
    if commits is None and flush is not None:
        commits = SyncCommits(flush)
    holding = _Held(book, commits)
    # two claims threads: the claim made ahead, and a renewal that must not wait behind it
    with ThreadPoolExecutor(2, thread_name_prefix="orcapod-claims") as pool:
        ahead = _Ahead(pool, sharer, holding)
        try:
            first: Batch | None = None
            if held:  # claimed before sharing began (by this book): the first batch
                assert book.latest is not None
                first = sharer.hold(held, book.latest[1], book.latest[0])
            while first is not None or sharer.pending or ahead.future is not None:
                batch: Batch | None
                if first is not None:
                    batch, first = first, None
                else:
                    batch = (
                        ahead.result()
                        if ahead.future is not None
                        else sharer.take(*holding.to_write())
                    )
                if batch is None:  # nothing to claim now
                    if sharer.pending:
                        # others may be waiting for these (after a claim that lost every
                        # bucket with nothing to mark done, the next claim releases them)
                        if not sharer.lost_all or holding.unsettled():
                            holding.settle(
                                sharer.take_lost(), sharer.take_finished(), holding.keep_alive(pool)
                            )
                        if sharer.wait(compute, still_missing, poll_seconds) and commits:
                            commits.flush()
                    continue
                holding.claimed(batch)
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
                    with holding.calls(ahead, pool) as beat:
                        compute(items, beat)
                    sharer.item_seconds = (time.monotonic() - computing) / len(items)
                if failed is not None:  # (before it is marked, with its commit)
                    book.failing.update(b for b in batch.buckets if failed(b))
                holding.computed(batch.buckets)
            # the buckets computed here are marked done first: others may be waiting for them
            holding.settle(sharer.take_lost(), sharer.take_finished(), holding.keep_alive(pool))
            if sharer.look_up_done(compute, still_missing) and commits:
                commits.flush()
        except BaseException:
            if ahead.future is not None:  # let the claim finish first
                ahead.future.cancel()
                wait([ahead.future])
                with contextlib.suppress(BaseException):
                    following = ahead.future.result()
                    if following is not None:
                        holding.claimed(following)
            if holding.renewing is not None:  # (a renewal must not land after the release)
                wait([holding.renewing])
            with contextlib.suppress(OrcapodError):  # others take them over at once
                book.renew(
                    (),
                    finished=sharer.take_finished(),
                    released=[*dict.fromkeys([*held, *holding.buckets(), *sharer.take_lost()])],
                )
            raise


class _Held:
    """The buckets this process holds: when their claims were last written, which ones are
    computed, and which of those are committed (to be marked done)."""

    def __init__(self, book: ClaimBook, commits: Commits | None) -> None:
        self.book = book
        self.commits = commits
        self.written: dict[str, float] = {}  # held bucket -> when its claim was last written
        #: computed, results not known committed: (bucket, ``commits.taken`` then, when)
        self.uncommitted: list[tuple[str, int, float]] = []
        self.committed: list[str] = []  # results committed, not yet marked done
        self.renewing: Future[None] | None = None  # a renewal committing in the claims thread
        #: the beats of a batch's calls and of their watcher (``calls``) take turns
        self.turns = threading.Lock()

    def buckets(self) -> list[str]:
        return list(self.written)

    def claimed(self, batch: Batch) -> None:
        for bucket in batch.buckets:
            self.written[bucket] = batch.renewed
        for bucket in batch.renewed_held:
            if bucket in self.written:
                self.written[bucket] = batch.renewed

    def computed(self, buckets: Sequence[str]) -> None:
        now = time.monotonic()
        if self.commits is None:  # ``compute`` committed them
            self.committed.extend(buckets)
            return
        taken = self.commits.taken  # the results are in no batch taken before
        self.uncommitted.extend((bucket, taken, now) for bucket in buckets)
        if now - self.uncommitted[0][2] >= self.book.lease_seconds / 2:
            self.commits.flush_soon()
            self._landed()

    def unsettled(self) -> bool:
        """Are there computed buckets not yet marked done?"""
        return bool(self.uncommitted or self.committed)

    def _landed(self) -> None:
        """Count as committed the buckets whose results are in commits that have landed."""
        if self.commits is None or not self.uncommitted:
            return
        landed = self.commits.landed
        n = next((i for i, (_, t, _) in enumerate(self.uncommitted) if t >= landed), None)
        n = len(self.uncommitted) if n is None else n
        self.committed.extend(bucket for bucket, _, _ in self.uncommitted[:n])
        del self.uncommitted[:n]

    def to_write(self) -> tuple[list[str], list[str]]:
        """``(finished, renew)`` for the next claim commit: the committed buckets (to be
        marked done, no longer held) and the others held (counted as renewed once a claim
        commit wrote them: ``claimed``)."""
        self._landed()
        finished, self.committed = self.committed, []
        for bucket in finished:
            self.written.pop(bucket, None)
        return finished, list(self.written)

    def settle(
        self,
        released: Sequence[str] = (),
        finished: Sequence[str] = (),
        beat: Callable[[], None] | None = None,
    ) -> None:
        """Commit every computed result and mark its buckets (and ``finished``) done once
        the results have landed (the records pointing at them may still be committing) and
        the renewal in flight, if any, has landed, releasing ``released`` in the same claims
        commit; ``beat()`` is called while it waits for the commit (``keep_alive``)."""
        if self.uncommitted and self.commits is not None:
            self.commits.flush_results(beat)
        self.committed.extend(bucket for bucket, _, _ in self.uncommitted)
        self.uncommitted = []
        done, self.committed = [*finished, *self.committed], []
        for bucket in done:
            self.written.pop(bucket, None)
        if self.renewing is not None:  # (it lands first: a done row is its bucket's last)
            renewing, self.renewing = self.renewing, None
            renewing.result()  # (raises what the renewal raised)
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
            with self.turns:
                turn()

        def turn() -> None:
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
            self._renew(pool, now, [] if following is None else following.buckets)

        return beat

    @contextlib.contextmanager
    def calls(self, ahead: _Ahead, pool: ThreadPoolExecutor) -> Iterator[Callable[[], None]]:
        """While a batch's calls run: their ``heartbeat``, beaten between calls and also
        every sixth of the lease by a thread (``claims.beating``), so the buckets held are
        renewed (and the next batch claimed) while one call runs longer than that."""
        beat = self.heartbeat(ahead, pool)
        with beating(beat, self.book.lease_seconds / 6, "orcapod-claims-watch"):
            yield beat

    def keep_alive(self, pool: ThreadPoolExecutor) -> Callable[[], None]:
        """A beat that renews the buckets held (in ``pool``) when the oldest claim was
        written a third of the lease ago, for a caller waiting on a slow commit with nothing
        to claim meanwhile; a renewal's error is raised at the next beat."""
        every = self.book.lease_seconds / 3

        def beat() -> None:
            if self.renewing is not None:
                if not self.renewing.done():
                    return
                renewing, self.renewing = self.renewing, None
                renewing.result()  # (raises what the renewal raised)
            now = time.monotonic()
            if self.written and now - min(self.written.values()) >= every:
                self._renew(pool, now)

        return beat

    def _renew(self, pool: ThreadPoolExecutor, now: float, also: Sequence[str] = ()) -> None:
        """Renew the buckets held (and ``also``) in a claims thread of ``pool``."""
        self.renewing = pool.submit(self.book.renew, [*self.written, *also])
        for bucket in self.written:
            self.written[bucket] = now


class _Ahead:
    """The claim of the next batch, made in a claims thread while a batch computes: started
    by the heartbeat once ``due`` (a few passes before the batch's estimated end, so the
    claim lands in time, and its read is recent: fewer buckets lost to other processes) or
    when the buckets held need renewing (the claim's commit renews them: one commit instead
    of two)."""

    def __init__(self, pool: ThreadPoolExecutor, sharer: Sharer, held: _Held) -> None:
        self.pool = pool
        self.sharer = sharer
        self.held = held
        self.future: Future[Batch | None] | None = None
        self.due = 0.0

    def start(self) -> bool:
        """Start the claim (True), unless it runs already or nothing is left to claim."""
        if self.future is not None or not self.sharer.pending:
            return False
        self.future = self.pool.submit(self.sharer.take, *self.held.to_write(), ahead=True)
        return True

    def result(self) -> Batch | None:
        assert self.future is not None
        future, self.future = self.future, None
        return future.result()
