"""``FunctionNode``: a function pod bound to one input stream and to its databases.

Approach (DESIGN §7, §13, §14):

* Identity of a row. For the whole input at once (vectorised, ``orcapod.nodes.records``): the
  input packet hash of every row and its pipeline entry id = hash(tag + system tags + input
  packet hash). ``compute_pipeline_entry_id(tag, packet)`` is the one-row form and gives the
  same id. Entry ids never depend on other rows, so adding rows leaves old ids untouched.
* ``run()``. Phase 1: ONE query finds which of the input's entry ids are recorded (only the
  entry id and ``__packet_id`` columns are read). Phase 2, novel entries only: ONE
  ``lookup_many`` on the result cache for their distinct input hashes; a hit becomes a new
  pipeline record (``__computed=False``) without computing; each distinct missing packet is
  computed once, however many tags it appears under. With a concurrent executor up to
  ``max_concurrency`` calls are in flight (``submit_call`` windows), otherwise calls run one
  by one. Results and records are written by a batch writer that flushes every
  ``flush_rows`` finished rows or ``flush_seconds`` (default 1 s) and at the end, results
  before the records pointing at them, so a killed run loses at most the last second of
  finished work and never leaves a record without its result.
* ``iter_packets()`` / ``as_table()`` read and never compute: the node's current input's entry
  ids -> its records -> their results, in input order; rows of other inputs sharing the table
  never appear; rows not yet recorded (or filtered, or failed) are absent.
* Failures (per ``error_policy``): every failed row is stored in the node's failures table
  (tag and system tags, entry id, input hash, exception type, message, traceback, UTC time) and
  never recorded as done, so the next run retries exactly those rows. ``continue`` finishes the
  other rows and warns once (``FailedRowsWarning``); ``fail_fast`` flushes the finished work
  and raises ``ExecutionError`` naming the row's tag, chained from the user's exception.

Decisions where the issue is silent:

* Paths. Pipeline records live at ``(*function URI, "schema:<node pipeline hash>",
  "code:<code hash>")`` of the pipeline database; failures at the same path under
  ``pipeline_database.at("_failures")``; results at the function URI of the result database
  (shared by every pipeline using the function). The code-hash segment keeps records in step
  with the result cache's default ``CacheMatch.CODE`` tier: after a semantic edit of the
  function its rows are recomputed (and old records stay, unmatched), instead of silently
  serving results of the old code.
* Without a pipeline database the node keeps its records in a private
  ``InMemoryArrowDatabase``, so it behaves the same, only not persistently.
* A filtered (None) result is recorded with a null ``__packet_id`` (and stored in the result
  cache as ``FILTERED``), so it is neither recomputed nor yielded. An inactive function
  (``set_active(False)``) computes and records nothing.
* Large id sets. Looking up more than ``_FILTER_LIMIT`` ids reads only the id columns of the
  table (a projected scan) and filters them in Arrow instead of sending a huge ``IN`` list to
  the database, which is far slower for 10⁵-10⁶ ids; small lookups are pushed-down queries.
* ``get_all_records`` covers the current input's records (joined with their results), like
  ``iter_packets``; it returns None when there are none. When an output column has the name of
  an input packet column, the output's ``_source_<col>`` is kept (it is the provenance of the
  value in that row) and the input's is dropped from that view.
* The node owns a copy of the packet function (``with_executor``): setting ``node.executor``
  never touches the user's pod or function.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orcapod.data import Packet, Tag
from orcapod.data.conversion import column_to_pylist, schema_to_arrow
from orcapod.databases import ArrowDatabase, InMemoryArrowDatabase
from orcapod.errors import ExecutionError, InputValidationError
from orcapod.functions import CachedFunctionPod, FunctionPod
from orcapod.functions.pending import Pending
from orcapod.functions.result_cache import FILTERED, ResultCache, match_constraints
from orcapod.hashing import hash_rows
from orcapod.hashing.arrow_hashing import ROW_HASH_METHOD
from orcapod.nodes.derived_source import DerivedSource
from orcapod.nodes.records import (
    ERROR_TIME,
    FAILURE_ID,
    PIPELINE_ENTRY_ID,
    digest_strings,
    entry_id_of,
    entry_ids,
    failure_table,
    fetch_by_ids,
    pipeline_record_table,
    utc_now,
)
from orcapod.nodes.run_writer import RunWriter
from orcapod.nodes.summary import FailedRowsWarning, NodeRunSummary, NodeType
from orcapod.streams import ArrowTableStream
from orcapod.streams.base import ColumnsArg, StreamBase
from orcapod.types import CacheMatch, ColumnConfig, ContentHash, ErrorPolicy, Schema
from orcapod.types.columns import (
    COMPUTED,
    INPUT_PACKET_HASH,
    META_PREFIX,
    PACKET_ID,
    POD_TS,
    SOURCE_PREFIX,
    SYSTEM_TAG_PREFIX,
    source_column,
)

__all__ = ["FunctionNode"]

_FLUSH_ROWS = 50_000
_FLUSH_SECONDS = 1.0
_SLICE_ROWS = 16_384
_SHOWN_META = (PACKET_ID, COMPUTED, INPUT_PACKET_HASH, POD_TS)

# categories of a distinct entry in one run
_COMPUTED, _REUSED, _FILTERED, _FAILED, _SKIPPED = range(5)


@dataclass(frozen=True)
class _Plan:
    """The current input, identified row by row (computed once per input stream)."""

    table: pa.Table  # tags, system tags, packet columns, their _source_ columns
    tag_columns: tuple[str, ...]
    system_tag_columns: tuple[str, ...]
    packet_columns: tuple[str, ...]
    record_columns: tuple[str, ...]  # tags + system tags + input _source_ columns
    input_digests: pa.Array  # 16-byte input packet hashes
    input_hashes: pa.Array  # the same as ContentHash strings
    entry_ids: pa.Array
    entry_codes: np.ndarray  # per row: index of its entry id in ``unique_ids``
    unique_ids: pa.Array  # distinct entry ids in order of first appearance
    first_rows: np.ndarray  # per distinct entry id: its first row


class FunctionNode(StreamBase):
    """A function pod applied to one input stream, persisted and incremental."""

    node_type = NodeType.FUNCTION

    def __init__(
        self,
        function_pod: Any,
        input_stream: Any,
        pipeline_database: ArrowDatabase | None = None,
        result_database: ArrowDatabase | None = None,
        label: str | None = None,
        error_policy: ErrorPolicy | str = ErrorPolicy.CONTINUE,
    ) -> None:
        if isinstance(function_pod, CachedFunctionPod):
            function_pod = function_pod.function_pod  # the node keeps its own result cache
        if not isinstance(function_pod, FunctionPod):
            raise InputValidationError(
                f"FunctionNode needs a FunctionPod, got {type(function_pod).__name__}; wrap "
                "the function with @function_pod(...) and pass its .pod"
            )
        self._function_pod = function_pod
        # the node's own copy: setting node.executor never mutates the user's pod or function
        self._pod: FunctionPod = function_pod.with_executor(function_pod.executor)
        self._packet_function = self._pod.packet_function
        self._input: Any = input_stream
        self._check_input(input_stream)
        self._label = label
        self.error_policy = ErrorPolicy(error_policy)
        self.flush_rows = _FLUSH_ROWS
        self.flush_seconds = _FLUSH_SECONDS
        self._pipeline_database: ArrowDatabase | None = None
        self._result_database: ArrowDatabase | None = None
        self._cached_pod: CachedFunctionPod | None = None
        self._plan_cache: _Plan | None = None
        self._view_cache: ArrowTableStream | None = None
        self._hashes: dict[str, ContentHash] = {}
        if pipeline_database is not None:
            self.attach_databases(pipeline_database, result_database)
        elif result_database is not None:
            raise InputValidationError(
                "FunctionNode got a result_database without a pipeline_database; pass "
                "pipeline_database too (results default to pipeline_database.at('_result'))"
            )

    # -- construction ----------------------------------------------------------------------

    def _check_input(self, stream: Any) -> None:
        tag_schema, packet_schema = stream.output_schema()
        self._pod.validate_packet_schema(packet_schema, tag_schema)

    def attach_databases(
        self, pipeline_database: ArrowDatabase, result_database: ArrowDatabase | None = None
    ) -> None:
        """Store provenance in ``pipeline_database`` and results in ``result_database``
        (default: ``pipeline_database.at("_result")``)."""
        for name, db in (("pipeline_database", pipeline_database), ("result_database", None)):
            if db is not None and not isinstance(db, ArrowDatabase):
                raise InputValidationError(
                    f"{name} must be an ArrowDatabase, got {type(db).__name__}"
                )
        if result_database is not None and not isinstance(result_database, ArrowDatabase):
            raise InputValidationError(
                f"result_database must be an ArrowDatabase, got {type(result_database).__name__}"
            )
        self._pipeline_database = pipeline_database
        self._result_database = result_database or pipeline_database.at("_result")
        self._cached_pod = None
        self._view_cache = None

    def _pipeline_db(self) -> ArrowDatabase:
        if self._pipeline_database is None:
            self._pipeline_database = InMemoryArrowDatabase()
            self._result_database = self._pipeline_database.at("_result")
        return self._pipeline_database

    def _failure_db(self) -> ArrowDatabase:
        return self._pipeline_db().at("_failures")

    def _cached(self) -> CachedFunctionPod:
        if self._cached_pod is None:
            self._pipeline_db()
            assert self._result_database is not None
            self._cached_pod = CachedFunctionPod(self._pod, self._result_database)
        return self._cached_pod

    def _result_cache(self) -> ResultCache:
        return self._cached().result_cache

    @property
    def pipeline_database(self) -> ArrowDatabase | None:
        return self._pipeline_database

    @property
    def result_database(self) -> ArrowDatabase | None:
        return self._result_database

    @property
    def result_cache(self) -> ResultCache:
        return self._result_cache()

    @property
    def function_pod(self) -> FunctionPod:
        """The pod the node was built from (never modified by the node)."""
        return self._function_pod

    @property
    def cached_function_pod(self) -> CachedFunctionPod:
        """The node's own pod, wrapped in its result cache."""
        return self._cached()

    @property
    def cache_match(self) -> CacheMatch:
        return self._cached().cache_match

    @property
    def packet_function(self) -> Any:
        """The node's own copy of the pod's packet function."""
        return self._packet_function

    @property
    def executor(self) -> Any:
        return self._packet_function.executor

    @executor.setter
    def executor(self, executor: Any) -> None:
        self._packet_function.set_executor(executor)

    @property
    def label(self) -> str:
        if self._label:
            return self._label
        return self._function_pod.computed_label()

    @label.setter
    def label(self, value: str | None) -> None:
        self._label = value

    @property
    def upstreams(self) -> tuple[Any, ...]:
        return (self._input,)

    @upstreams.setter
    def upstreams(self, streams: Sequence[Any]) -> None:
        streams = tuple(streams)
        if len(streams) != 1:
            raise InputValidationError(
                f"a FunctionNode has exactly one input stream, got {len(streams)}; join "
                "several streams first"
            )
        self._check_input(streams[0])
        self._input = streams[0]
        self._plan_cache = None
        self._view_cache = None
        self._hashes.clear()

    def __repr__(self) -> str:
        return f"FunctionNode(label={self.label!r})"

    # -- identity ----------------------------------------------------------------------------

    def pipeline_hash(self) -> ContentHash:
        """Schema and topology only: the function's URI and the input's pipeline hash."""
        if "pipeline" not in self._hashes:
            self._hashes["pipeline"] = self._pod.output_pipeline_hash(self._input)
        return self._hashes["pipeline"]

    def content_hash(self) -> ContentHash:
        """Includes data: the function's identity (code) and the input's content hash."""
        if "content" not in self._hashes:
            self._hashes["content"] = self._pod.output_content_hash(self._input)
        return self._hashes["content"]

    @property
    def node_identity_path(self) -> tuple[str, ...]:
        return (*self._packet_function.uri, "schema:" + self.pipeline_hash().to_string())

    @property
    def record_path(self) -> tuple[str, ...]:
        """Where this node's pipeline records (and failures) are stored."""
        return (*self.node_identity_path, "code:" + self._packet_function.code_hash)

    # -- entry ids -----------------------------------------------------------------------------

    def compute_pipeline_entry_id(self, tag: Tag, packet: Packet) -> str:
        """hash(tag + system tags + input packet hash) of one row."""
        return entry_id_of(tag, packet)

    def _plan(self) -> _Plan:
        if self._plan_cache is None:
            stream = self._input
            tag_keys, packet_keys = stream.keys()
            table = stream.as_table(ColumnConfig(system_tags=True, source=True))
            system = tuple(c for c in table.column_names if c.startswith(SYSTEM_TAG_PREFIX))
            sources = tuple(
                source_column(c) for c in packet_keys if source_column(c) in table.column_names
            )
            digests = hash_rows(table.select(list(packet_keys)))
            hashes = digest_strings(digests)
            ids = entry_ids(table, (*tag_keys, *system), hashes)
            encoded = pc.dictionary_encode(ids)
            codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
            unique = encoded.dictionary
            first = np.full(len(unique), -1, dtype=np.int64)
            first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1, dtype=np.int64)
            self._plan_cache = _Plan(
                table=table,
                tag_columns=tuple(tag_keys),
                system_tag_columns=system,
                packet_columns=tuple(packet_keys),
                record_columns=(*tag_keys, *system, *sources),
                input_digests=digests,
                input_hashes=hashes,
                entry_ids=ids,
                entry_codes=codes,
                unique_ids=unique,
                first_rows=first,
            )
        return self._plan_cache

    def _recorded(self, ids: pa.Array, columns: Sequence[str] | None) -> pa.Table | None:
        """Stored pipeline records among ``ids`` (projected to ``columns``)."""
        return fetch_by_ids(self._pipeline_db(), self.record_path, ids, PIPELINE_ENTRY_ID, columns)

    # -- run ---------------------------------------------------------------------------------

    def run(self, max_concurrency: int | None = None) -> NodeRunSummary:
        """Compute every novel row of the current input; returns what happened per row."""
        if max_concurrency is not None and (
            isinstance(max_concurrency, bool)
            or not isinstance(max_concurrency, int)
            or max_concurrency < 1
        ):
            raise InputValidationError(
                f"max_concurrency must be a positive integer or None, got {max_concurrency!r}"
            )
        plan = self._plan()
        n_unique = len(plan.unique_ids)
        category = np.full(n_unique, _SKIPPED, dtype=np.int8)
        self._view_cache = None
        cache = self._result_cache()
        pf = self._packet_function
        writer = RunWriter(
            cache=cache,
            variation=pf.get_function_variation_data,
            execution=pf.get_execution_data,
            pipeline_db=self._pipeline_db(),
            failure_db=self._failure_db(),
            record_path=self.record_path,
            record_id_column=PIPELINE_ENTRY_ID,
            failure_id_column=FAILURE_ID,
            build_records=lambda codes, ids, computed: self._records_for(
                plan, codes, ids, computed
            ),
            flush_rows=self.flush_rows,
            flush_seconds=self.flush_seconds,
        )
        try:
            novel = self._phase_one(plan, category)
            if len(novel):
                self._phase_two(plan, novel, category, writer, max_concurrency)
        finally:
            writer.flush()
            self._view_cache = None
        counts = np.bincount(category[plan.entry_codes], minlength=5)
        summary = NodeRunSummary(
            label=self.label,
            computed=int(counts[_COMPUTED]),
            reused=int(counts[_REUSED]),
            filtered=int(counts[_FILTERED] + counts[_SKIPPED]),
            failed=int(counts[_FAILED]),
        )
        if summary.failed:
            warnings.warn(
                f"{summary.failed} of {summary.total} rows of node {self.label!r} failed; "
                f"they are recorded and the next run retries them. List them with "
                f"node.failures() (in a pipeline: pipeline.{self.label}.failures()).",
                FailedRowsWarning,
                stacklevel=2,
            )
        return summary

    def execute(self, max_concurrency: int | None = None) -> list[tuple[Tag, Packet]]:
        """``run()``, then the node's rows (in input order)."""
        self.run(max_concurrency)
        return self.flow()

    def _phase_one(self, plan: _Plan, category: np.ndarray) -> np.ndarray:
        """Mark recorded entries; return the codes of the novel ones."""
        recorded = self._recorded(plan.unique_ids, [PACKET_ID])
        if recorded is None:
            return np.arange(len(plan.unique_ids), dtype=np.int64)
        position = pc.index_in(plan.unique_ids, value_set=recorded.column(PIPELINE_ENTRY_ID))
        found = pc.is_valid(position).to_numpy(zero_copy_only=False)
        found_pos = position.drop_null().to_numpy(zero_copy_only=False)
        has_result = pc.is_valid(recorded.column(PACKET_ID)).to_numpy(zero_copy_only=False)
        codes = np.flatnonzero(found)
        category[codes] = np.where(has_result[found_pos], _REUSED, _FILTERED)
        return np.flatnonzero(~found)

    def _phase_two(
        self,
        plan: _Plan,
        novel: np.ndarray,
        category: np.ndarray,
        writer: RunWriter,
        max_concurrency: int | None,
    ) -> None:
        rows = plan.first_rows[novel]
        hashes = plan.input_hashes.take(pa.array(rows))
        encoded = pc.dictionary_encode(hashes)
        hash_codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        distinct = encoded.dictionary.to_pylist()
        order = np.argsort(hash_codes, kind="stable")
        bounds = np.searchsorted(hash_codes[order], np.arange(len(distinct) + 1))
        groups = [order[bounds[i] : bounds[i + 1]] for i in range(len(distinct))]
        pf = self._packet_function
        cache = self._result_cache()
        constraints = match_constraints(self.cache_match, pf.code_hash, pf.get_execution_data())
        cached = cache.lookup_many(distinct, constraints)
        hit_members: list[np.ndarray] = []
        hit_ids: list[str | None] = []
        misses: list[int] = []
        for i, result in enumerate(cached):
            if result is None:
                misses.append(i)
                continue
            members = groups[i]
            hit_members.append(members)
            if result is FILTERED:
                hit_ids.extend([None] * len(members))
                category[novel[members]] = _FILTERED
            else:
                assert isinstance(result, Packet)
                hit_ids.extend([result.get_meta_value(PACKET_ID)] * len(members))
                category[novel[members]] = _REUSED
        if hit_members:
            members = np.concatenate(hit_members)
            writer.add_records(
                self._records_for(plan, novel[members], pa.array(hit_ids, pa.large_string()), False)
            )
        if misses and pf.is_active():
            self._compute(plan, novel, groups, misses, distinct, category, writer, max_concurrency)

    def _records_for(
        self, plan: _Plan, codes: np.ndarray, packet_ids: pa.Array, computed: bool
    ) -> pa.Table:
        rows = pa.array(plan.first_rows[codes])
        return pipeline_record_table(
            plan.table,
            rows,
            plan.record_columns,
            plan.entry_ids.take(rows),
            plan.input_hashes.take(rows),
            packet_ids,
            computed,
        )

    def _compute(
        self,
        plan: _Plan,
        novel: np.ndarray,
        groups: list[np.ndarray],
        misses: list[int],
        distinct: list[str],
        category: np.ndarray,
        writer: RunWriter,
        max_concurrency: int | None,
    ) -> None:
        """Call the function once per distinct missing packet (windowed when concurrent)."""
        pf = self._packet_function
        window = self._pod.concurrency_window(max_concurrency)
        rep_rows = plan.first_rows[novel[[groups[i][0] for i in misses]]]

        def done(miss: int, output: Packet | None) -> None:
            codes = novel[groups[miss]]
            category[codes] = _FILTERED if output is None else _COMPUTED
            writer.add_computed(codes, distinct[miss], output)
            writer.maybe_flush()

        def failed(miss: int, err: Exception) -> None:
            codes = novel[groups[miss]]
            category[codes] = _FAILED
            rows = pa.array(plan.first_rows[codes])
            tags = plan.table.select([*plan.tag_columns, *plan.system_tag_columns]).take(rows)
            writer.add_failures(
                failure_table(tags, plan.entry_ids.take(rows), distinct[miss], err, utc_now())
            )
            if self.error_policy is ErrorPolicy.FAIL_FAST:
                tag = tags.select(list(plan.tag_columns)).slice(0, 1).to_pylist()[0]
                raise ExecutionError(
                    f"function {pf.canonical_function_name!r} of node {self.label!r} failed on "
                    f"the row with tag {tag!r}: {type(err).__name__}: {err}. The failure is "
                    "recorded (node.failures()); fix the function or the input and run again - "
                    "finished rows are kept and only failed or new rows are computed."
                ) from err

        packets = self._packets(plan, rep_rows)
        if window == 1:  # the thin path: one call at a time, no futures
            for miss, packet in zip(misses, packets, strict=True):
                try:
                    output = pf.call(packet)
                except Exception as err:  # noqa: BLE001 - recorded; re-raised under fail_fast
                    failed(miss, err)
                else:
                    done(miss, output)
            return
        in_flight: deque[tuple[int, Pending[Packet | None]]] = deque()
        try:
            for miss, packet in zip(misses, packets, strict=True):
                in_flight.append((miss, pf.submit_call(packet)))
                while len(in_flight) >= window:
                    self._finish(in_flight.popleft(), done, failed)
            while in_flight:
                self._finish(in_flight.popleft(), done, failed)
        finally:
            for _, pending in in_flight:  # only left over after an error
                pending.cancel()

    @staticmethod
    def _finish(
        item: tuple[int, Pending[Packet | None]],
        done: Callable[[int, Packet | None], None],
        failed: Callable[[int, Exception], None],
    ) -> None:
        miss, pending = item
        try:
            output = pending.result()
        except Exception as err:  # noqa: BLE001 - recorded; re-raised under fail_fast
            failed(miss, err)
        else:
            done(miss, output)

    def _packets(self, plan: _Plan, rows: np.ndarray) -> Iterator[Packet]:
        """Input packets of ``rows`` (data columns only), knowing their content hashes."""
        _, packet_schema = self._input.output_schema()
        names = [c for c in plan.packet_columns if c in packet_schema]
        schema = packet_schema.select(*names)
        for start in range(0, len(rows), _SLICE_ROWS):
            part = pa.array(rows[start : start + _SLICE_ROWS])
            sub = plan.table.select(names).take(part)
            columns = [column_to_pylist(sub.column(c), schema[c]) for c in names]
            digests = plan.input_digests.take(part).to_pylist()
            for i, digest in enumerate(digests):
                yield Packet._make(
                    {c: col[i] for c, col in zip(names, columns, strict=True)},
                    schema,
                    content_hash=ContentHash(ROW_HASH_METHOD, digest),
                )

    def flush(self) -> None:
        """Commit everything this node (and its result cache) has pending."""
        if self._pipeline_database is not None:
            self._pipeline_database.flush()
        if self._result_database is not None:
            self._result_database.flush()

    # -- failures ------------------------------------------------------------------------------

    def failures(self) -> pa.Table:
        """Rows of the current input whose last attempt failed and that are still not done:
        tag and system tag columns, ``__pipeline_entry_id``, ``__input_packet_hash``,
        ``__error_type``, ``__error_message``, ``__traceback``, ``__failed_at`` (latest
        attempt per row). Empty when nothing failed."""
        plan = self._plan()
        recorded = self._recorded(plan.unique_ids, [])
        pending = plan.unique_ids
        if recorded is not None:
            done = pc.is_in(pending, value_set=recorded.column(PIPELINE_ENTRY_ID))
            pending = pending.filter(pc.invert(done))
        stored = None
        if len(pending):
            stored = fetch_by_ids(
                self._failure_db(),
                self.record_path,
                pending,
                PIPELINE_ENTRY_ID,
                None,
                id_is_record_id=False,
            )
        if stored is None:
            return failure_table(
                plan.table.select([*plan.tag_columns, *plan.system_tag_columns]).slice(0, 0),
                pa.array([], pa.large_string()),
                "",
                None,
                utc_now(),
            ).drop_columns([FAILURE_ID])
        stored = stored.sort_by([(PIPELINE_ENTRY_ID, "ascending"), (ERROR_TIME, "descending")])
        ids = stored.column(PIPELINE_ENTRY_ID).combine_chunks()
        keep = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1)) if len(ids) > 1 else None
        if keep is not None:
            stored = stored.filter(pa.concat_arrays([pa.array([True]), keep]))
        return stored.drop_columns([c for c in (FAILURE_ID,) if c in stored.column_names])

    # -- reading -------------------------------------------------------------------------------

    def _template(self) -> pa.Table:
        """A zero-row table with the node's visible and hidden columns."""
        tag_schema, _ = self._input.output_schema(ColumnConfig(system_tags=True))
        out_schema = self._packet_function.output_packet_schema
        arrow = schema_to_arrow({**tag_schema, **out_schema})
        fields = list(arrow)
        fields += [pa.field(source_column(k), pa.large_string()) for k in out_schema]
        fields += [
            pa.field(PACKET_ID, pa.large_string()),
            pa.field(COMPUTED, pa.bool_()),
            pa.field(INPUT_PACKET_HASH, pa.large_string()),
            pa.field(POD_TS, pa.timestamp("us", tz="UTC")),
        ]
        return pa.schema(fields).empty_table()

    def _template_stream(self) -> ArrowTableStream:
        tag_keys, _ = self._input.keys()
        return ArrowTableStream(self._template(), tag_keys)

    def _view(self) -> ArrowTableStream:
        if self._view_cache is None:
            table = self._stored_table()
            tag_keys, _ = self._input.keys()
            self._view_cache = ArrowTableStream(
                table,
                tag_keys,
                identity=self.content_hash(),
                pipeline_identity=self.pipeline_hash(),
                label=self.label,
            )
        return self._view_cache

    def _stored_table(self) -> pa.Table:
        """Stored results of the current input's rows, in input order."""
        template = self._template()
        plan = self._plan()
        recorded = self._recorded(plan.unique_ids, [PACKET_ID, COMPUTED])
        if recorded is None:
            return template
        recorded = recorded.filter(pc.is_valid(recorded.column(PACKET_ID)))
        if recorded.num_rows == 0:
            return template
        # per input row: its record (by entry id)
        position = pc.index_in(plan.entry_ids, value_set=recorded.column(PIPELINE_ENTRY_ID))
        rows = pc.indices_nonzero(pc.is_valid(position))
        position = position.take(rows)
        packet_ids = recorded.column(PACKET_ID).take(position)
        out_schema = self._packet_function.output_packet_schema
        wanted = [*out_schema, *(source_column(k) for k in out_schema), POD_TS]
        results = fetch_by_ids(
            self._result_cache().database,
            self._result_cache().record_path,
            pc.unique(packet_ids),
            PACKET_ID,
            wanted,
        )
        if results is None:
            return template
        at = pc.index_in(packet_ids, value_set=results.column(PACKET_ID))
        ok = pc.indices_nonzero(pc.is_valid(at))
        rows, at, packet_ids = rows.take(ok), at.take(ok), packet_ids.take(ok)
        position = position.take(ok)
        tag_part = plan.table.select([*plan.tag_columns, *plan.system_tag_columns]).take(rows)
        columns: dict[str, Any] = {c: tag_part.column(c) for c in tag_part.column_names}
        for name in wanted:
            if name != POD_TS:
                columns[name] = results.column(name).take(at)
        columns[PACKET_ID] = packet_ids
        columns[COMPUTED] = recorded.column(COMPUTED).take(position)
        columns[INPUT_PACKET_HASH] = plan.input_hashes.take(rows)
        columns[POD_TS] = results.column(POD_TS).take(at)
        return pa.table(
            [_cast(columns[f.name], f.type) for f in template.schema],
            schema=template.schema,
        )

    def keys(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return self._template_stream().keys(columns, all_info)

    def output_schema(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[Schema, Schema]:
        config = ColumnConfig.handle_config(columns, all_info)
        if config == ColumnConfig():
            tag_schema, _ = self._input.output_schema()
            return Schema(tag_schema), Schema(self._packet_function.output_packet_schema)
        return self._template_stream().output_schema(config)

    def iter_packets(self) -> Iterator[tuple[Tag, Packet]]:
        return self._view().iter_packets()

    def as_table(self, columns: ColumnsArg = None, all_info: bool = False) -> pa.Table:
        return self._view().as_table(columns, all_info)

    def get_all_records(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> pa.Table | None:
        """The current input's pipeline records joined with their results (None if none).

        Visible: tags and output columns; ``system_tags``, ``source`` (input and output
        ``_source_*``) and ``meta`` (``__*``: record and result provenance) add the rest.
        """
        config = ColumnConfig.handle_config(columns, all_info)
        plan = self._plan()
        records = self._recorded(plan.unique_ids, None)
        if records is None:
            return None
        records = records.filter(pc.is_valid(records.column(PACKET_ID)))
        if records.num_rows == 0:
            return None
        cache = self._result_cache()
        results = fetch_by_ids(
            cache.database,
            cache.record_path,
            pc.unique(records.column(PACKET_ID)),
            PACKET_ID,
            None,
        )
        if results is None:
            return None
        # input order (the order of the current input's entry ids)
        order = pc.sort_indices(
            pc.index_in(records.column(PIPELINE_ENTRY_ID), value_set=plan.unique_ids)
        )
        records = records.take(order)
        at = pc.index_in(records.column(PACKET_ID), value_set=results.column(PACKET_ID))
        ok = pc.indices_nonzero(pc.is_valid(at))
        records, at = records.take(ok), at.take(ok)
        out_keys = list(self._packet_function.output_packet_schema)
        out_sources = [source_column(k) for k in out_keys]
        result_part = results.take(at).drop_columns([PACKET_ID, INPUT_PACKET_HASH])
        clash = [c for c in records.column_names if c in set(result_part.column_names)]
        records = records.drop_columns(clash)
        record_meta = [c for c in records.column_names if c.startswith(META_PREFIX)]
        input_sources = [c for c in records.column_names if c.startswith(SOURCE_PREFIX)]
        result_meta = [
            c for c in result_part.column_names if c.startswith(META_PREFIX) and c != POD_TS
        ]
        rest = [
            c
            for c in result_part.column_names
            if c.startswith("_") and c not in (*out_sources, *result_meta, POD_TS)
        ]
        parts: list[tuple[str, pa.Table]] = [(c, records) for c in plan.tag_columns]
        if config.system_tags:
            parts += [(c, records) for c in plan.system_tag_columns]
        if config.source:
            parts += [(c, records) for c in input_sources]
        parts += [(c, records) for c in record_meta if config.includes_meta(c)]
        parts += [(c, result_part) for c in result_meta if config.includes_meta(c)]
        parts += [(c, result_part) for c in out_keys]
        if config.context:
            parts += [(c, result_part) for c in rest]
        if config.source:
            parts += [(c, result_part) for c in out_sources if c in result_part.column_names]
        if config.includes_meta(POD_TS):
            parts += [(POD_TS, result_part)]
        return pa.table({c: t.column(c) for c, t in parts})

    def as_source(self, source_id: str | None = None) -> DerivedSource:
        """The node's stored results as a new source (reads records, never computes)."""
        return DerivedSource(self, source_id)


def _cast(column: Any, dtype: pa.DataType) -> Any:
    if column.type == dtype:
        return column
    return column.cast(dtype)
