"""``compute_shared``: a run's missing packets computed by this process alone, or shared with
other processes working on the same persistent store through work claims
(``orcapod.functions.engine.claims``).

Sharing pays only for long work: the first two calls (the faster of them - the first also
pays one-off costs - times the number of missing packets) estimate it; an estimate under
``_CONFIRM_BELOW`` times ``WorkClaims.min_work_seconds`` is confirmed by timing about
``_CONFIRM_SECONDS`` more calls (two calls of a cheap function slowed by a busy machine can
look long). Under ``min_work_seconds`` this process computes the rest itself, in input
order. Otherwise the rest is split into buckets claimed a batch at a time; a packet another
process stored meanwhile is recorded as reused (or filtered), not computed.

The first two timed calls are the input's first missing packets: a process alone computes in
input order while the work is too short to share (so a run with ``fail_fast`` stops at the
first failing row in input order, with the rows before it stored). Before timing them the
process claims their buckets (one or two; the claim's read of the claims table also tells
whether others share the work already), so no other process makes the same calls: a process
that starts while another times its first calls, perhaps for hours, finds that claim and joins
without timing (as does one that finds others holding live claims: they found the work worth
sharing), and of processes that start together only the one that keeps the claim times. The
confirming calls are more packets of the buckets claimed. Work found too short is computed
here in input order, unshared and committed, and then the claimed buckets are released, not
marked done: a process that joined meanwhile takes them and finds their results stored (it
computes only what it claims: at worst short work is computed twice, never a row left out),
and a later run over the same input retrying rows that failed here times them again under a
claim. Longer work is shared, the claimed buckets being this process's first batch. This
costs a process running alone one claim more per run than a read of the claims (on object
storage one PUT, and one more to release them when the work is short). The timed results are
committed by the flush policy like the others.

While sharing, results are committed by the node's flush policy (``FlushPolicy``) and when
``share_work`` asks, not after every batch: a commit per batch would cost more than the claim.
Those commits run in the writer's committing thread (``RunWriter.committing_in_background``)
while the calls go on; a bucket is marked done once the commit holding its results landed
(its results, that is: the records pointing at them may still be committing).

One claims table per code version, input and chunk: a rerun over a changed input (new rows),
or a run's next chunk, forms its buckets afresh, not under finished ones.

Failed rows. A row whose call fails is attempted once across the processes sharing a run:
its bucket is marked ``failed`` (``claims``, "Failed rows") and the other processes do not
call it again; a later run over the same input retries it (once across the processes that
run together). Its failure is recorded once, by the process that attempted it. Each
process's summary still counts every input row once, and counts such a row as failed (it has
no result after this run; the call that failed was another process's): two processes sharing
a run in which two rows fail each report ``failed=2``, while the function was called twice in
all and the failures table holds two failures. Its packet event, for an observer, is a
``FAILED`` settled without a call. Under ``ErrorPolicy.FAIL_FAST`` a process calls such a row
itself (and stops at its failure). A row whose output the store could not hold is known
failed only once its commit ran, after its bucket may have been marked ``done``: the others
then attempt it once more.
"""

from __future__ import annotations

import contextlib
import time
import zlib
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa

from orcapod.errors import OrcapodError
from orcapod.functions.engine.claims import ClaimBook, bucket_index
from orcapod.functions.engine.events import PacketOutcome
from orcapod.functions.engine.lookup import Answers, lookup
from orcapod.functions.engine.sharing import share_work
from orcapod.functions.engine.write import RunWriter
from orcapod.nodes.chunk_work import ChunkWork
from orcapod.nodes.run_settings import FAILED, FILTERED, REUSED
from orcapod.types import ErrorPolicy

__all__ = ["compute_shared"]

_CONFIRM_BELOW = 20
_CONFIRM_SECONDS = 0.05

#: ``compute(items, heartbeat=..., flush=True)``: call and write the packets ``items``; the
#: times the run's first two calls finished
Compute = Callable[..., list[float]]


