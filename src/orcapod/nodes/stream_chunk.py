"""``StreamChunk``: one received chunk of a streaming function node run, through the engine's
identify and look-up phases, with the bookkeeping its calls and its rows passed on need.

A streaming run (``orcapod.nodes.function_stream``) keeps ONE window of calls in flight across
chunk boundaries, so a chunk's look-ups happen while the previous chunk's last calls run and a
chunk's calls are collected by the run's loop, not by the chunk. The chunk does what one
synchronous ``FunctionRun`` does before and around its calls, for its own rows:

1. ``lookup()``: its recorded entries (ONE projected query: reused, or filtered; a record
   whose result is gone is novel again and its result is stored again under the id the
   record points at), then ONE result-cache look-up of its novel entries' distinct input
   packets: hits (and stored filtered results) become new pipeline records, the rest are the
   chunk's ``misses`` - the packets to call. A hit on a packet an earlier chunk of the same
   run computed counts as computed, as it does when both rows are in one input.
2. Per call collected by the run: ``done`` / ``failed`` set the packet's outcome (a failure
   becomes a failure record; under ``fail_fast`` an ``ExecutionError`` naming the row's tag is
   raised once the finished work is written).
3. ``summary()`` counts every row once, as a synchronous run does.

Packet indices: the run's writer spans chunks, so each chunk's packets are numbered from the
chunk's ``base`` (``base + i`` for its ``i``-th distinct packet) in the writer's calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orcapod.data import Packet
from orcapod.errors import ExecutionError
from orcapod.executors import LocalExecutor
from orcapod.functions.engine.events import PacketOutcome, PacketReporter, PacketRun
from orcapod.functions.engine.identify import InputPlan, PacketGroups
from orcapod.functions.engine.keys import digest_keys, unique_keys
from orcapod.functions.engine.lookup import Answers, lookup
from orcapod.functions.result_cache import match_constraints
from orcapod.nodes.function_run import SKIPPED, RunSettings
from orcapod.nodes.node_store import NodeStore
from orcapod.nodes.records import failure_table, pipeline_record_table, utc_now
from orcapod.types import CacheMatch, ErrorPolicy
from orcapod.types.columns import COMPUTED, INPUT_PACKET_HASH, PACKET_ID, POD_TS, RECORD_ID

__all__ = ["StreamChunk"]

# what happened to a distinct entry (the values ``FunctionRun`` uses)
_COMPUTED, _REUSED, _FILTERED, _FAILED = range(4)
assert SKIPPED == 4
_SKIPPED = SKIPPED


class StreamChunk:
    """One chunk of a streaming run (see the module docstring)."""

    def __init__(
        self,
        settings: RunSettings,
        plan: InputPlan,
        store: NodeStore,
        base: int,
        observer: Any = None,
    ) -> None:
        self.settings = settings
        self.plan = plan
        self.store = store
        self.base = base
        self._pf = settings.pod.packet_function
        self.category = np.full(plan.num_entries, _SKIPPED, dtype=np.int8)
        #: novel entries, their packet codes, the packets' input hashes and outcomes
        self.novel = np.empty(0, dtype=np.int64)
        self.codes = np.empty(0, dtype=np.int64)
        self.distinct: pa.Array = pa.array([], pa.large_string())
        self.outcome = np.empty(0, dtype=np.int8)
        self.groups: PacketGroups | None = None
        #: the packets to call (local indices), and how many of them were collected
        self.misses = np.empty(0, dtype=np.int64)
        self.collected = 0
        self.marked = 0  # outcomes the writer holds
        #: every row passed on (set by the writer; read by the loop)
        self.passed = False
        #: the versions at which the chunk's ids were verified absent (None: unverified)
        self.records_absent_at: int | None = None
        self.results_absent_at: int | None = None
        #: global packet index -> result id to store it under (records whose result is gone)
        self.fixed_ids: dict[int, str] = {}
        self._lost: dict[int, str] = {}  # recorded entries whose result is gone -> its id
        #: rows passed on so far (in input order)
        self.emitted = 0
        #: the result rows this run wrote for its packets (``keep``), and per packet its row in
        #: them (-1: none written by this run)
        self._stash: list[pa.Table] = []
        self._stash_rows = 0
        self._stash_at = np.empty(0, dtype=np.int64)
        self.reporter: PacketReporter | None = None
        self._entry_rows: np.ndarray | None = None
        self._packet_rows: list[int] | None = None
        if observer is not None:
            executor = self._pf.executor
            self.reporter = PacketReporter(
                observer,
                PacketRun(
                    label=settings.label,
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

    # -- look-ups -----------------------------------------------------------------------------

    def lookup(
        self,
        computed_earlier: Callable[[pa.Array], np.ndarray],
        absent_at: tuple[int | None, int | None] | None = None,
    ) -> pa.Table | None:
        """Look the chunk's entries and packets up; the records of its hits (to write).

        ``absent_at``: the run already knows that none of the chunk's entries is recorded and
        none of its packets is in the result cache, as of these versions (records, results):
        nothing is queried and every packet is a miss."""
        if absent_at is not None:
            self.records_absent_at = absent_at[0]
            novel = np.arange(self.plan.num_entries, dtype=np.int64)
        else:
            novel = self._recorded()
        if not len(novel):
            return None
        return self._novel(novel, computed_earlier, absent_at)

    def _recorded(self) -> np.ndarray:
        plan, store, category = self.plan, self.store, self.category
        self.records_absent_at = store.pipeline_db.committed_version(store.record_path)
        found = store.recorded(plan, [PACKET_ID])
        if found is None:
            return np.arange(plan.num_entries, dtype=np.int64)
        records, which = found
        packet_ids = records.column(PACKET_ID)
        has_result = pc.is_valid(packet_ids).to_numpy(False)
        category[which] = np.where(has_result, _REUSED, _FILTERED)
        novel = np.ones(plan.num_entries, dtype=bool)
        novel[which] = False
        pointing = np.flatnonzero(has_result)
        lost: dict[int, str] = {}
        if len(pointing):
            exist = store.results_exist(packet_ids.take(pa.array(pointing)).combine_chunks())
            gone = pointing[~exist]
            novel[which[gone]] = True
            category[which[gone]] = _SKIPPED
            if len(gone):
                ids = packet_ids.take(pa.array(gone)).to_pylist()
                lost = dict(zip(which[gone].tolist(), ids, strict=True))
                self.records_absent_at = None  # a full duplicate check for their records
        self._lost = lost
        self._settled(np.flatnonzero(category == _REUSED), PacketOutcome.REUSED)
        self._settled(np.flatnonzero(category == _FILTERED), PacketOutcome.FILTERED)
        return np.flatnonzero(novel)

    def _novel(
        self,
        novel: np.ndarray,
        computed_earlier: Callable[[pa.Array], np.ndarray],
        absent_at: tuple[int | None, int | None] | None,
    ) -> pa.Table | None:
        plan, store = self.plan, self.store
        rows = plan.first_rows[novel]
        codes, first = unique_keys(digest_keys(plan.input_digests.take(pa.array(rows))))
        groups = PacketGroups(novel, codes, len(first))
        distinct = plan.input_hashes(rows[first])
        self.novel, self.codes, self.groups, self.distinct = novel, codes, groups, distinct
        pf, tier = self._pf, self.settings.cache_match
        execution = pf.get_execution_data() if tier is CacheMatch.STRICT else {}
        if absent_at is not None:
            self.results_absent_at = absent_at[1]
            none = np.zeros(len(distinct), dtype=bool)
            answers = Answers(pa.nulls(len(distinct), pa.large_string()), none, none.copy())
        else:
            self.results_absent_at = store.cache.committed_version()
            constraints = match_constraints(tier, pf.code_hash, execution)
            answers = lookup(store.cache, distinct, constraints)
        forced = np.zeros(len(distinct), dtype=bool)
        if self._lost:
            entries = np.fromiter(self._lost, dtype=np.int64, count=len(self._lost))
            packets = codes[np.searchsorted(novel, entries)]
            forced[packets] = True
            self.fixed_ids = dict(
                zip((packets + self.base).tolist(), self._lost.values(), strict=True)
            )
        outcome = np.full(len(distinct), _SKIPPED, dtype=np.int8)
        earlier = computed_earlier(distinct) if len(distinct) else np.zeros(0, dtype=bool)
        outcome[answers.hit & ~forced] = _REUSED
        outcome[answers.hit & ~forced & earlier] = _COMPUTED
        outcome[answers.filtered & ~forced] = _FILTERED
        self.outcome = outcome
        self._stash_at = np.full(len(distinct), -1, dtype=np.int64)
        parts = []
        for computed in (False, True):
            found = (answers.hit | answers.filtered) & ~forced
            hits = np.flatnonzero(found & (earlier == computed))
            if len(hits):
                ids = answers.record_ids.take(pa.array(hits))
                parts.append(self.records_for(hits, ids, computed))
        if self.reporter is not None:
            self._settled(novel[outcome[codes] == _REUSED], PacketOutcome.REUSED)
            self._settled(novel[outcome[codes] == _FILTERED], PacketOutcome.FILTERED)
        if pf.is_active():
            self.misses = np.flatnonzero(answers.miss | forced)
        self._sync_category()
        if self.reporter is not None and not len(self.misses):
            self._settled(novel[outcome[codes] == _SKIPPED], PacketOutcome.FILTERED)
        if self.reporter is not None and len(self.misses):
            assert self._entry_rows is not None
            self._packet_rows = (
                np.bincount(codes, weights=self._entry_rows[novel], minlength=len(distinct))
                .astype(np.int64)
                .tolist()
            )
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else pa.concat_tables(parts)

    def _sync_category(self) -> None:
        if len(self.novel):
            self.category[self.novel] = self.outcome[self.codes]

    # -- calls (the run's loop) ---------------------------------------------------------------

    def packets(self, packet_schema: Any) -> Iterator[Packet]:
        """The input packets of the chunk's misses, in order."""
        assert self.groups is not None
        rows = self.plan.first_rows[self.groups.first_entries(self.misses)]
        return self.plan.packets(rows, packet_schema)

    def capture_here(self, window: int) -> None:
        if self.reporter is not None:
            executor = self._pf.executor
            in_process = executor is None or isinstance(executor, LocalExecutor)
            self.reporter.capture_here(window == 1 and in_process)

    def begin(self, packet: int) -> Any:
        return None if self.reporter is None else self.reporter.begin(packet)

    def ended(self, packet: int, output: object, err: Exception | None = None) -> bool:
        """The call of ``packet`` (local index) returned ``output`` (None: filtered) or failed
        with ``err``; True once every call of the chunk was collected (its events are then
        closed)."""
        self.collected += 1
        if self.reporter is not None:
            assert self._packet_rows is not None
            if err is not None:
                outcome = PacketOutcome.FAILED
            else:
                outcome = PacketOutcome.FILTERED if output is None else PacketOutcome.COMPUTED
            self.reporter.end(packet, outcome, self._packet_rows[packet], err)
        done = self.collected >= len(self.misses)
        if done:
            self.close_events()
        return done

    def failure_records(self, packet: int, err: Exception) -> pa.Table:
        """The failure records of the entries of ``packet`` (local index)."""
        assert self.groups is not None
        entries, _ = self.groups.members(np.array([packet]))
        rows = pa.array(self.plan.first_rows[entries])
        plan = self.plan
        return failure_table(
            plan.tags(rows), plan.entry_ids(rows), self.distinct[packet].as_py(), err, utc_now()
        )

    def fail_fast_error(self, packet: int, err: Exception) -> ExecutionError | None:
        """The error that stops the run when ``packet`` failed under ``fail_fast``."""
        settings = self.settings
        if settings.error_policy is not ErrorPolicy.FAIL_FAST:
            return None
        assert self.groups is not None
        entries, _ = self.groups.members(np.array([packet]))
        rows = pa.array(self.plan.first_rows[entries])
        tag = self.plan.tags(rows.slice(0, 1), user_only=True).to_pylist()[0]
        error = ExecutionError(
            f"function {self._pf.canonical_function_name!r} of node {settings.label!r} failed "
            f"on the row with tag {tag!r}: {type(err).__name__}: {err}. The failure is "
            "recorded (node.failures()); fix the function or the input and run again - "
            "finished rows are kept and only failed or new rows are computed."
        )
        error.__cause__ = err
        return error

    def close_events(self) -> None:
        """Release the capture and close the chunk's events (idempotent)."""
        reporter, self.reporter = self.reporter, None
        if reporter is not None:
            reporter.release()
            reporter.close()

    # -- outcomes (the run's writer) ----------------------------------------------------------

    def mark(
        self, packet: int, output: object, failed: bool = False, collected: bool = True
    ) -> None:
        """What the writer now holds for ``packet``: its output (None: filtered) or a failure
        (``collected=False``: a computed packet whose output could not be stored)."""
        if collected:
            self.marked += 1
        if failed:
            self.outcome[packet] = _FAILED
        else:
            self.outcome[packet] = _FILTERED if output is None else _COMPUTED

    @property
    def complete(self) -> bool:
        """The writer holds the outcome of every call of the chunk (or it needed none)."""
        return self.marked >= len(self.misses)

    # -- writes -------------------------------------------------------------------------------

    def records_for(self, packets: np.ndarray, packet_ids: pa.Array, computed: bool) -> pa.Table:
        """Pipeline records of every entry of ``packets`` (local; ``packet_ids`` per packet)."""
        assert self.groups is not None
        plan = self.plan
        entries, owner = self.groups.members(packets)
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

    def computed_hashes(self) -> pa.Array:
        """Input hashes of the packets this chunk called and stored (outputs and filtered)."""
        called = self.misses[np.isin(self.outcome[self.misses], (_COMPUTED, _FILTERED))]
        return self.distinct.take(pa.array(called, type=pa.int64()))

    def settled(self) -> np.ndarray:
        """Per distinct entry, what has happened to it so far (``SKIPPED``: not yet known)."""
        self._sync_category()
        return self.category

    def summary(self) -> np.ndarray:
        """Rows computed, reused, filtered (with never-called ones), failed."""
        self._sync_category()
        counts = np.bincount(self.category[self.plan.codes], minlength=5)
        return np.array(
            [counts[_COMPUTED], counts[_REUSED], counts[_FILTERED] + counts[_SKIPPED],
             counts[_FAILED]],
            dtype=np.int64,
        )  # fmt: skip

    # -- the rows just written -----------------------------------------------------------------

    def keep(self, packets: np.ndarray, table: pa.Table, columns: list[str]) -> None:
        """The writer stored ``table`` (one result row per local packet in ``packets``): keep
        its ``columns`` until the rows are passed on (no read-back needed)."""
        self._stash.append(table.select(columns))
        self._stash_at[packets] = self._stash_rows + np.arange(len(packets), dtype=np.int64)
        self._stash_rows += table.num_rows

    def written_rows(
        self, start: int, end: int, template: pa.Table, outputs: Sequence[str]
    ) -> pa.Table | None:
        """The stored rows (as ``template``) of input rows ``start:end``, built from the
        result rows this run just wrote; None when some row's result was not written by this
        run (reused, a cache hit), so it must be read from the store."""
        plan = self.plan
        rows = np.arange(start, end, dtype=np.int64)
        entries = plan.codes[rows]
        category = self.settled()[entries]
        if (category == _REUSED).any():
            return None
        computed = category == _COMPUTED
        rows, entries = rows[computed], entries[computed]
        entry_packet = np.full(plan.num_entries, -1, dtype=np.int64)
        entry_packet[self.novel] = self.codes
        packets = entry_packet[entries]
        at = self._stash_at[packets] if len(packets) else np.empty(0, dtype=np.int64)
        if (packets < 0).any() or (at < 0).any():
            return None
        if not len(rows):
            return template
        results = pa.concat_tables(self._stash) if len(self._stash) > 1 else self._stash[0]
        take = pa.array(at)
        columns: dict[str, Any] = {}
        tags = plan.tags(rows)
        for name in tags.column_names:
            columns[name] = tags.column(name)
        for name in outputs:
            columns[name] = results.column(name).take(take)
        columns[PACKET_ID] = results.column(RECORD_ID).take(take)
        columns[COMPUTED] = pa.array(np.ones(len(rows), dtype=bool))
        columns[INPUT_PACKET_HASH] = plan.input_hashes(rows)
        columns[POD_TS] = results.column(POD_TS).take(take)
        fields = template.schema
        return pa.table([_cast(columns[f.name], f.type) for f in fields], schema=fields)

    def release_rows(self) -> None:
        """Every row was passed on: drop the kept result rows."""
        self._stash = []

    # -- events -------------------------------------------------------------------------------

    def _settled(self, entries: np.ndarray, outcome: PacketOutcome) -> None:
        if self.reporter is not None and len(entries):
            assert self._entry_rows is not None
            self.reporter.settled(outcome, int(self._entry_rows[entries].sum()))

    def _describe(self, keys: Any) -> pa.Table:
        """Per packet key: user tags of its first row and its input packet hash."""
        assert self.groups is not None
        packets = np.asarray(keys, dtype=np.int64)
        rows = self.plan.first_rows[self.groups.first_entries(packets)]
        tags = self.plan.tags(rows, user_only=True)
        return tags.append_column(INPUT_PACKET_HASH, self.distinct.take(pa.array(packets)))


def _cast(column: Any, dtype: pa.DataType) -> Any:
    return column if column.type == dtype else column.cast(dtype)
