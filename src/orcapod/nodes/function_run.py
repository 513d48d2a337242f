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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orcapod.data import Packet
from orcapod.errors import ExecutionError, PacketFunctionError
from orcapod.functions import FunctionPod
from orcapod.functions.engine.dispatch import call_each
from orcapod.functions.engine.identify import InputPlan, PacketGroups
from orcapod.functions.engine.keys import digest_keys, unique_keys
from orcapod.functions.engine.lookup import lookup
from orcapod.functions.engine.write import RunWriter
from orcapod.functions.result_cache import match_constraints
from orcapod.nodes.node_store import NodeStore
from orcapod.nodes.records import failure_table, pipeline_record_table, utc_now
from orcapod.nodes.summary import NodeRunSummary
from orcapod.types import CacheMatch, ErrorPolicy, FlushPolicy
from orcapod.types.columns import FAILURE_ID, PACKET_ID, PIPELINE_ENTRY_ID

__all__ = ["SKIPPED", "FunctionRun", "RunSettings"]

# what happened to a distinct entry in one run
_COMPUTED, _REUSED, _FILTERED, _FAILED, _SKIPPED = range(5)
SKIPPED = _SKIPPED


@dataclass(frozen=True)
class RunSettings:
    """What a run needs to know of its node."""

    label: str
    pod: FunctionPod  #: the node's own pod (its executor is the node's)
    read_stream: Any  #: the input projected onto the function's parameters
    error_policy: ErrorPolicy
    cache_match: CacheMatch
    flush_policy: FlushPolicy


class FunctionRun:
    """One run of a function node (see the module docstring)."""

    def __init__(
        self,
        node: RunSettings,
        plan: InputPlan,
        store: NodeStore,
        writer_type: type[RunWriter] = RunWriter,
    ) -> None:
        self._node = node
        self._plan = plan
        self._store = store
        self._pf = node.pod.packet_function
        self._category = np.full(plan.num_entries, _SKIPPED, dtype=np.int8)
        #: recorded entries whose result is gone -> the result id their record points at
        self._lost: dict[int, str] = {}
        #: (novel entries, their packet codes, per-packet outcome) while novel entries run
        self._progress: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        #: (distinct input hashes, the packets to call) once known
        self._called: tuple[pa.Array, np.ndarray] | None = None
        #: which of some distinct input hashes this run computed already (a streaming run's
        #: earlier chunks); None: none
        self.computed_earlier: Callable[[pa.Array], np.ndarray] | None = None
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
        try:
            novel = self._recorded()
            if len(novel):
                self._novel(novel, max_concurrency)
        finally:
            self._writer.flush()
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
        writer.records_absent_at = store.pipeline_db.committed_version(store.record_path)
        found = store.recorded(plan, [PACKET_ID])
        if found is None:
            return np.arange(plan.num_entries, dtype=np.int64)
        records, which = found
        packet_ids = records.column(PACKET_ID)
        has_result = pc.is_valid(packet_ids).to_numpy(False)
        category[which] = np.where(has_result, _REUSED, _FILTERED)
        novel = np.ones(plan.num_entries, dtype=bool)
        novel[which] = False
        # a record whose result is gone (the result store was switched, deleted, or kept in
        # memory by an earlier process) is no reuse: its entry is looked up / computed again
        pointing = np.flatnonzero(has_result)
        if len(pointing):
            exist = store.results_exist(packet_ids.take(pa.array(pointing)).combine_chunks())
            lost = pointing[~exist]
            novel[which[lost]] = True
            category[which[lost]] = _SKIPPED
            if len(lost):
                # their records stay (append-only): the result is stored again under the id
                # they point at, and no record is written twice (a full duplicate check)
                lost_ids = packet_ids.take(pa.array(lost)).to_pylist()
                self._lost = dict(zip(which[lost].tolist(), lost_ids, strict=True))
                writer.records_absent_at = None
        return np.flatnonzero(novel)

    def _novel(self, novel: np.ndarray, max_concurrency: int | None) -> None:
        """Novel entries: one result-cache lookup; compute each distinct missing packet once."""
        plan, store, writer = self._plan, self._store, self._writer
        rows = plan.first_rows[novel]
        codes, first = unique_keys(digest_keys(plan.input_digests.take(pa.array(rows))))
        groups = PacketGroups(novel, codes, len(first))
        distinct = plan.input_hashes(rows[first])
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
        self._called = (distinct, misses)
        try:
            if len(misses) and pf.is_active():
                self._compute(groups, distinct, misses, outcome, max_concurrency)
        finally:
            self._category[novel] = outcome[codes]

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

        def done(miss: int, output: Packet | dict[str, Any] | None) -> None:
            outcome[miss] = _FILTERED if output is None else _COMPUTED
            writer.add_computed(miss, output)
            writer.maybe_flush()

        def failed(miss: int, err: Exception) -> None:
            outcome[miss] = _FAILED
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
        writer.input_hashes = lambda packets: distinct.take(pa.array(packets)).to_pylist()
        packets = plan.packets(
            plan.first_rows[groups.first_entries(np.array(misses))], packet_schema
        )

        def unstorable(miss: int, err: Exception) -> None:  # fails only its row
            named = PacketFunctionError(f"function {pf.canonical_function_name!r}: {err}")
            named.__cause__ = err
            failed(miss, named)

        writer.on_unstorable = unstorable
        # one by one, a plain function's outputs are kept as values (no packet per row): the
        # writer derives their source info from the stored record ids
        values = node.pod.sequential_values() if window == 1 else None
        call = None if values is None else values[0]
        call_each(pf, misses, packets, window, done, failed, call=call)
        writer.flush()  # now, so rows that fail only at the write count as failed
