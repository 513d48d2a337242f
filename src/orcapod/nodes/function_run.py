"""``FunctionRun``: one ``run()`` of a ``FunctionNode`` - the engine's phases over the node's
current input, with the node's pipeline records as the sink.

1. Recorded entries (ONE projected query for the input's entry ids): a record with a result
   is reused, one with a null ``__packet_id`` is a filtered row; a record whose result is gone
   (the result store was switched, deleted, or kept in memory by an earlier process) is handled
   like a novel entry, so it is never reported as reused without an output row.
2. Novel entries, grouped by distinct input packet (``PacketGroups``): ONE look-up of their
   input hashes in the result cache (``orcapod.functions.engine.lookup``); a hit or a stored
   filtered result becomes new pipeline records (``__computed=False``) without computing.
3. Each distinct missing packet is computed once, however many tags it appears under
   (``orcapod.functions.engine.dispatch``: up to ``max_concurrency`` calls in flight with a
   concurrent executor), and written by the batched ``RunWriter`` (results before the records
   pointing at them). Both look-ups are preceded by ``committed_version`` of their table and
   the writes carry it (``absent_at``), so the store checks new ids only against rows
   committed after the run looked.
4. Failures, per the node's ``error_policy``: recorded in the failures table and never
   recorded as done, so the next run retries exactly those rows; ``fail_fast`` raises
   ``ExecutionError`` naming the row's tag once the finished work is written. An output the
   store cannot hold fails only its own row.

Every input row is counted once in the returned ``NodeRunSummary`` (rows of an inactive
function, ``set_active(False)``, count as filtered: nothing is computed or recorded for them).

Events (``orcapod.functions.engine.events``): when a packet observer is set for the context
(``observing``), the run reports the rows settled without a call in bulk (reused, filtered),
each call's start, and the ended calls in batches, with the call's captured output when the
observer asks for it: calls run one by one in this thread (no executor or a
``LocalExecutor``, window 1) are captured around each call by one reused capture; other
calls get a logger, so the executor captures them where they run (a Ray worker). Without an
observer nothing of this runs. A packet key is the index of a distinct missing packet of the
run; the node's hash reported is the ``schema:`` segment of its record path (its pipeline
hash).
"""

from __future__ import annotations

import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orcapod.data import Packet
from orcapod.errors import (
    ExecutionError,
    FailedRowsWarning,
    InputValidationError,
    PacketFunctionError,
)
from orcapod.executors import LocalExecutor
from orcapod.functions import FunctionPod
from orcapod.functions.engine.claims import ClaimBook, WorkClaims, bucket_keys, share_work
from orcapod.functions.engine.dispatch import call_each
from orcapod.functions.engine.events import (
    PacketOutcome,
    PacketReporter,
    PacketRun,
    current_observer,
)
from orcapod.functions.engine.identify import InputPlan, PacketGroups
from orcapod.functions.engine.keys import digest_keys, unique_keys
from orcapod.functions.engine.lookup import lookup
from orcapod.functions.engine.write import RunWriter
from orcapod.functions.result_cache import match_constraints
from orcapod.nodes.node_store import NodeStore
from orcapod.nodes.records import failure_table, pipeline_record_table, utc_now
from orcapod.nodes.stored_entries import STORED_ROW, StoredEntries
from orcapod.nodes.summary import NodeRunSummary
from orcapod.types import CacheMatch, ErrorPolicy, FlushPolicy
from orcapod.types.columns import FAILURE_ID, INPUT_PACKET_HASH, PACKET_ID, PIPELINE_ENTRY_ID

__all__ = ["SKIPPED", "FunctionRun", "RunSettings", "check_concurrency", "warn_failed"]


def _no_op() -> None:
    return None


#: a work estimate under this many times ``WorkClaims.min_work_seconds`` is confirmed by
#: timing about ``_CONFIRM_SECONDS`` more calls before processes share the work
_CONFIRM_BELOW = 20
_CONFIRM_SECONDS = 0.05

# what happened to a distinct entry in one run
_COMPUTED, _REUSED, _FILTERED, _FAILED, _SKIPPED = range(5)
SKIPPED = _SKIPPED


