"""``ChunkWork``: one chunk of a function node's input through the engine's identify and
look-up phases, and what its calls turn into (outcomes, records, failures, packet events).

The one per-chunk path of every ``FunctionNode`` run: synchronous (``function_run``) and
streaming (``stream_chunk``) runs differ only in how they call the function and when they write.

1. ``lookup()``: the chunk's recorded entries (ONE projected query, or the run's
   ``StoredEntries``): a record with a result is reused, one with a null ``__packet_id`` is
   a filtered row; a record whose result is gone (the result store was switched, deleted, or
   in memory in an earlier process) is novel again, its result stored again under the id the
   record points at (``fixed_ids``). Then ONE result-cache look-up of the novel entries'
   distinct input packets (``PacketGroups``: a packet is called once however many tags it
   appears under): hits and stored filtered results become new records (returned, to
   write), the rest are ``misses`` - the packets to call (none for an inactive function,
   whose rows count as filtered). A hit on a packet an earlier chunk of the run computed
   counts as computed. The versions seen before the look-ups (``records_absent_at`` /
   ``results_absent_at``) are those the writes are verified absent at.
2. Per call: ``mark`` (the outcome; ``mark_many`` for calls handed on in bulk), ``ended``
   (its packet event), ``failure_records`` and ``fail_fast_error`` for a failed call,
   ``unstorable`` for an output the store cannot hold (only its row fails); ``summary()``
   counts every input row once. A ``fail_fast`` error names the failed row by its tag, or by
   its input packet hash when the input has no tag columns (the hash ``node.failures()``
   shows).

A run whose writer spans chunks numbers a chunk's ``i``-th distinct packet ``base + i``.
Events (``engine.events``): each chunk is one engine run for a packet observer; a packet
key is a distinct packet's index in the chunk, the node's hash its record path's ``schema:``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod._arrow_without_pandas import column_numpy
from orcapod._lazy import pc
from orcapod.data import Packet
from orcapod.errors import ExecutionError, PacketFunctionError
from orcapod.executors import LocalExecutor
from orcapod.functions.engine.events import PacketOutcome, PacketRun
from orcapod.functions.engine.identify import InputPlan, PacketGroups
from orcapod.functions.engine.keys import digest_keys, unique_keys
from orcapod.functions.engine.lookup import Answers, lookup
from orcapod.functions.engine.reporter import CallLog, PacketReporter
from orcapod.functions.result_cache import match_constraints
from orcapod.nodes.node_store import NodeStore
from orcapod.nodes.records import failure_table, pipeline_record_table, utc_now
from orcapod.nodes.run_settings import COMPUTED, FAILED, FILTERED, REUSED, SKIPPED, RunSettings
from orcapod.nodes.stored_entries import STORED_ROW, StoredEntries
from orcapod.types import CacheMatch, ErrorPolicy
from orcapod.types.columns import INPUT_PACKET_HASH, PACKET_ID

__all__ = ["ChunkWork", "Versions"]

#: versions (records, results) at which none of a chunk's entries or packets is stored
Versions = tuple[int | None, int | None]


class ChunkWork:
    """One chunk of a run (see the module docstring)."""

    def __init__(
        self,
        settings: RunSettings,
        plan: InputPlan,
        store: NodeStore,
        base: int = 0,
        observer: Any = None,
    ) -> None:
        self.settings = settings
        self.plan = plan
        self.store = store
        self.base = base
        self._pf = settings.pod.packet_function
        self.category = np.full(plan.num_entries, SKIPPED, dtype=np.int8)
        #: novel entries, their packet codes, the packets' input hashes and outcomes
        self.novel = np.empty(0, dtype=np.int64)
        self.codes = np.empty(0, dtype=np.int64)
        self.distinct: pa.Array = pa.array([], pa.large_string())
        self.outcome = np.empty(0, dtype=np.int8)
        self.groups: PacketGroups | None = None
        #: the packets to call (local indices)
        self.misses = np.empty(0, dtype=np.int64)
        self.collected = 0  # calls ended
        self.marked = 0  # calls whose outcome is marked
        #: the versions at which the chunk's ids were verified absent (None: unverified)
        self.records_absent_at: int | None = None
        self.results_absent_at: int | None = None
        #: global packet index -> result id to store it under (records whose result is gone)
        self.fixed_ids: dict[int, str] = {}
        self._lost: dict[int, str] = {}  # recorded entries whose result is gone -> its id
        #: the record table's rows right after the look-up read it (None: not counted), and
        #: the chunk's entries that read found recorded
        self._stored_rows: int | None = None
        self._found_rows = 0
        self.reporter: PacketReporter | None = None
        self._entry_rows: np.ndarray | None = None  # input rows per entry (with an observer)
        self._packet_rows: list[int] | None = None  # input rows per packet (with misses)
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
        computed_earlier: Callable[[pa.Array], np.ndarray] | None = None,
        stored: StoredEntries | None = None,
        absent_at: Versions | None = None,
    ) -> pa.Table | None:
        """Look the chunk's entries and packets up; the records of its hits (to write).

        ``computed_earlier``: which of some input hashes earlier chunks of the run computed;
        ``stored``: what the node's tables held when the run started (None: ask the store);
        ``absent_at``: versions at which none of the chunk is stored (nothing is queried)."""
        if absent_at is not None:
            self.records_absent_at = absent_at[0]
            novel = np.arange(self.plan.num_entries, dtype=np.int64)
        else:
            novel = self._recorded(stored)
        if not len(novel):
            return None
        return self._novel(novel, computed_earlier, absent_at)

    def _recorded(self, stored: StoredEntries | None) -> np.ndarray:
        """Mark the recorded entries; return the indices of the novel ones."""
        plan, store, category = self.plan, self.store, self.category
        # the novel entry ids are verified absent at this version: their records skip the
        # database's duplicate check against everything committed up to it
        if stored is None:
            self.records_absent_at = store.pipeline_db.committed_version(store.record_path)
            found = store.recorded(plan, [PACKET_ID])
            # counted after the read (the state it read, or a newer one): a table that holds
            # no more records than the read found holds only the input's
            # (``every_record_held``); no request
            self._stored_rows = store.pipeline_db.count_records(store.record_path)
        else:
            self.records_absent_at = stored.version
            found = stored.recorded(plan)
        if found is None:
            return np.arange(plan.num_entries, dtype=np.int64)
        records, which = found
        self._found_rows = len(which)
        packet_ids = records.column(PACKET_ID)
        has_result = column_numpy(pc.is_valid(packet_ids))
        category[which] = np.where(has_result, REUSED, FILTERED)
        novel = np.ones(plan.num_entries, dtype=bool)
        novel[which] = False
        pointing = np.flatnonzero(has_result)
        if len(pointing):
            if stored is None:
                exist = store.results_exist(
                    packet_ids.take(pa.array(pointing, pa.int64())).combine_chunks()
                )
            else:
                exist = stored.results_exist_at(column_numpy(records.column(STORED_ROW))[pointing])
            gone = pointing[~exist]
            if len(gone):
                novel[which[gone]] = True
                category[which[gone]] = SKIPPED
                ids = packet_ids.take(pa.array(gone, pa.int64())).to_pylist()
                self._lost = dict(zip(which[gone].tolist(), ids, strict=True))
                # their records stay (append-only) and none is written twice: a full check
                self.records_absent_at = None
        self.settle(np.flatnonzero(category == REUSED), PacketOutcome.REUSED)
        self.settle(np.flatnonzero(category == FILTERED), PacketOutcome.FILTERED)
        return np.flatnonzero(novel)

    def _novel(
        self,
        novel: np.ndarray,
        computed_earlier: Callable[[pa.Array], np.ndarray] | None,
        absent_at: Versions | None,
    ) -> pa.Table | None:
        """Novel entries: one result-cache look-up of their distinct packets."""
        plan, store = self.plan, self.store
        rows = plan.first_rows[novel]
        codes, first = unique_keys(digest_keys(plan.input_digests.take(pa.array(rows, pa.int64()))))
        groups = PacketGroups(novel, codes, len(first))
        distinct = plan.input_hashes(rows[first])
        self.novel, self.codes, self.groups, self.distinct = novel, codes, groups, distinct
        if absent_at is not None:
            self.results_absent_at = absent_at[1]
            none = np.zeros(len(distinct), dtype=bool)
            answers = Answers(pa.nulls(len(distinct), pa.large_string()), none, none.copy())
        else:
            self.results_absent_at = store.cache.committed_version()  # misses verified absent
            answers = lookup(store.cache, distinct, self.constraints())
        # a packet of a record whose result is gone is computed again and stored under the id
        # that record points at (its record cannot change), whatever the look-up found
        forced = np.zeros(len(distinct), dtype=bool)
        if self._lost:
            entries = np.fromiter(self._lost, dtype=np.int64, count=len(self._lost))
            packets = codes[np.searchsorted(novel, entries)]
            forced[packets] = True
            self.fixed_ids = dict(
                zip((packets + self.base).tolist(), self._lost.values(), strict=True)
            )
        outcome = np.full(len(distinct), SKIPPED, dtype=np.int8)
        found = (answers.hit | answers.filtered) & ~forced
        earlier = np.zeros(len(distinct), dtype=bool)
        if computed_earlier is not None and found.any():  # only what was found can be
            at = np.flatnonzero(found)
            earlier[at] = computed_earlier(distinct.take(pa.array(at, pa.int64())))
        outcome[answers.hit & ~forced] = REUSED
        outcome[answers.hit & ~forced & earlier] = COMPUTED
        outcome[answers.filtered & ~forced] = FILTERED
        self.outcome = outcome
        parts = []
        for computed in (False, True):
            hits = np.flatnonzero(found & (earlier == computed))
            if len(hits):
                ids = answers.record_ids.take(pa.array(hits, pa.int64()))
                parts.append(self.records_for(hits, ids, computed))
        if self.reporter is not None:
            self.settle(novel[outcome[codes] == REUSED], PacketOutcome.REUSED)
            self.settle(novel[outcome[codes] == FILTERED], PacketOutcome.FILTERED)
        if self._pf.is_active():
            self.misses = np.flatnonzero(answers.miss | forced)
        self.settled()
        if self.reporter is not None:
            if not len(self.misses):  # an inactive function's rows count as filtered
                self.settle(novel[outcome[codes] == SKIPPED], PacketOutcome.FILTERED)
            else:
                assert self._entry_rows is not None
                self._packet_rows = (
                    np.bincount(codes, weights=self._entry_rows[novel], minlength=len(distinct))
                    .astype(np.int64)
                    .tolist()
                )
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else pa.concat_tables(parts)

    def constraints(self) -> Any:
        """What a stored result must match to answer for this run (the cache-match tier)."""
        pf, tier = self._pf, self.settings.cache_match
        execution = pf.get_execution_data() if tier is CacheMatch.STRICT else {}
        return match_constraints(tier, pf.code_hash, execution)

    # -- calls --------------------------------------------------------------------------------

    def packets(self, packet_schema: Any, packets: np.ndarray | None = None) -> Iterator[Packet]:
        """The input packets of ``packets`` (local; default: every miss), in order."""
        assert self.groups is not None
        which = self.misses if packets is None else packets
        rows = self.plan.first_rows[self.groups.first_entries(which)]
        return self.plan.packets(rows, packet_schema)

    def column_slices(
        self, packet_schema: Any, packets: np.ndarray
    ) -> Iterator[tuple[dict[str, list[Any]], int]]:
        """The input values of ``packets`` (local), in order, a slice of columns at a time
        (``InputPlan.column_slices``)."""
        assert self.groups is not None
        rows = self.plan.first_rows[self.groups.first_entries(packets)]
        return self.plan.column_slices(rows, packet_schema)

    def capture_here(self, window: int) -> None:
        """Calls run one by one in this thread are captured here, not per call."""
        if self.reporter is not None:
            executor = self._pf.executor
            in_process = executor is None or isinstance(executor, LocalExecutor)
            self.reporter.capture_here(window == 1 and in_process)

    def begin(self, packet: int) -> CallLog | None:
        """The call of ``packet`` (local) starts: the logger to pass it (None: none)."""
        return None if self.reporter is None else self.reporter.begin(packet)

    def report_many(self, packets: list[int], outputs: Sequence[object]) -> None:
        """Report calls run through ``reporter.timed`` that returned (in call order)."""
        if self.reporter is not None and self._packet_rows is not None:
            self.reporter.end_many(packets, outputs, self._packet_rows)

    def ended(self, packet: int, output: object, err: Exception | None = None) -> bool:
        """Report the call of ``packet`` (local) ended (``err``: failed); True once all did."""
        self.collected += 1
        if self.reporter is not None:
            assert self._packet_rows is not None
            if err is not None:
                outcome = PacketOutcome.FAILED
            else:
                outcome = PacketOutcome.FILTERED if output is None else PacketOutcome.COMPUTED
            self.reporter.end(packet, outcome, self._packet_rows[packet], err)
        return self.collected >= len(self.misses)

    def mark(
        self, packet: int, output: object, failed: bool = False, collected: bool = True
    ) -> None:
        """The outcome of ``packet`` (local): its output (None: filtered) or a failure."""
        if collected:
            self.marked += 1
        if failed:
            self.outcome[packet] = FAILED
        else:
            self.outcome[packet] = FILTERED if output is None else COMPUTED

    def mark_many(self, packets: Sequence[int], outputs: Sequence[object]) -> None:
        """``mark`` and ``ended`` of several calls that returned (a run without reporter)."""
        filtered = np.fromiter((o is None for o in outputs), bool, len(outputs))
        self.outcome[np.asarray(packets, dtype=np.int64)] = np.where(filtered, FILTERED, COMPUTED)
        self.marked, self.collected = self.marked + len(packets), self.collected + len(packets)

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
        if self.plan.tag_columns:
            tag = self.plan.tags(rows.slice(0, 1), user_only=True).to_pylist()[0]
            row = f"the row with tag {tag!r}"
        else:  # a tag-less input: its input packet hash names the row (node.failures())
            row = f"the row with input packet hash {self.distinct[packet].as_py()!r}"
        error = ExecutionError(
            f"function {self._pf.canonical_function_name!r} of node {settings.label!r} failed "
            f"on {row}: {type(err).__name__}: {err}. The failure is "
            "recorded (node.failures()); fix the function or the input and run again - "
            "finished rows are kept and only failed or new rows are computed."
        )
        error.__cause__ = err
        return error

    def unstorable(
        self, packet: int, err: Exception, report: bool
    ) -> tuple[pa.Table, ExecutionError | None]:
        """The output of ``packet`` (local) cannot be stored: only its row fails. Its failure
        records, and the error that stops the run under ``fail_fast``. ``report``: report
        the failure as the packet's event too (only from the thread that calls)."""
        named = PacketFunctionError(f"function {self._pf.canonical_function_name!r}: {err}")
        named.__cause__ = err
        self.mark(packet, None, failed=True, collected=False)
        if report and self.reporter is not None:
            assert self._packet_rows is not None
            self.reporter.end(packet, PacketOutcome.FAILED, self._packet_rows[packet], named)
        return self.failure_records(packet, named), self.fail_fast_error(packet, named)

    def release_capture(self) -> None:  # in the thread that called ``capture_here``
        if self.reporter is not None:
            self.reporter.release()

    def close_events(self) -> None:
        """Close the chunk's events (idempotent; after ``release_capture``)."""
        reporter, self.reporter = self.reporter, None
        if reporter is not None:
            reporter.close()

    # -- records and counts -------------------------------------------------------------------

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
            packet_ids.take(pa.array(owner, pa.int64())),
            computed,
        )

    def computed_hashes(self) -> pa.Array:
        """Input hashes of the packets this chunk called and stored (outputs and filtered)."""
        called = self.misses[np.isin(self.outcome[self.misses], (COMPUTED, FILTERED))]
        return self.distinct.take(pa.array(called, type=pa.int64()))

    def settled(self) -> np.ndarray:
        """Per distinct entry, what has happened to it so far (``SKIPPED``: not yet known)."""
        if len(self.novel):
            self.category[self.novel] = self.outcome[self.codes]
        return self.category

    def summary(self, never_called_filtered: bool = True) -> np.ndarray:
        """Rows computed, reused, filtered, failed. Rows never called count as filtered (a
        finished run's summary), or, without ``never_called_filtered``, not at all (what a
        stopped run settled and committed)."""
        counts = np.bincount(self.settled()[self.plan.codes], minlength=5)
        skipped = counts[SKIPPED] if never_called_filtered else 0
        return np.array(
            [counts[COMPUTED], counts[REUSED], counts[FILTERED] + skipped, counts[FAILED]],
            dtype=np.int64,
        )

    # -- events -------------------------------------------------------------------------------

    def every_record_held(self) -> bool:
        """Known from counts alone: every record the table held when the chunk was looked up
        is one of the chunk's entries (the chunk is the node's whole input when that says
        none of the node's records is superseded, ``orcapod.nodes.membership``)."""
        return self._stored_rows is not None and self._stored_rows <= self._found_rows

    def settle(self, entries: np.ndarray, outcome: PacketOutcome) -> None:
        """Report the input rows of ``entries`` as settled with ``outcome`` (bulk)."""
        if self.reporter is not None and len(entries):
            assert self._entry_rows is not None
            self.reporter.settled(outcome, int(self._entry_rows[entries].sum()))

    def _describe(self, keys: Any) -> pa.Table:
        """Per packet key: user tags of its first row and its input packet hash."""
        assert self.groups is not None
        packets = np.asarray(keys, dtype=np.int64)
        rows = self.plan.first_rows[self.groups.first_entries(packets)]
        tags = self.plan.tags(rows, user_only=True)
        return tags.append_column(
            INPUT_PACKET_HASH, self.distinct.take(pa.array(packets, pa.int64()))
        )
