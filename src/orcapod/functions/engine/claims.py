"""Work claims: processes running the same function on one store share its missing rows.

Several processes (or machines) running the same function node on one persistent store
would each compute every missing row. With claims they split the work instead: the missing
packets are put into *buckets* by the first hex digits of their input hash (the number of
digits depends only on how many distinct packets the input has, so every process running the
same input forms the same buckets), and a process computes a bucket only while it holds the
bucket's claim.

The claims table (one per function, code version and input, beside its results: a run over
a changed input, such as one with new rows, forms its buckets afresh) is append-only;
each row is ``(bucket, owner, state, at, expires_at)`` with state ``claimed``, ``renewed``,
``released`` or ``done``:

1. A process looks at the buckets' rows once per pass. A bucket with a ``done`` row was
   finished by someone (its results are committed); a bucket whose live owner (latest row
   ``claimed``/``renewed`` and not expired) is someone else is left to them.
2. To take free buckets (a batch of them, see ``share_work``) it appends a ``claimed`` row
   per bucket (one commit, at once), reads their rows again, and keeps each bucket only if
   its own claim is the only live one; it appends ``released`` for the others and moves on
   (it tries them again on a later pass). Commits
   are ordered and a read after a commit sees every earlier commit, so of two processes
   claiming at once at least one sees the other: never both keep the bucket (both may let
   it go, and one takes it on a later pass; processes visit the buckets in different orders).
3. While computing, it appends ``renewed`` rows (every third of the lease), and ``done`` once
   the batch's results are committed (in the commit of a later claim: claiming runs one
   batch ahead, see ``share_work``).
4. A claim whose holder died (SIGKILL, a lost machine) is not renewed: once it expires the
   bucket is free again and another process takes it over. A process that has nothing left to
   claim waits for the others' buckets (polling their results), taking over any that expire.

Claims never decide correctness: results are keyed by their input and stored at most once,
so the worst case (a holder that outlives its lease while still computing, clocks that
disagree by more than a lease, a run retrying the rows that failed in an earlier run over
the same input: their buckets are done, so every process retries them) is duplicated work,
never a wrong or lost row. They are used
only where they pay: on a store that other processes can see (``ArrowDatabase.persistent``),
and when the missing rows take long enough (``WorkClaims.min_work_seconds``, estimated from
the faster of the first two calls: the first also pays one-off costs) that a commit and a
read per batch are small beside the work. Those two calls (the first missing rows, in input
order) are made without a claim: processes that start together each compute them (their
results are stored once). The buckets are the first one to three hex digits of the input
hash (more digits for larger inputs: ``bucket_keys``).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from orcapod._lazy import pc
from orcapod.databases import ArrowDatabase
from orcapod.errors import InputValidationError

__all__ = ["ClaimBook", "WorkClaims", "bucket_keys", "share_work"]

_TS = pa.timestamp("us", tz="UTC")
_LIVE = ("claimed", "renewed")
_HASH_PREFIX_LEN = len("arrow_row_v1:")


@dataclass(frozen=True)
class WorkClaims:
    """How processes share a function node's missing rows (see the module docstring).

    ``lease_seconds``: how long a claim lives without renewal (a dead holder's buckets are
    taken over after at most this long); ``min_work_seconds``: claims are used only when the
    run's missing rows would take at least this long (the faster of the first two calls'
    times their number): a claim costs a commit and a read, small only beside seconds of work;
    ``poll_seconds``: how often a process that waits for other processes' buckets looks again.
    """

    lease_seconds: float = 60.0
    min_work_seconds: float = 5.0
    poll_seconds: float = 0.5

    def __post_init__(self) -> None:
        for name in ("lease_seconds", "min_work_seconds", "poll_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InputValidationError(
                    f"WorkClaims.{name} must be a non-negative number of seconds, got {value!r}"
                )
        if self.lease_seconds <= 0:
            raise InputValidationError(
                f"WorkClaims.lease_seconds must be positive, got {self.lease_seconds!r}"
            )


def bucket_keys(input_hashes: pa.Array, num_distinct: int) -> np.ndarray:
    """The bucket of every input hash: its first hex digits, how many depending only on
    ``num_distinct`` (the same for every process running the same input): one digit up to 16
    distinct rows, two up to 4,096, three beyond."""
    digits = 1 if num_distinct <= 16 else 2 if num_distinct <= 4096 else 3
    heads = pc.utf8_slice_codeunits(input_hashes, _HASH_PREFIX_LEN, _HASH_PREFIX_LEN + digits)
    return np.asarray(heads.to_pylist(), dtype=object)


_Row = tuple[str, str, dt.datetime, dt.datetime]


@dataclass
class ClaimBook:
    """The claims of one function's buckets in ``database`` at ``path``."""

    database: ArrowDatabase
    path: tuple[str, ...]
    lease_seconds: float
    owner: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    )

    def _append(self, *groups: tuple[Sequence[str], str]) -> None:
        """Append (and commit, at once) one row per bucket of each ``(buckets, state)``."""
        now = dt.datetime.now(dt.UTC)
        expires = now + dt.timedelta(seconds=self.lease_seconds)
        names = [b for buckets, _ in groups for b in buckets]
        states = [state for buckets, state in groups for _ in buckets]
        n = len(names)
        if n == 0:
            return
        table = pa.table(
            {
                "claim_id": pa.array([uuid.uuid4().hex for _ in range(n)], pa.large_string()),
                "bucket": pa.array(names, pa.large_string()),
                "owner": pa.array([self.owner] * n, pa.large_string()),
                "state": pa.array(states, pa.large_string()),
                "at": pa.array([now] * n, _TS),
                "expires_at": pa.array([expires] * n, _TS),
            }
        )
        self.database.add_records(self.path, table, "claim_id", flush=True)

    def rows(self, buckets: Sequence[str]) -> dict[str, list[_Row]]:
        """Every claim row of ``buckets``: bucket -> [(owner, state, at, expires_at)], oldest
        first."""
        found = self.database.get_records_with_column_value(
            self.path,
            {"bucket": list(buckets)},
            columns=["bucket", "owner", "state", "at", "expires_at"],
        )
        out: dict[str, list[_Row]] = {}
        if found is None:
            return out
        columns = [
            found.column(c).to_pylist() for c in ("bucket", "owner", "state", "at", "expires_at")
        ]
        for bucket, owner, state, at, expires in sorted(
            zip(*columns, strict=True), key=lambda r: (r[3], r[1])
        ):
            out.setdefault(bucket, []).append((owner, state, at, expires))
        return out

    def status(self, rows: list[_Row]) -> tuple[bool, set[str]]:
        """``(done, live holders)`` of one bucket from its rows: owners whose latest row is a
        claim or a renewal that has not expired."""
        if any(state == "done" for _, state, _, _ in rows):
            return True, set()
        now = dt.datetime.now(dt.UTC)
        latest: dict[str, tuple[str, dt.datetime]] = {}
        for owner, state, _, expires in rows:  # oldest first
            latest[owner] = (state, expires)
        return False, {
            o for o, (state, expires) in latest.items() if state in _LIVE and expires > now
        }

    def claim(self, buckets: Sequence[str], finished: Sequence[str] = ()) -> list[str]:
        """Try to take ``buckets`` (one commit); returns those this process now holds.
        ``finished``: buckets this process has finished, marked done in the same commit."""
        self._append((finished, "done"), (buckets, "claimed"))
        rows = self.rows(buckets)
        kept: list[str] = []
        lost: list[str] = []
        for bucket in buckets:
            done, holders = self.status(rows.get(bucket, []))
            (kept if not done and holders == {self.owner} else lost).append(bucket)
        self._append((lost, "released"))
        return kept

    def renew(self, buckets: Sequence[str]) -> None:
        self._append((buckets, "renewed"))

    def finish(self, buckets: Sequence[str]) -> None:
        self._append((buckets, "done"))