def check_concurrency(max_concurrency: int | None) -> None:
    """Raise ``InputValidationError`` unless ``max_concurrency`` is None or a positive int."""
    if max_concurrency is not None and (
        isinstance(max_concurrency, bool)
        or not isinstance(max_concurrency, int)
        or max_concurrency < 1
    ):
        raise InputValidationError(
            f"max_concurrency must be a positive integer or None, got {max_concurrency!r}"
        )


def warn_failed(summary: NodeRunSummary, stacklevel: int = 2) -> None:
    """Warn once (``FailedRowsWarning``) when rows of the run failed."""
    if summary.failed:
        warnings.warn(
            f"{summary.failed} of {summary.total} rows of node {summary.label!r} failed; "
            f"they are recorded and the next run retries them. List them with "
            f"node.failures() (in a pipeline: pipeline.{summary.label}.failures()).",
            FailedRowsWarning,
            stacklevel=stacklevel + 1,
        )


@dataclass(frozen=True)
class RunSettings:
    """What a run needs to know of its node."""

    label: str
    pod: FunctionPod  #: the node's own pod (its executor is the node's)
    read_stream: Any  #: the input projected onto the function's parameters
    error_policy: ErrorPolicy
    cache_match: CacheMatch
    flush_policy: FlushPolicy
    #: how processes sharing a persistent store split the missing rows (None: never)
    work_claims: WorkClaims | None = None