def compute_shared(
    compute: Compute, work: ChunkWork, writer: RunWriter, window: int, chunk: int | None
) -> None:
    """``compute`` the chunk's missing packets, sharing them with other processes when the
    store is persistent and the work is long enough to pay for it (module docstring)."""
    settings, store, misses = work.settings, work.store, work.misses
    claims = settings.work_claims
    if claims is None or len(misses) < 2 or not store.cache.database.persistent:
        compute(misses)
        return
    pf = settings.pod.packet_function
    scope = f"code:{pf.code_hash}:input:{settings.read_stream.content_hash().to_hex(16)}"
    if chunk is not None:
        scope += f":chunk:{chunk}"
    book = ClaimBook(
        store.cache.database.at("_claims"),
        (*store.cache.record_path, scope),
        claims.lease_seconds,
    )
    writer.prepare()  # reads the function's data now: the calls are timed alone
    start = zlib.crc32(book.owner.encode())
    sorted_keys: tuple[list[str], np.ndarray] | None = None

    def buckets_of() -> tuple[list[str], np.ndarray]:  # (names, bucket of each miss)
        nonlocal sorted_keys
        if sorted_keys is None:
            hashes = work.distinct.take(pa.array(misses, pa.int64()))
            sorted_keys = bucket_index(hashes, work.plan.num_entries)
        return sorted_keys

    # the buckets of the input's first two missing packets are claimed before those are
    # timed: a process starting meanwhile finds the claim and joins instead of timing them too
    first, _ = bucket_index(
        work.distinct.take(pa.array(misses[:2], pa.int64())), work.plan.num_entries
    )
    held = book.claim(first)
    assert book.latest is not None
    done = np.zeros(len(misses), dtype=bool)
    took = 0.0
    if len(held) == len(first) and not book.shared(book.latest[1]):
        try:
            with book.keeping(held):  # (a timed call may outlast the lease)
                timing = _time(
                    compute,
                    misses,
                    lambda: _within(misses, held, buckets_of()),
                    window,
                    claims.min_work_seconds,
                )
            if timing is None:  # short work: computed here, unshared, and committed
                book.release(held)  # (not done: a rerun retrying failed rows times them)
                return
        except BaseException:
            with contextlib.suppress(OrcapodError):  # others take them over at once
                book.release(held)
            raise
        timed, took = timing
        done[np.isin(misses, timed)] = True
    # else others hold claims (they found the work worth sharing), or took these buckets:
    # join them without timing, starting with the buckets held
    names, which = buckets_of()
    order = np.argsort(which, kind="stable")
    left = ~done[order]
    split = np.cumsum(np.bincount(which, minlength=len(names)))[:-1]
    every = {
        str(name): misses[rows] for name, rows in zip(names, np.split(order, split), strict=True)
    }
    buckets = {
        name: every[name][keep] for name, keep in zip(every, np.split(left, split), strict=True)
    }

    def failed(bucket: str) -> bool:  # did a row of ``bucket`` (timed ones too) fail here?
        return bool((work.outcome[every[bucket]] == FAILED).any())

    def failed_elsewhere(items: np.ndarray) -> None:  # attempted by another process, failed
        work.outcome[items] = FAILED
        if work.reporter is not None:
            assert work.groups is not None
            work.settle(work.groups.members(items)[0], PacketOutcome.FAILED)

    stop_at_failure = settings.error_policy is ErrorPolicy.FAIL_FAST

    constraints = work.constraints()

    def look_up(items: np.ndarray) -> Answers:  # a read only: runs in the claiming thread
        return lookup(
            work.store.cache, work.distinct.take(pa.array(items, pa.int64())), constraints
        )

    def elsewhere(items: np.ndarray, answers: Answers | None = None) -> np.ndarray:
        return _stored_elsewhere(
            work, writer, items, look_up(items) if answers is None else answers
        )

    with writer.committing_in_background():  # the calls go on while results commit
        share_work(
            book,
            buckets,
            lambda items, heartbeat: compute(items, heartbeat=heartbeat, flush=False),
            elsewhere,
            claims.poll_seconds,
            start=start,
            min_batch=window,
            look_up=look_up,
            item_seconds=took,
            commits=writer,
            held=held,
            failed=failed,
            failed_elsewhere=None if stop_at_failure else failed_elsewhere,
        )


def _time(
    compute: Compute,
    misses: np.ndarray,
    ours: Callable[[], np.ndarray],
    window: int,
    least: float,
) -> tuple[np.ndarray, float] | None:
    """Time calls to estimate the work (module docstring): the input's first two missing
    packets, then, to confirm a borderline estimate, more of the packets ``ours()`` (those
    of the buckets claimed for timing). Returns the packets computed and the estimated
    seconds per call, or None once every packet is computed (in input order) because the
    work is too short to share."""
    started = time.monotonic()
    finished_at = compute(misses[:2], flush=False)
    ends = [*finished_at, time.monotonic(), time.monotonic()][:2]
    took = ends[0] - started
    if window == 1:
        took = min(took, ends[1] - ends[0])
    done = misses[:2]
    if 0 < least <= took * len(misses) < _CONFIRM_BELOW * least and len(misses) > 2:
        mine = ours()
        rest = mine[~np.isin(mine, done)]
        probe = rest[: max(2, int(_CONFIRM_SECONDS / max(took, 1e-9)))]
        if len(probe):
            started = time.monotonic()
            compute(probe, flush=False)
            took = min(took, (time.monotonic() - started) / len(probe))
            done = np.concatenate([done, probe])
    if took * len(misses) >= least and len(done) < len(misses):
        return done, took
    compute(misses[~np.isin(misses, done)])
    return None


def _within(
    misses: np.ndarray, buckets: Sequence[str], index: tuple[list[str], np.ndarray]
) -> np.ndarray:
    """The packets of ``misses`` in ``buckets`` (``index``: the bucket of every miss), in
    input order."""
    names, which = index
    places = np.flatnonzero(np.isin(np.asarray(names, dtype=object), list(buckets)))
    return misses[np.isin(which, places)]


def _stored_elsewhere(
    work: ChunkWork, writer: RunWriter, items: np.ndarray, answers: Answers
) -> np.ndarray:
    """Of the missing packets ``items``, record those another process has stored since (as
    reused, or filtered; ``answers``: their look-up) and return the others."""
    found = answers.hit | answers.filtered
    if not found.any():
        return items
    work.outcome[items[answers.hit]] = REUSED
    work.outcome[items[answers.filtered]] = FILTERED
    if work.reporter is not None:
        assert work.groups is not None
        work.settle(work.groups.members(items[answers.hit])[0], PacketOutcome.REUSED)
        work.settle(work.groups.members(items[answers.filtered])[0], PacketOutcome.FILTERED)
    ids = answers.record_ids.take(pa.array(np.flatnonzero(found), pa.int64()))
    writer.add_records(work.records_for(items[found], ids, False))  # (in the next commit)
    return items[~found]