def share_work(
    book: ClaimBook,
    buckets: dict[str, np.ndarray],
    compute: Callable[[np.ndarray, Callable[[], None]], object],
    still_missing: Callable[..., np.ndarray],
    poll_seconds: float,
    start: int = 0,
    min_batch: int = 1,
    look_up: Callable[[np.ndarray], object] | None = None,
) -> None:
    """Compute every bucket's items exactly once across the processes sharing ``book``.

    ``buckets``: bucket -> the items (e.g. packet indices) of this process's work in it.
    ``compute(items, heartbeat)`` computes and commits them, calling ``heartbeat()`` between
    items; ``still_missing(items)`` returns those whose results are not stored yet and takes
    note of the others (e.g. records them as reused; it is never asked about an item twice
    once the item is found). ``start``: where this process begins in the bucket order
    (processes starting at different places meet less often). ``min_batch``: the fewest
    items a batch takes while there are that many (the calls the executor runs at once: a
    smaller batch would leave workers idle).

    A process claims several buckets per commit, a *batch* (guided self-scheduling): at most
    a sixteenth of all the items, and at most the free items divided by twice the number of
    processes seen holding claims, so batches shrink as the work runs out and the processes
    finish at nearly the same time, while a process alone needs about twenty claims. A batch
    never shrinks below twice the items its claiming costs (a pass's reads and commits,
    timed against the items' compute time): a tail of one-item batches would spend more on
    claiming than on the work. Buckets other processes finished are looked up (their rows
    become known) only when nothing is left to claim, so a pass with work to do reads only
    the claims.

    Claiming runs one batch ahead: while a batch computes, a background thread claims the
    next one (its reads and commits overlap the calls instead of adding to them), and the
    heartbeat renews both. ``compute`` and ``still_missing`` always run in the calling
    thread; the background thread touches only the claims table, and, when ``look_up`` is
    given, looks the claimed items' results up: ``look_up(items)`` (a read only) runs right
    after the claim, in that thread, and ``still_missing(items, found)`` gets its answer.
    """
    sharer = _Sharer(book, buckets, start, min_batch, look_up)
    unmarked: list[str] = []  # finished here (committed), marked done with the next claim
    ahead: Future[_Batch | None] | None = None
    with ThreadPoolExecutor(1, thread_name_prefix="orcapod-claims") as pool:
        try:
            while sharer.pending or ahead is not None:
                if ahead is not None:
                    batch, ahead = ahead.result(), None
                else:
                    batch, unmarked = sharer.take(unmarked), []
                if batch is None:  # nothing to claim now
                    if sharer.pending:
                        unmarked = sharer.wait(unmarked, compute, still_missing, poll_seconds)
                    continue
                if sharer.pending:  # claim the next batch while this one computes
                    ahead, unmarked = pool.submit(sharer.take, unmarked), []
                if look_up is None:
                    items = still_missing(batch.items)
                else:
                    items = still_missing(batch.items, batch.found)
                holding: list[Future[_Batch | None] | None] = [ahead]

                def heartbeat(
                    batch: _Batch = batch,
                    holding: list[Future[_Batch | None] | None] = holding,
                ) -> None:
                    if time.monotonic() - batch.renewed < book.lease_seconds / 3:
                        return
                    renew = list(batch.buckets)
                    following = holding[0]
                    if following is not None and following.done() and not following.exception():
                        after = following.result()
                        renew += [] if after is None else after.buckets
                    book.renew(renew)
                    batch.renewed = time.monotonic()

                if len(items):
                    computing = time.monotonic()
                    compute(items, heartbeat)
                    sharer.item_seconds = (time.monotonic() - computing) / len(items)
                unmarked = [*unmarked, *batch.buckets]
        finally:
            if ahead is not None:  # an error stopped the loop: let the claim finish first
                ahead.cancel()
                wait([ahead])
    book.finish(unmarked)