class FunctionRun:
    """One run of a function node (see the module docstring)."""

    def __init__(
        self,
        node: RunSettings,
        plan: InputPlan,
        store: NodeStore,
        writer_type: type[RunWriter] = RunWriter,
        stored: StoredEntries | None = None,
    ) -> None:
        self._node = node
        self._plan = plan
        self._store = store
        #: what the node's tables held when a chunked run started (None: ask the store)
        self._stored = stored
        self._pf = node.pod.packet_function
        self._category = np.full(plan.num_entries, _SKIPPED, dtype=np.int8)
        observer = current_observer()
        self._reporter: PacketReporter | None = None
        self._entry_rows: np.ndarray | None = None  # input rows per entry (with an observer)
        self._groups: PacketGroups | None = None
        self._distinct: pa.Array | None = None
        if observer is not None:
            executor = node.pod.packet_function.executor
            self._reporter = PacketReporter(
                observer,
                PacketRun(
                    label=node.label,
                    node_hash=next(
                        (s[7:] for s in store.record_path if s.startswith("schema:")), ""
                    ),
                    record_path=tuple(store.record_path),
                    total=plan.num_rows,
                    executor_type=getattr(executor, "executor_type_id", "none"),
                    describe=self._describe,
                ),
            )
            self._entry_rows = np.bincount(plan.codes, minlength=plan.num_entries)
        #: recorded entries whose result is gone -> the result id their record points at
        self._lost: dict[int, str] = {}
        #: (novel entries, their packet codes, per-packet outcome) while novel entries run
        self._progress: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        #: (distinct input hashes, the packets to call) once known
        self._called: tuple[pa.Array, np.ndarray] | None = None
        #: which of some distinct input hashes this run computed already (a streaming run's
        #: earlier chunks); None: none
        self.computed_earlier: Callable[[pa.Array], np.ndarray] | None = None
        #: which chunk of a chunked run this is (None: the whole input); it scopes work claims
        self.chunk: int | None = None
        self._writer = writer_type(
            cache=store.cache,
            variation=self._pf.get_function_variation_data,
            execution=self._pf.get_execution_data,
            pipeline_db=store.pipeline_db,
            failure_db=store.failure_db,
            record_path=store.record_path,
            record_id_column=PIPELINE_ENTRY_ID,
            failure_id_column=FAILURE_ID,
            policy=node.flush_policy,
        )

    def run(self, max_concurrency: int | None) -> NodeRunSummary:
        reporter = self._reporter
        try:
            novel = self._recorded()
            if len(novel):
                self._novel(novel, max_concurrency)
        finally:
            try:
                self._writer.flush()
            finally:
                if reporter is not None:
                    reporter.close()
                # the writer's callbacks and the reporter point back at this run: without
                # them the run is freed as soon as it is dropped, not at the next full
                # garbage collection (a chunked run would otherwise keep every chunk's)
                self._writer.build_records = None
                self._writer.on_unstorable = None
                self._reporter = None
        counts = np.bincount(self._category[self._plan.codes], minlength=5)
        return NodeRunSummary(
            label=self._node.label,
            computed=int(counts[_COMPUTED]),
            reused=int(counts[_REUSED]),
            filtered=int(counts[_FILTERED] + counts[_SKIPPED]),
            failed=int(counts[_FAILED]),
        )

    @property
    def writer(self) -> RunWriter:
        return self._writer

    def settled(self) -> np.ndarray:
        """Per distinct entry, what has happened to it so far (``_SKIPPED``: not yet known);
        right after a commit every known entry is stored (a streaming run passes those on)."""
        category = self._category.copy()
        if self._progress is not None:
            novel, codes, outcome = self._progress
            category[novel] = outcome[codes]
        return category

    def computed_hashes(self) -> pa.Array:
        """Input hashes of the packets this run called and stored (outputs and filtered)."""
        if self._called is None or self._progress is None:
            return pa.array([], pa.large_string())
        distinct, misses = self._called
        outcome = self._progress[2]
        stored = misses[np.isin(outcome[misses], (_COMPUTED, _FILTERED))]
        return distinct.take(pa.array(stored, type=pa.int64()))

    def _recorded(self) -> np.ndarray:
        """Mark the recorded entries; return the indices of the novel ones."""
        plan, store, category, writer = self._plan, self._store, self._category, self._writer
        # the novel entry ids are verified absent at this version: their records skip the
        # database's duplicate check against everything committed up to it
        stored = self._stored
        if stored is None:
            writer.records_absent_at = store.pipeline_db.committed_version(store.record_path)
            found = store.recorded(plan, [PACKET_ID])
        else:
            writer.records_absent_at = stored.version
            found = stored.recorded(plan)
        if found is None:
            return np.arange(plan.num_entries, dtype=np.int64)
        records, which = found
        packet_ids = records.column(PACKET_ID)
        has_result = pc.is_valid(packet_ids).to_numpy(False)
        category[which] = np.where(has_result, _REUSED, _FILTERED)
        reporter = self._reporter
        novel = np.ones(plan.num_entries, dtype=bool)
        novel[which] = False
        # a record whose result is gone (the result store was switched, deleted, or kept in
        # memory by an earlier process) is no reuse: its entry is looked up / computed again
        pointing = np.flatnonzero(has_result)
        if len(pointing):
            if stored is None:
                exist = store.results_exist(packet_ids.take(pa.array(pointing)).combine_chunks())
            else:
                rows = records.column(STORED_ROW).to_numpy()
                exist = stored.results_exist_at(rows[pointing])
            lost = pointing[~exist]
            novel[which[lost]] = True
            category[which[lost]] = _SKIPPED
            if len(lost):
                # their records stay (append-only): the result is stored again under the id
                # they point at, and no record is written twice (a full duplicate check)
                lost_ids = packet_ids.take(pa.array(lost)).to_pylist()
                self._lost = dict(zip(which[lost].tolist(), lost_ids, strict=True))
                writer.records_absent_at = None
        if reporter is not None:
            self._settled(np.flatnonzero(category == _REUSED), PacketOutcome.REUSED)
            self._settled(np.flatnonzero(category == _FILTERED), PacketOutcome.FILTERED)
        return np.flatnonzero(novel)

    def _settled(self, entries: np.ndarray, outcome: PacketOutcome) -> None:
        """Report the input rows of ``entries`` as settled with ``outcome`` (bulk)."""
        assert self._reporter is not None and self._entry_rows is not None
        if len(entries):
            self._reporter.settled(outcome, int(self._entry_rows[entries].sum()))

    def _describe(self, keys: Sequence[int] | np.ndarray) -> pa.Table:
        """Per packet key: user tags of its first row and its input packet hash."""
        assert self._groups is not None and self._distinct is not None
        packets = np.asarray(keys, dtype=np.int64)
        rows = self._plan.first_rows[self._groups.first_entries(packets)]
        tags = self._plan.tags(rows, user_only=True)
        return tags.append_column(INPUT_PACKET_HASH, self._distinct.take(pa.array(packets)))

    def _novel(self, novel: np.ndarray, max_concurrency: int | None) -> None:
        """Novel entries: one result-cache lookup; compute each distinct missing packet once."""
        plan, store, writer = self._plan, self._store, self._writer
        rows = plan.first_rows[novel]
        codes, first = unique_keys(digest_keys(plan.input_digests.take(pa.array(rows))))
        groups = PacketGroups(novel, codes, len(first))
        distinct = plan.input_hashes(rows[first])
        self._groups, self._distinct = groups, distinct
        writer.build_records = lambda packets, ids, computed: self._records_for(
            groups, packets, ids, computed
        )
        pf = self._pf
        tier = self._node.cache_match
        execution = pf.get_execution_data() if tier is CacheMatch.STRICT else {}
        writer.results_absent_at = store.cache.committed_version()  # misses verified absent
        answers = lookup(store.cache, distinct, match_constraints(tier, pf.code_hash, execution))
        # a packet of a record whose result is gone is computed again and stored under the id
        # that record points at (its record cannot change), whatever the look-up found
        forced = np.zeros(len(distinct), dtype=bool)
        if self._lost:
            entries = np.fromiter(self._lost, dtype=np.int64, count=len(self._lost))
            packets = codes[np.searchsorted(novel, entries)]
            forced[packets] = True
            writer.fixed_ids = dict(zip(packets.tolist(), self._lost.values(), strict=True))
        outcome = np.full(len(distinct), _SKIPPED, dtype=np.int8)
        self._progress = (novel, codes, outcome)
        # a hit on a packet this same run computed (an earlier chunk of a streaming run)
        # counts as computed, as it does when both rows are in one input
        earlier = np.zeros(len(distinct), dtype=bool)
        if self.computed_earlier is not None and len(distinct):
            earlier = self.computed_earlier(distinct)
        outcome[answers.hit & ~forced] = _REUSED
        outcome[answers.hit & ~forced & earlier] = _COMPUTED
        outcome[answers.filtered & ~forced] = _FILTERED
        for computed in (False, True):
            hits = np.flatnonzero(
                (answers.hit | answers.filtered) & ~forced & (earlier == computed)
            )
            if len(hits):
                ids = answers.record_ids.take(pa.array(hits))
                writer.add_records(self._records_for(groups, hits, ids, computed))
        misses = np.flatnonzero(answers.miss | forced)
        if self._reporter is not None:
            self._settled(novel[outcome[codes] == _REUSED], PacketOutcome.REUSED)
            self._settled(novel[outcome[codes] == _FILTERED], PacketOutcome.FILTERED)
        self._called = (distinct, misses)
        try:
            if len(misses) and pf.is_active():
                self._compute(groups, distinct, misses, outcome, max_concurrency)
        finally:
            self._category[novel] = outcome[codes]
        if self._reporter is not None:  # an inactive function's rows count as filtered
            self._settled(novel[outcome[codes] == _SKIPPED], PacketOutcome.FILTERED)

    def _records_for(
        self,
        groups: PacketGroups,
        packets: np.ndarray,
        packet_ids: pa.Array,
        computed: bool,
    ) -> pa.Table:
        """Pipeline records of every entry of ``packets`` (``packet_ids``: per packet)."""
        plan = self._plan
        entries, owner = groups.members(packets)
        rows = pa.array(plan.first_rows[entries])
        return pipeline_record_table(
            plan.table,
            rows,
            plan.record_columns,
            plan.entry_ids(rows),
            plan.input_hashes(rows),
            packet_ids.take(pa.array(owner)),
            computed,
        )

    def _compute(
        self,
        groups: PacketGroups,
        distinct: pa.Array,
        misses: np.ndarray,
        outcome: np.ndarray,
        max_concurrency: int | None,
    ) -> None:
        """Call the function once per distinct missing packet (windowed when concurrent)."""
        plan, writer, pf, node = self._plan, self._writer, self._pf, self._node
        window = node.pod.concurrency_window(max_concurrency)
        reporter = self._reporter
        packet_rows: list[int] | None = None  # input rows per packet (with an observer)
        if reporter is not None:
            assert self._entry_rows is not None
            packet_rows = (
                np.bincount(
                    groups.codes, weights=self._entry_rows[groups.entries], minlength=len(distinct)
                )
                .astype(np.int64)
                .tolist()
            )
        computed, filtered, crashed = (
            PacketOutcome.COMPUTED,
            PacketOutcome.FILTERED,
            PacketOutcome.FAILED,
        )

        def done(miss: int, output: Packet | dict[str, Any] | None) -> None:
            outcome[miss] = _FILTERED if output is None else _COMPUTED
            writer.add_computed(miss, output)
            if reporter is not None:
                assert packet_rows is not None
                reporter.end(miss, filtered if output is None else computed, packet_rows[miss])
            writer.maybe_flush()

        def failed(miss: int, err: Exception) -> None:
            outcome[miss] = _FAILED
            if reporter is not None:
                assert packet_rows is not None
                reporter.end(miss, crashed, packet_rows[miss], err)
            entries, _ = groups.members(np.array([miss]))
            rows = pa.array(plan.first_rows[entries])
            writer.add_failures(
                failure_table(
                    plan.tags(rows), plan.entry_ids(rows), distinct[miss].as_py(), err, utc_now()
                )
            )
            if node.error_policy is ErrorPolicy.FAIL_FAST:
                tag = plan.tags(rows.slice(0, 1), user_only=True).to_pylist()[0]
                raise ExecutionError(
                    f"function {pf.canonical_function_name!r} of node {node.label!r} failed on "
                    f"the row with tag {tag!r}: {type(err).__name__}: {err}. The failure is "
                    "recorded (node.failures()); fix the function or the input and run again - "
                    "finished rows are kept and only failed or new rows are computed."
                ) from err

        _, packet_schema = node.read_stream.output_schema()
        # input hashes are taken per commit (vectorised), not kept as a string per row
        writer.input_hashes = lambda packets: distinct.take(pa.array(packets))

        def unstorable(miss: int, err: Exception) -> None:  # fails only its row
            named = PacketFunctionError(f"function {pf.canonical_function_name!r}: {err}")
            named.__cause__ = err
            failed(miss, named)

        writer.on_unstorable = unstorable
        # one by one, a plain function's outputs are kept as values (no packet per row): the
        # writer derives their source info from the stored record ids
        values = node.pod.sequential_values() if window == 1 else None
        call = None if values is None else values[0]

        finished_at: list[float] = []  # when the first two calls finished

        def compute(
            items: np.ndarray, heartbeat: Callable[[], None] = _no_op, flush: bool = True
        ) -> list[float]:
            packets = plan.packets(plan.first_rows[groups.first_entries(items)], packet_schema)

            def done_beating(miss: int, output: Packet | dict[str, Any] | None) -> None:
                if len(finished_at) < 2:
                    finished_at.append(time.monotonic())
                done(miss, output)
                heartbeat()

            def failed_beating(miss: int, err: Exception) -> None:
                if len(finished_at) < 2:
                    finished_at.append(time.monotonic())
                failed(miss, err)

            def done_in_bulk(misses: list[int], outputs: list[dict[str, Any] | None]) -> None:
                keys = np.array(misses, dtype=np.int64)
                filtered_out = np.fromiter((o is None for o in outputs), bool, len(outputs))
                outcome[keys] = np.where(filtered_out, _FILTERED, _COMPUTED)
                writer.add_computed_many(misses, outputs)
                heartbeat()

            # outputs in bulk, except for the first calls, which are timed one by one
            bulk = done_in_bulk if begin is None and window == 1 and len(items) > 2 else None
            call_each(
                pf,
                items,
                packets,
                window,
                done_beating,
                failed_beating,
                call=call,
                begin=begin,
                done_many=bulk,
            )
            if flush:
                writer.flush()  # now, so rows that fail only at the write count as failed
            return finished_at

        begin = None if reporter is None else reporter.begin
        if reporter is not None:  # one by one in this thread: captured here, not per call
            in_process = pf.executor is None or isinstance(pf.executor, LocalExecutor)
            reporter.capture_here(window == 1 and in_process)
        try:
            self._compute_shared(compute, groups, distinct, misses, outcome, window)
        finally:
            if reporter is not None:
                reporter.release()

    def _compute_shared(
        self,
        compute: Callable[..., list[float]],
        groups: PacketGroups,
        distinct: pa.Array,
        misses: np.ndarray,
        outcome: np.ndarray,
        window: int,
    ) -> None:
        """``compute`` the missing packets, sharing them with other processes through work
        claims when the store is persistent and the work is long enough to pay for them."""
        plan, writer, pf, store = self._plan, self._writer, self._pf, self._store
        claims = self._node.work_claims
        if claims is None or len(misses) < 2 or not store.cache.database.persistent:
            compute(misses)
            return
        # one claims table per code version, input and chunk: a rerun over a changed input
        # (new rows), or a run's next chunk, forms its buckets afresh, not under finished ones
        data = self._node.read_stream.content_hash().to_hex(16)
        scope = f"code:{pf.code_hash}:input:{data}"
        if self.chunk is not None:
            scope += f":chunk:{self.chunk}"
        book = ClaimBook(
            store.cache.database.at("_claims"),
            (*store.cache.record_path, scope),
            claims.lease_seconds,
        )
        writer.prepare()  # reads the function's data now: the calls are timed alone
        # the first two calls say whether sharing the work pays: the faster of them (the
        # first also pays one-off costs) times the number of missing packets
        started = time.monotonic()
        finished_at = compute(misses[:2], flush=False)
        rest = misses[2:]
        ends = [*finished_at, time.monotonic(), time.monotonic()][:2]
        took = ends[0] - started
        if window == 1:
            took = min(took, ends[1] - ends[0])
        work = claims.min_work_seconds
        if 0 < work <= took * len(misses) < _CONFIRM_BELOW * work and len(rest):
            # near the threshold, two calls of a cheap function slowed by a busy machine can
            # look long: time a few more calls (about _CONFIRM_SECONDS' worth) and keep the
            # lower per-call figure
            probe = rest[: max(2, int(_CONFIRM_SECONDS / max(took, 1e-9)))]
            started = time.monotonic()
            compute(probe, flush=False)
            took = min(took, (time.monotonic() - started) / len(probe))
            rest = rest[len(probe) :]
        if took * len(misses) < work or len(rest) == 0:
            compute(rest)
            return
        writer.flush()
        keys = bucket_keys(distinct.take(pa.array(rest)), plan.num_entries)
        buckets = {k: rest[keys == k] for k in dict.fromkeys(keys.tolist())}
        share_work(
            book,
            buckets,
            compute,
            lambda items: self._stored_elsewhere(groups, distinct, items, outcome),
            claims.poll_seconds,
            start=zlib.crc32(book.owner.encode()),
            min_batch=window,
        )

    def _stored_elsewhere(
        self, groups: PacketGroups, distinct: pa.Array, items: np.ndarray, outcome: np.ndarray
    ) -> np.ndarray:
        """Of the missing packets ``items``, record those another process has stored since
        (as reused, or filtered) and return the others."""
        pf, tier = self._pf, self._node.cache_match
        execution = pf.get_execution_data() if tier is CacheMatch.STRICT else {}
        answers = lookup(
            self._store.cache,
            distinct.take(pa.array(items)),
            match_constraints(tier, pf.code_hash, execution),
        )
        found = answers.hit | answers.filtered
        if found.any():
            outcome[items[answers.hit]] = _REUSED
            outcome[items[answers.filtered]] = _FILTERED
            if self._reporter is not None:
                self._settled(groups.members(items[answers.hit])[0], PacketOutcome.REUSED)
                self._settled(groups.members(items[answers.filtered])[0], PacketOutcome.FILTERED)
            ids = answers.record_ids.take(pa.array(np.flatnonzero(found)))
            self._writer.add_records(self._records_for(groups, items[found], ids, False))
            self._writer.flush()
        return items[~found]
