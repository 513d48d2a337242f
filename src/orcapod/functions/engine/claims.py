"""Work claims: processes running the same function on one store share its missing rows.

Several processes (or machines) running the same function node on one persistent store
would each compute every missing row. With claims they split the work instead: the missing
packets are put into *buckets* by the first hex digits of their input hash (the number of
digits depends only on how many distinct packets the input has, so every process running the
same input forms the same buckets), and a process computes a bucket only while it holds the
bucket's claim.

The claims (one log per function, code version and input, beside its results: a run over
a changed input, such as one with new rows, forms its buckets afresh) are append-only rows;
each row is ``(bucket, owner, process, state, at, expires_at)`` with state ``claimed``,
``renewed``, ``released``, ``done`` or ``failed`` (done, with rows that failed: below):

1. A process reads the claims once per pass (all of them: they are few, and a read by bucket
   would make a table store keep an index of the column). A bucket whose latest finishing
   row is ``done``, or a ``failed`` one of this run, was finished by someone (its results
   are committed); a bucket whose live owner (latest row
   ``claimed``/``renewed``, not expired, and its process not surely dead) is someone else is
   left to them.
2. To take free buckets (a batch of them, see ``sharing.share_work``) it appends a ``claimed`` row
   per bucket (one commit, at once), reads their rows again, and keeps each bucket only if
   its own claim is the only live one; it appends ``released`` for the others (at once, or
   with its next commit) and moves on (it tries them again on a later pass). Commits
   are ordered and a read after a commit sees every earlier commit (on object storage: a
   listing shows every object whose PUT returned before it started, and S3's writes and
   listings are linearizable), so of two processes claiming at once at least one sees the
   other: never both keep the bucket (both may let
   it go, and one takes it on a later pass).
3. Every claim commit also renews the buckets the process still holds (``renewed`` rows), and
   a process renews them on its own every third of the lease when no claim commit came
   sooner, during a call too (a thread renews them while a call runs longer than that: a
   single call may take hours, far longer than the lease). A bucket is marked ``done`` once
   its results are committed, in a later commit (claiming runs one batch ahead, and results
   are committed by the run's flush policy or at the latest every half lease, in a
   committing thread while the calls go on, see ``sharing.share_work``).
4. A claim whose holder died is not renewed: once it expires the bucket is free again and
   another process takes it over (looking its results up first: what the holder committed is
   not computed again). A holder on the same machine is checked at once: each claim names its
   process (``holders``: machine, process id and start time), and a live-looking claim whose
   process is on this machine and no longer runs counts as expired (so a SIGKILLed process's
   buckets are taken over at the others' next pass, not a lease later; the lease covers lost
   machines). A process with nothing left to claim polls the claims, taking over such
   buckets, until every bucket is done, and looks the others' results up (at most once a
   second meanwhile, and once at the end).

Claims never decide correctness: results are keyed by their input and stored at most once,
so the worst case is duplicated work, never a wrong or lost row: a killed holder's results
it had not committed yet (at most about the node's ``FlushPolicy.seconds`` of work, or half
a lease), a holder that outlives its lease while still computing, clocks that disagree by
more than a lease, short work (below) that a process computes unshared while another joins,
a process that starts after another finished a bucket whose rows failed (it retries them: for
it they failed in an earlier run, below). Claims are used only where they pay: on a store that other
processes can see (``ArrowDatabase.persistent``), and when the missing rows take long enough
(``orcapod.types.WorkClaims.min_work_seconds``, estimated from the faster of the first two
calls: the first also pays one-off costs) that a commit and a read per batch are small beside
the work. Those two calls (the first missing rows, in input order) are made under a claim
of their buckets, so processes that start together do not each make them: the one that
keeps the claim times them, the others join; a process that finds others holding live
claims joins without timing (``orcapod.nodes.shared_work``). The buckets are the first one to three
hex digits of the input hash (more digits for larger inputs: ``bucket_index``).

Failed rows. A bucket is finished once its rows were attempted, failed ones included: it is
marked ``done``, or ``failed`` when some of its rows failed here (``ClaimBook.failing``). A
process sharing the work does not attempt again the rows still missing in a bucket another
process marked ``failed`` in this run (``sharing.share_work``, ``failed_elsewhere``): a row
failing after an hour costs its hour once, not once per process. Which run a ``failed`` row
belongs to is told by this book's first read of the claims (at the start of its node's run):
one written before it belongs to an earlier run over the same input, and opens the bucket
again, so a run retries the rows that failed in an earlier one by claiming their buckets
afresh, shared like any other missing rows (only the rows after that ``failed`` row tell who
holds it; the holder looks up what is stored first, so only the missing rows are computed).
A ``done`` row is final whenever it was written. Deciding by that read rather than by the
rows' times needs no agreement between machines' clocks; a process that starts after another
finished a bucket with failed rows retries them (at worst a failed row is attempted once
more, never left out). A process of an earlier version, which knows no ``failed`` rows, sees
such a bucket as not finished and retries its rows.

Where claims are kept (a Delta store's object log, a SQL store's table) is
``orcapod.functions.engine.claim_logs``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from orcapod._arrow_without_pandas import column_numpy
from orcapod._lazy import pc
from orcapod.databases import ArrowDatabase
from orcapod.functions.engine.claim_logs import ClaimLog, ClaimRow, claim_log
from orcapod.functions.engine.holders import surely_dead, this_process

__all__ = ["ClaimBook", "beating", "bucket_index"]

_LIVE = ("claimed", "renewed")
_HASH_PREFIX_LEN = len("arrow_row_v1:")


def bucket_index(input_hashes: pa.Array, num_distinct: int) -> tuple[list[str], np.ndarray]:
    """The buckets of some input hashes, sorted, and the bucket of every hash (its place in
    that list). A hash's bucket is its first hex digits, how many depending only on
    ``num_distinct`` (the same for every process running the same input): one digit up to 16
    distinct rows, two up to 4,096, three beyond. Vectorised: a Python string per hash would
    cost about 2 us each (seconds for a million rows)."""
    digits = 1 if num_distinct <= 16 else 2 if num_distinct <= 4096 else 3
    if isinstance(input_hashes, pa.ChunkedArray):
        input_hashes = input_hashes.combine_chunks()
    heads = pc.utf8_slice_codeunits(input_hashes, _HASH_PREFIX_LEN, _HASH_PREFIX_LEN + digits)
    encoded = heads.dictionary_encode()
    names = encoded.dictionary.to_pylist()  # at most 4,096
    order = sorted(range(len(names)), key=names.__getitem__)
    place = np.empty(len(names), dtype=np.int64)
    place[order] = np.arange(len(names))
    which = place[column_numpy(encoded.indices)]
    return [names[i] for i in order], which


@contextlib.contextmanager
def beating(beat: Callable[[], None], every: float, name: str) -> Iterator[None]:
    """Call ``beat()`` every ``every`` seconds in a thread of its own (named ``name``) while
    the block runs, so claims are renewed while a single call runs for longer than their
    lease. A beat's error stops the beats and is raised when the block ends (when the block
    raised, its error carries a note naming the beat's); no beat runs after the block (a
    release may follow it)."""
    stop = threading.Event()
    failed: list[Exception] = []

    def run() -> None:
        while not stop.wait(every):
            try:
                beat()
            except Exception as err:  # noqa: BLE001 - raised in the block's thread, below
                failed.append(err)
                return

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        yield
    except BaseException as err:
        if failed:
            err.add_note(f"renewing the claims had failed meanwhile: {failed[0]!r}")
        raise
    finally:
        stop.set()
        thread.join()
    if failed:
        raise failed[0]


@dataclass
class ClaimBook:
    """The claims of one function's buckets in ``database`` at ``path``, written by ``owner``
    running as ``process`` (``holders.this_process``), kept in the store's ``claim_log``."""

    database: ArrowDatabase
    path: tuple[str, ...]
    lease_seconds: float
    owner: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    )
    process: str = field(default_factory=this_process)
    log: ClaimLog = field(init=False, repr=False)
    #: process -> is it dead: a dead process stays dead, a live one is asked again after
    #: the next read of the claims
    _verdicts: dict[str, bool] = field(default_factory=dict, repr=False)
    #: (when, rows) of the read that followed the last claim: every bucket's rows then
    latest: tuple[float, dict[str, list[ClaimRow]]] | None = field(default=None, repr=False)
    #: buckets this process finished with rows that failed: they are marked ``failed``, not
    #: ``done`` (module docstring, "Failed rows")
    failing: set[str] = field(default_factory=set, repr=False)
    #: (owner, at) of the ``failed`` rows at this book's first read of the claims: they
    #: belong to earlier runs (module docstring, "Failed rows"); None before that read
    _earlier: frozenset[tuple[str, dt.datetime]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.log = claim_log(self.database, self.path)

    def _append(self, *groups: tuple[Sequence[str], str]) -> None:
        """Append (and commit, at once) one row per bucket of each ``(buckets, state)``; a
        bucket of ``failing`` marked ``done`` is marked ``failed``."""
        split: list[tuple[Sequence[str], str]] = []
        for buckets, state in groups:
            if state == "done" and self.failing:
                split.append(([b for b in buckets if b not in self.failing], "done"))
                split.append(([b for b in buckets if b in self.failing], "failed"))
            else:
                split.append((buckets, state))
        groups = tuple((buckets, state) for buckets, state in split if len(buckets))
        if not groups:
            return
        now = dt.datetime.now(dt.UTC)
        expires = now + dt.timedelta(seconds=self.lease_seconds)
        self.log.append(self.owner, self.process, now, expires, groups)

    def rows(self, buckets: Sequence[str] | None) -> dict[str, list[ClaimRow]]:
        """Every claim row of ``buckets`` (None: of all): bucket -> [(owner, state, at,
        expires_at, process)], oldest first. Each read asks again whether the holders seen
        are alive."""
        self._verdicts = {p: dead for p, dead in self._verdicts.items() if dead}
        return self._read(buckets)

    def _read(self, buckets: Sequence[str] | None) -> dict[str, list[ClaimRow]]:
        found = self.log.read()
        if self._earlier is None:  # the first read: the failures of earlier runs
            self._earlier = frozenset(
                (row[0], row[2]) for _, row in found if row[1] == "failed" and row[0] != self.owner
            )
        if buckets is not None:
            wanted = set(buckets)
            found = [row for row in found if row[0] in wanted]
        out: dict[str, list[ClaimRow]] = {}
        for bucket, row in sorted(found, key=lambda r: (r[1][2], r[1][0])):
            out.setdefault(bucket, []).append(row)
        return out

    def _finishing(self, rows: list[ClaimRow]) -> tuple[str | None, list[ClaimRow]]:
        """How one bucket (its rows, oldest first) was finished in this run - ``"done"``,
        ``"failed"`` or None (not finished) - and, when not, the rows that tell who holds it:
        those after a ``failed`` row of an earlier run (it opens the bucket again: module
        docstring, "Failed rows"), else all of them."""
        for i in range(len(rows) - 1, -1, -1):
            owner, state, at, _, _ = rows[i]
            if state == "done":
                return state, []
            if state == "failed":
                if self._earlier is not None and (owner, at) in self._earlier:
                    return None, rows[i + 1 :]
                return state, []
        return None, rows

    def status(self, rows: list[ClaimRow]) -> tuple[str | None, set[str]]:
        """``(finished, live holders)`` of one bucket from its rows: ``finished`` is how it was
        finished in this run, ``"done"`` or ``"failed"`` (some of its rows failed), or None;
        holders: owners whose latest row is a claim or a renewal that has not expired, written
        by a process not surely dead."""
        finished, rows = self._finishing(rows)
        if finished is not None:
            return finished, set()
        now = dt.datetime.now(dt.UTC)
        latest: dict[str, ClaimRow] = {}
        for row in rows:  # oldest first
            latest[row[0]] = row
        return None, {
            owner
            for owner, (_, state, _, expires, process) in latest.items()
            if state in _LIVE and expires > now and (owner == self.owner or not self._dead(process))
        }

    def _dead(self, process: str | None) -> bool:
        """``holders.surely_dead``, remembered: a dead process for good, a live one until the
        next read (a pass over many buckets asks about the same few processes)."""
        if not process:
            return False
        dead = self._verdicts.get(process)
        if dead is None:
            dead = self._verdicts[process] = surely_dead(process)
        return dead

    def shared(self, rows: dict[str, list[ClaimRow]] | None = None) -> bool:
        """Does another process hold a live claim here (is the work being shared already)?
        One read of the claims, unless ``rows`` (every bucket's, as ``rows(None)`` or a
        claim's read in ``latest`` gives them) are at hand."""
        rows = self.rows(None) if rows is None else rows
        return any(self.status(r)[1] - {self.owner} for r in rows.values())

    def claim(
        self,
        buckets: Sequence[str],
        finished: Sequence[str] = (),
        renew: Sequence[str] = (),
        released: Sequence[str] = (),
        release_lost: bool = True,
    ) -> list[str]:
        """Try to take ``buckets`` (one commit); returns those this process now holds.
        ``finished``: buckets this process has finished, marked done in the same commit;
        ``renew``: buckets it still holds, renewed in it; ``released``: buckets it lets go of
        in it. The buckets it claimed but did not get are released at once in a second
        commit, or (``release_lost=False``) left to the caller to release with its next one
        (until then they count as held by this process too, so nobody takes them)."""
        self._append(
            (finished, "done"), (renew, "renewed"), (released, "released"), (buckets, "claimed")
        )
        rows = self.rows(None)
        self.latest = (time.monotonic(), rows)
        kept: list[str] = []
        lost: list[str] = []
        for bucket in buckets:
            done, holders = self.status(rows.get(bucket, []))
            (kept if not done and holders == {self.owner} else lost).append(bucket)
        if release_lost:
            self._append((lost, "released"))
        return kept

    def renew(
        self, buckets: Sequence[str], finished: Sequence[str] = (), released: Sequence[str] = ()
    ) -> None:
        """Renew ``buckets``, mark ``finished`` done and release ``released`` (one commit)."""
        self._append((finished, "done"), (buckets, "renewed"), (released, "released"))

    def finish(self, buckets: Sequence[str]) -> None:
        self._append((buckets, "done"))

    def keeping(self, buckets: Sequence[str]) -> contextlib.AbstractContextManager[None]:
        """Renew ``buckets`` every third of the lease while the block runs (``beating``):
        calls made under a claim outside ``share_work`` (a run's timed first calls) may each
        take longer than the lease."""
        return beating(lambda: self.renew(buckets), self.lease_seconds / 3, "orcapod-claims-keep")

    def release(self, buckets: Sequence[str]) -> None:
        self._append((buckets, "released"))