@dataclass
class _Batch:
    """Buckets this process claimed together, and their items."""

    buckets: list[str]
    items: np.ndarray
    renewed: float  # when the claims were last written (claimed or renewed)
    found: object = None  # what ``look_up`` answered for the items


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
        # the last claim's time and the last batch's per-item compute time
        self.claim_seconds = self.item_seconds = 0.0

    def take(self, finished: Sequence[str]) -> _Batch | None:
        """Claim the next batch (marking ``finished`` done in the same commit); None when
        every pending bucket is done or held by someone else."""
        book, buckets, pending = self.book, self.buckets, self.pending
        while True:
            started = time.monotonic()
            rows = book.rows(list(pending))
            status = {bucket: book.status(rows.get(bucket, [])) for bucket in pending}
            free = [b for b in pending if not status[b][0] and not status[b][1] - {book.owner}]
            if not free:
                if finished:
                    book.finish(finished)
                self.status = status
                return None
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
            taken = book.claim(batch, finished=finished)
            finished = ()
            if not taken:  # lost to someone else's claim: look again at once
                continue
            for bucket in taken:
                del pending[bucket]
            now = time.monotonic()
            self.claim_seconds = now - started
            claimed = _Batch(taken, np.concatenate([buckets[b] for b in taken]), now)
            if self.look_up is not None:
                claimed.found = self.look_up(claimed.items)
            return claimed

    def wait(
        self,
        unmarked: list[str],
        compute: Callable[[np.ndarray, Callable[[], None]], object],
        still_missing: Callable[[np.ndarray], np.ndarray],
        poll_seconds: float,
    ) -> list[str]:
        """Nothing to claim: take note of the buckets finished elsewhere (computing the rows
        that failed there), or wait a poll for the others. Returns what is still unmarked."""
        pending, buckets = self.pending, self.buckets
        finished = [b for b in pending if self.status[b][0]]
        if finished:
            left = still_missing(np.concatenate([buckets[b] for b in finished]))
            for bucket in finished:
                rest = buckets[bucket][np.isin(buckets[bucket], left)]
                if len(rest):  # finished elsewhere, but these rows failed there: try here
                    compute(rest, _no_heartbeat)
                del pending[bucket]
            return unmarked
        if unmarked:  # waiting: let the others see it is done
            self.book.finish(unmarked)
        time.sleep(poll_seconds)
        return []


def _no_heartbeat() -> None:
    return None
