"""``CachedPodStream``: the lazy output of a ``CachedFunctionPod``, computed chunk by chunk.

A cached pod's stream runs the engine's phases over slices of its input table instead of
row by row: for each chunk,

1. *identify*: one vectorised ``hash_rows`` of the chunk's packet columns (already projected
   onto the function's parameters) gives every row's input packet hash; repeated packets are
   found with ``engine.keys`` and computed once;
2. *look up*: ONE ``ResultCache.lookup_table`` query for the chunk's distinct hashes answers
   with an Arrow table (record id, outputs, their source info, ``__pod_ts``): no Python object
   per hit;
3. *call* the function on each missing packet, in input order (values, not packets, when the
   function can give them);
4. *write* the new results with one ``store_outputs_table`` (committed, when the cache
   auto-flushes, once 256 rows or 1 s have gathered since the last commit, at the end of the
   input, and when a reader stops) and assemble the chunk's output rows column-wise from
   the hits and the rows just written.

Consumers read the chunk's rows from an ``ArrowTableStream`` over that table (block-backed
tags and packets, meta ``__computed``, ``__packet_id`` and ``__pod_ts`` included).

Chunks grow 1, 4, 16, ... up to 16,384 rows, so a partial read computes at most about four times
the rows it read; a chunk stops calling the function after ~50 ms and hands on the rows
finished so far (a slow function still yields its first row after one call). The stream runs
this way when calls are sequential (a window of one); with a concurrent executor it keeps the
windowed row-by-row path of ``FunctionPodStream``, so slow calls overlap.

Errors: an exception from the function (or an output the cache cannot store) ends the chunk
at that row. The rows before it are stored and handed on first; the exception is raised at
the next read; the row is retried by the read after that (finished rows are found in the
cache then), so rows are never skipped or misassigned.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from orcapod._arrow_without_pandas import column_numpy
from orcapod._lazy import pc
from orcapod.data import Packet, Tag
from orcapod.data.conversion import column_to_pylist, schema_to_arrow
from orcapod.data.row_block import RowBlock
from orcapod.errors import PacketFunctionError, SchemaError
from orcapod.functions.engine.identify import digest_strings
from orcapod.functions.engine.keys import digest_keys, unique_keys
from orcapod.functions.function_pod_stream import FunctionPodStream
from orcapod.functions.provenance import prime_source_info
from orcapod.functions.result_cache import ResultCache
from orcapod.hashing import hash_rows
from orcapod.streams import ArrowTableStream, StreamProtocol
from orcapod.types import ColumnConfig, ContentHash, Schema
from orcapod.types.columns import (
    COMPUTED,
    CONTEXT_KEY,
    DEFAULT_CONTEXT_KEY,
    INPUT_PACKET_HASH,
    PACKET_ID,
    POD_TS,
    RECORD_ID,
    SOURCE_PREFIX,
)

__all__ = ["CachedPodStream"]

_MAX_CHUNK = 16_384
_GROWTH = 4
_CHUNK_SECONDS = 0.05
_TS_TYPE = pa.timestamp("us", tz="UTC")


class _CachedPod(Protocol):
    """What the stream uses of a ``CachedFunctionPod`` (which imports this module)."""

    @property
    def packet_function(self) -> Any: ...

    @property
    def result_cache(self) -> ResultCache: ...

    @property
    def cache_binding(self) -> Any: ...

    @property
    def output_packet_schema(self) -> Schema: ...

    def meta_schema(self) -> Schema: ...

    def concurrency_window(self, max_concurrency: int | None = None) -> int: ...


@dataclass(frozen=True)
class _Chunk:
    """What one chunk produced: its kept rows, the input rows it covers, an error to raise."""

    rows: pa.Table
    consumed: int
    error: Exception | None


class CachedPodStream(FunctionPodStream):
    """Lazy output of a ``CachedFunctionPod`` (see the module docstring)."""

    def __init__(
        self,
        pod: Any,
        input_stream: StreamProtocol,
        *,
        label: str | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        super().__init__(pod, input_stream, label=label, max_concurrency=max_concurrency)
        self._cached: _CachedPod = pod
        self._chunk_lock = threading.RLock()
        self._reset_chunks()

    def _reset_chunks(self) -> None:
        self._chunks: list[ArrowTableStream] = []
        self._input_table: pa.Table | None = None
        self._consumed = 0
        self._next_size = 1
        self._chunks_done = False
        self._chunk_error: Exception | None = None
        self._chunked: bool | None = None

    def _use_chunks(self) -> bool:
        if self._chunked is None:
            self._chunked = self._cached.concurrency_window(self._max_concurrency) == 1
        return self._chunked

    # -- iteration -----------------------------------------------------------------------

    def iter_packets(self) -> Iterator[tuple[Tag, Packet]]:
        if not self._use_chunks():
            yield from super().iter_packets()
            return
        chunks = self._chunks
        j = 0
        try:
            while True:
                if j < len(chunks):
                    yield from chunks[j].iter_packets()
                    j += 1
                elif not self._advance_chunk(j):
                    return
        finally:  # the end, an error or a consumer that stops: commit what was stored
            self._cached.cache_binding.close()

    @property
    def num_rows(self) -> int:
        if not self._use_chunks():
            return super().num_rows
        self._compute_chunks()
        return sum(chunk.num_rows for chunk in self._chunks)

    def _compute_chunks(self) -> None:
        while self._advance_chunk(len(self._chunks)):
            pass

    def clear_cache(self) -> None:
        with self._chunk_lock:
            super().clear_cache()
            self._reset_chunks()

    def _build_full_table(self) -> pa.Table:
        if not self._use_chunks():
            return super()._build_full_table()
        self._compute_chunks()
        with self._chunk_lock:
            if self._full_table is None:
                tables = [chunk.table for chunk in self._chunks]
                if not tables:
                    tables = [self._run_chunk(self._input_rows().slice(0, 0)).rows]
                self._full_table = pa.concat_tables(tables)
            return self._full_table

    def _advance_chunk(self, needed: int) -> bool:
        """Make sure chunk ``needed`` exists; False when the input is exhausted."""
        with self._chunk_lock:
            if len(self._chunks) > needed:
                return True
            if self._chunk_error is not None:
                error, self._chunk_error = self._chunk_error, None
                raise error
            if self._chunks_done:
                return False
            table = self._input_rows()
            part = table.slice(self._consumed, self._next_size)
            if part.num_rows == 0:
                self._chunks_done = True
                self._cached.cache_binding.close()
                return False
            chunk = self._run_chunk(part)
            self._next_size = min(_GROWTH * self._next_size, _MAX_CHUNK)
            self._consumed += chunk.consumed
            if chunk.consumed == 0:
                assert chunk.error is not None
                raise chunk.error
            self._chunk_error = chunk.error
            self._chunks.append(
                ArrowTableStream(chunk.rows, self._tag_keys(), schemas=self._row_schemas())
            )
            return True

    # -- one chunk -----------------------------------------------------------------------

    def _input_rows(self) -> pa.Table:
        if self._input_table is None:
            config = ColumnConfig(system_tags=True, source=True, context=True)
            self._input_table = self._input.as_table(config)
        return self._input_table

    def _tag_keys(self) -> list[str]:
        tag_keys, _ = self._input.keys()
        return list(tag_keys)

    def _row_schemas(self) -> tuple[Schema, Schema]:
        tag_schema, _ = self._input.output_schema()
        return Schema(tag_schema), self._cached.output_packet_schema

    def _run_chunk(self, part: pa.Table) -> _Chunk:
        pod = self._cached
        pf = pod.packet_function
        cache = pod.result_cache
        binding = pod.cache_binding
        _, packet_keys = self._input.keys()
        read = [c for c in packet_keys if c in pf.input_packet_schema]
        digests = hash_rows(part.select(read))
        codes, first = unique_keys(digest_keys(digests))
        distinct = digest_strings(digests.take(pa.array(first, type=pa.int64())))
        outputs = list(pod.output_packet_schema)
        columns = [RECORD_ID, *outputs, *(SOURCE_PREFIX + k for k in outputs), POD_TS]
        version = cache.committed_version()
        found = None
        if len(first):
            found = cache.lookup_table(distinct, binding.constraints(pf), columns=columns[1:-1])
        # per distinct packet: its row in ``answers`` (-1: none) and whether it was computed
        at = np.full(len(first), -1, dtype=np.int64)
        stored = np.zeros(len(first), dtype=bool)
        parts: list[pa.Table] = []
        target = _answer_schema(pod.output_packet_schema)
        if found is not None:
            index = pc.index_in(distinct, value_set=found.column(INPUT_PACKET_HASH))
            at = column_numpy(index.fill_null(-1)).astype(np.int64)
            sources = [SOURCE_PREFIX + k for k in outputs]
            is_output = np.zeros(found.num_rows, dtype=bool)
            for name in sources:
                is_output |= column_numpy(pc.is_valid(found.column(name)))
            stored = at >= 0
            at = np.where(stored & is_output[np.maximum(at, 0)], at, -1)
            parts.append(_conform(found.select(columns), target))
        computed = np.zeros(len(first), dtype=bool)
        inner_hits: set[int] = set()
        misses = np.flatnonzero(~stored)
        limit, error = len(first), None
        if len(misses) and pf.is_active():
            done, error = self._call(part, read, first, misses, distinct, inner_hits)
            if len(done):
                written, unstorable, at_error = self._write(
                    distinct, done, version, found.num_rows if found is not None else 0
                )
                if written is not None:
                    parts.append(_conform(written, target))
                    ok = np.array([m for m in done if m not in unstorable], dtype=np.int64)
                    at[ok] = np.arange(len(ok)) + (found.num_rows if found is not None else 0)
                    computed[ok] = True
                    at[[m for m, o in done.items() if o is None]] = -1
                if at_error is not None and (error is None or at_error[0] < error[0]):
                    error = at_error
            if error is not None:
                limit = int(error[0])
            elif len(done) < len(misses):  # stopped for time: hand on what is finished
                limit = int(misses[len(done)])
        consumed = part.num_rows if limit == len(first) else int(first[limit])
        rows = np.arange(consumed)
        which = at[codes[:consumed]]
        keep = which >= 0
        answers = pa.concat_tables(parts) if parts else target.empty_table()
        taken = answers.take(pa.array(which[keep], type=pa.int64()))
        kept_rows = pa.array(rows[keep], type=pa.int64())
        flags = computed[codes[:consumed]][keep]
        if inner_hits:
            flags &= ~np.isin(codes[:consumed][keep], list(inner_hits))
        table = self._assemble(part, kept_rows, taken, flags)
        return _Chunk(table, consumed, None if error is None else error[1])

    def _call(
        self,
        part: pa.Table,
        read: list[str],
        first: np.ndarray,
        misses: np.ndarray,
        distinct: pa.Array,
        inner_hits: set[int],
    ) -> tuple[dict[int, Any], tuple[int, Exception] | None]:
        """Call the function on the missing packets in order, for up to ~50 ms; their outputs
        (by distinct index) and the first error (its distinct index and the exception)."""
        pf = self._cached.packet_function
        call: Callable[[Packet], Any] | None = pf.values_call()
        as_values = call is not None
        if call is None:
            call = pf.call
        schema = pf.input_packet_schema.select(*read)
        sub = part.select(read).take(pa.array(first[misses], type=pa.int64()))
        block = RowBlock({c: column_to_pylist(sub.column(c), schema[c]) for c in read}, table=sub)
        contexts = _contexts(part, first[misses])
        make = Packet._make_row
        done: dict[int, Any] = {}
        start = time.perf_counter()
        for j, miss in enumerate(misses.tolist()):
            packet = make(block, j, schema, {}, contexts[j])
            try:
                out = call(packet)
            except Exception as err:  # noqa: BLE001 - raised to the consumer after the prefix
                return done, (miss, err)
            if not as_values and out is not None:
                if out.get_meta_value(COMPUTED, True) is False:
                    inner_hits.add(miss)  # a hit of an inner cache (dual caching)
                prime_source_info(out, ContentHash.from_string(distinct[miss].as_py()))
            done[miss] = out
            if time.perf_counter() - start > _CHUNK_SECONDS:
                break
        return done, None

    def _write(
        self, distinct: pa.Array, done: dict[int, Any], version: int | None, offset: int
    ) -> tuple[pa.Table | None, set[int], tuple[int, Exception] | None]:
        """Store the computed results in one write: the rows written (aligned with the
        storable ones, in order), the unstorable ones and the first of their errors."""
        pod = self._cached
        cache = pod.result_cache
        variation, execution, _ = pod.cache_binding.context(pod.packet_function)
        misses = list(done)
        outputs = [done[m] for m in misses]
        hashes = distinct.take(pa.array(misses, type=pa.int64()))
        now = dt.datetime.now(dt.UTC)
        bad: dict[int, PacketFunctionError] = {}
        try:
            written = cache.store_outputs_table(
                hashes, outputs, variation, execution, flush=False, pod_ts=now, absent_at=version
            )
        except SchemaError:
            bad = cache.unstorable(outputs)
            if not bad:
                raise
            keep = [i for i in range(len(misses)) if i not in bad]
            written = None
            if keep:
                written = cache.store_outputs_table(
                    hashes.take(pa.array(keep, type=pa.int64())),
                    [outputs[i] for i in keep],
                    variation,
                    execution,
                    flush=False,
                    pod_ts=now,
                    absent_at=version,
                )
        pod.cache_binding.note_written(len(outputs) - len(bad))
        unstorable = {misses[i] for i in bad}
        error = None
        if bad:
            i = min(bad)
            name = pod.packet_function.canonical_function_name
            named = PacketFunctionError(f"function {name!r}: {bad[i]}")
            named.__cause__ = bad[i]
            error = (misses[i], named)
        return written, unstorable, error

    def _assemble(
        self, part: pa.Table, rows: pa.Array, answers: pa.Table, computed: np.ndarray
    ) -> pa.Table:
        """The kept rows' full table: tags and system tags, outputs, their source info, the
        pod's meta columns and the context key."""
        tag_keys, _ = self._input.keys(ColumnConfig(system_tags=True))
        columns: dict[str, Any] = {k: part.column(k).take(rows) for k in tag_keys}
        out_schema = self._cached.output_packet_schema
        for k in out_schema:
            columns[k] = answers.column(k)
        for k in out_schema:
            columns[SOURCE_PREFIX + k] = answers.column(SOURCE_PREFIX + k)
        n = len(rows)
        for name, tp in self._cached.meta_schema().items():
            if name == COMPUTED:
                columns[name] = pa.array(computed, type=pa.bool_())
            elif name == PACKET_ID:
                columns[name] = answers.column(RECORD_ID)
            elif name == POD_TS:
                columns[name] = answers.column(POD_TS)
            else:
                columns[name] = pa.nulls(n, schema_to_arrow({name: tp | None}).field(0).type)
        if CONTEXT_KEY in part.column_names:
            columns[CONTEXT_KEY] = part.column(CONTEXT_KEY).take(rows).cast(pa.large_string())
        else:
            columns[CONTEXT_KEY] = pa.repeat(pa.scalar(DEFAULT_CONTEXT_KEY, pa.large_string()), n)
        return pa.table(columns)


def _answer_schema(output_schema: Schema) -> pa.Schema:
    outputs = schema_to_arrow({k: tp | None for k, tp in output_schema.items()})
    large = pa.large_string()
    return pa.schema(
        [
            pa.field(RECORD_ID, large),
            *outputs,
            *(pa.field(SOURCE_PREFIX + k, large) for k in output_schema),
            pa.field(POD_TS, _TS_TYPE),
        ]
    )


def _conform(table: pa.Table, target: pa.Schema) -> pa.Table:
    return pa.table([table.column(f.name).cast(f.type) for f in target], schema=target)


def _contexts(part: pa.Table, rows: np.ndarray) -> list[str]:
    if CONTEXT_KEY not in part.column_names:
        return [DEFAULT_CONTEXT_KEY] * len(rows)
    values: list[str] = part.column(CONTEXT_KEY).take(pa.array(rows, pa.int64())).to_pylist()
    return values
