"""``FunctionPodStream``: the lazy output of applying a function pod to a stream.

Nothing is computed until rows are read. Results are cached by input position, and the
stream's state is shared by every iterator over it:

* ``_tags[i]`` / ``_outputs[i]`` are the tag and the output of input row ``i``, kept so that a
  row keeps no Python object alive where possible (CPython's cyclic garbage collector scans
  every live object again on each full collection): a tag straight from a stream's row block
  is kept as its block and row and rebuilt when read, and a plain pod's outputs are kept
  column-wise (``ComputedColumns``; ``_outputs[i]`` is then the output's row there). Other
  tags and outputs (packets from a driver: cache hits, concurrent executors) are kept as
  objects; ``None`` marks a filtered row;
* ``_pending`` holds input rows already pulled from the upstream but without a recorded
  outcome (rows in flight, or a row whose call failed), in input order;
* one *driver* — ``pod.iter_process`` over a feed that first replays ``_pending`` and then
  pulls new upstream rows — produces outcomes in input order; each outcome is recorded for the
  row at the head of ``_pending``.

Any iterator that needs position ``i`` either reads the cached row ``i`` or advances the shared
driver (under a lock), so partial iteration, several interleaved iterators and re-iteration
all see the same rows in the same order and every function call happens once. Rows whose
function returned None are cached as filtered and skipped.

Fast path: when the pod calls its function row by row with nothing around the call
(``pod.sequential_call()``: a plain pod without a concurrent executor) the stream calls it
directly instead of through a driver, in short bursts (up to 256 rows or ~1 ms per lock hold)
so a trivial function costs a few microseconds per row; a slow function still computes one row
per read. A failure inside a burst is raised at the next read, after the rows before it.

An exception while computing a row propagates to the consumer; the driver is dropped and the
row (with any rows after it that were in flight) stays in ``_pending``, so the next iteration
RETRIES it — a deterministic failure re-raises there, a transient one succeeds — and rows are
never skipped or misassigned. An exception from the upstream itself is handled the same way:
the next read re-iterates the (immutable) upstream and skips the rows already pulled.

``as_table`` builds one full table (every hidden column) once, from the cached outcomes, with
the declared types (output schema, the pod's meta schema, string source info), so fresh
results and cache hits mix freely; each call then selects the requested columns. Hidden
columns are off by default (meta included). Source info not yet resolved is resolved in bulk
(one vectorised hash of the inputs). ``len(stream)`` computes every row but builds no table.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Protocol

import pyarrow as pa

from orcapod.data import Packet, Tag
from orcapod.data.conversion import columns_to_table, rows_to_table, schema_to_arrow
from orcapod.data.row_block import RowBlock
from orcapod.functions.computed_columns import ComputedColumns
from orcapod.functions.provenance import resolve_source_info
from orcapod.hashing import hash_rows
from orcapod.hashing.arrow_hashing import ROW_HASH_METHOD
from orcapod.streams import StreamBase, StreamProtocol
from orcapod.streams.base import ColumnsArg
from orcapod.types import ColumnConfig, ContentHash, Schema
from orcapod.types.columns import CONTEXT_KEY, SOURCE_PREFIX

__all__ = ["FunctionPodStream"]


class _Pod(Protocol):
    """What the stream uses of its pod (a ``FunctionPod``, which creates the stream: this
    module cannot import it)."""

    @property
    def executor(self) -> Any: ...

    @property
    def output_packet_schema(self) -> Schema: ...

    def computed_label(self) -> str: ...

    def meta_schema(self) -> Schema: ...

    def sequential_call(
        self, max_concurrency: int | None = None
    ) -> Callable[[Packet], Packet | None] | None: ...

    def sequential_values(
        self, max_concurrency: int | None = None
    ) -> tuple[Callable[[Packet], dict[str, Any] | None], Any, Any] | None: ...

    def iter_process(
        self, rows: Iterable[tuple[Tag, Packet]], *, max_concurrency: int | None = None
    ) -> Iterator[tuple[Tag, Any]]: ...

    def output_content_hash(self, input_stream: StreamProtocol) -> ContentHash: ...

    def output_pipeline_hash(self, input_stream: StreamProtocol) -> ContentHash: ...


_UNKNOWN: Any = object()
_NO_META: Mapping[str, Any] = MappingProxyType({})
_BURST_ROWS = 256
_BURST_SECONDS = 1e-3


class FunctionPodStream(StreamBase):
    """Lazy, position-cached output of ``pod`` over ``input_stream`` (see the docstring)."""

    def __init__(
        self,
        pod: _Pod,
        input_stream: StreamProtocol,
        *,
        label: str | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        self._pod = pod
        self._input = input_stream
        self.label = label
        self._max_concurrency = max_concurrency
        self._lock = threading.RLock()
        # per row: the tag, or the row block it is rebuilt from (``_tag_rows``/``_tag_contexts``
        # hold its row and context key): an untouched stream row keeps no object alive
        self._tags: list[Tag | RowBlock] = []
        self._tag_rows: list[int] = []
        self._tag_contexts: list[str] = []
        self._tag_schema: Schema | None = None
        # a Packet (driver path), a row of ``_computed`` (columnar fast path) or None (filtered)
        self._outputs: list[Packet | int | None] = []
        self._computed: ComputedColumns | None = None
        self._pending: deque[tuple[Tag, Packet]] = deque()
        self._upstream: Iterator[tuple[Tag, Packet]] | None = None
        self._pulled = 0
        self._done = False
        self._driver: Iterator[tuple[Tag, Any]] | None = None
        self._direct: Any = _UNKNOWN
        self._deferred_error: Exception | None = None
        self._full_table: pa.Table | None = None
        self._hash_column: pa.Array | None = None
        self._content_hash: ContentHash | None = None
        self._pipeline_hash: ContentHash | None = None

    # -- structure -----------------------------------------------------------------------

    @property
    def pod(self) -> _Pod:
        return self._pod

    producer = pod

    @property
    def input_stream(self) -> StreamProtocol:
        return self._input

    @property
    def upstreams(self) -> tuple[StreamProtocol, ...]:
        return (self._input,)

    @property
    def executor(self) -> Any:
        return self._pod.executor

    def __repr__(self) -> str:
        return (
            f"FunctionPodStream({self._pod.computed_label()!r}, rows_computed={len(self._outputs)})"
        )

    # -- schema --------------------------------------------------------------------------

    def _hidden_packet_schema(self, config: ColumnConfig) -> dict[str, Any]:
        out_schema = self._pod.output_packet_schema
        hidden: dict[str, Any] = {}
        if config.source:
            hidden.update({SOURCE_PREFIX + k: str for k in out_schema})
        if config.meta:
            hidden.update(
                {k: tp for k, tp in self._pod.meta_schema().items() if config.includes_meta(k)}
            )
        if config.context:
            hidden[CONTEXT_KEY] = str
        hash_col = config.content_hash_column()
        if hash_col is not None:
            hidden[hash_col] = str
        return hidden

    def output_schema(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[Schema, Schema]:
        config = ColumnConfig.handle_config(columns, all_info)
        tag_schema, _ = self._input.output_schema(ColumnConfig(system_tags=config.system_tags))
        packet_schema = self._pod.output_packet_schema.as_required()
        hidden = self._hidden_packet_schema(config)
        return tag_schema, packet_schema.with_values(hidden) if hidden else packet_schema

    def keys(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        tag_schema, packet_schema = self.output_schema(columns, all_info)
        return tuple(tag_schema), tuple(packet_schema)

    # -- iteration -----------------------------------------------------------------------

    def iter_packets(self) -> Iterator[tuple[Tag, Packet]]:
        outputs = self._outputs
        tag_of = self._tag
        i = 0
        while True:
            if i < len(outputs):
                out = outputs[i]
                if out is not None:
                    if type(out) is int:
                        computed = self._computed
                        assert computed is not None
                        yield tag_of(i), computed.packet(out)
                    else:
                        assert isinstance(out, Packet)
                        yield tag_of(i), out
                i += 1
            elif not self._advance(i):
                return

    def _tag(self, i: int) -> Tag:
        tag = self._tags[i]
        if type(tag) is RowBlock:
            assert self._tag_schema is not None
            return Tag._make_row(
                tag, self._tag_rows[i], self._tag_schema, _NO_META, self._tag_contexts[i]
            )
        assert isinstance(tag, Tag)
        return tag

    def _keep_tag(self, tag: Tag) -> None:
        block = tag._block_row()
        if block is not None and (self._tag_schema is None or tag._schema is self._tag_schema):
            self._tag_schema = tag._schema
            self._tags.append(block)
            self._tag_rows.append(tag._row)
        else:
            self._tags.append(tag)
            self._tag_rows.append(-1)
        self._tag_contexts.append(tag.context_key)

    def _advance(self, needed: int) -> bool:
        """Make sure outcome ``needed`` exists; False when the input is exhausted."""
        with self._lock:
            if len(self._outputs) > needed:
                return True
            if self._done:
                return False
            if self._deferred_error is not None:
                error, self._deferred_error = self._deferred_error, None
                raise error
            if self._direct is _UNKNOWN:
                self._direct = self._sequential()
            if self._direct is not None:
                return self._advance_direct(self._direct)
            driver = self._driver
            if driver is None:
                driver = self._pod.iter_process(self._feed(), max_concurrency=self._max_concurrency)
                self._driver = driver
            try:
                outcome = next(driver)
            except StopIteration:
                self._driver = None
                self._done = True
                self._upstream = None
                return False
            except BaseException:
                self._driver = None  # the failed row stays pending: retried next time
                raise
            self._pending.popleft()
            self._keep_tag(outcome[0])
            self._outputs.append(outcome[1])
            return True

    def _sequential(self) -> Callable[[Packet], Packet | int | None] | None:
        """The per-row call of the sequential fast path (None: use a driver). Outputs are kept
        column-wise (``ComputedColumns``) when the packet function can return bare values."""
        values = self._pod.sequential_values(self._max_concurrency)
        if values is None:
            return self._pod.sequential_call(self._max_concurrency)
        call_values, function, executor = values
        computed = self._computed
        if computed is None:
            computed = ComputedColumns(
                function.output_packet_schema, function.record_id_maker_for(executor)
            )
            self._computed = computed
        append = computed.append

        def call(packet: Packet) -> int | None:
            data = call_values(packet)
            return None if data is None else append(data, packet)

        return call

    def _advance_direct(self, call: Callable[[Packet], Packet | int | None]) -> bool:
        """Sequential fast path: call the function row by row, a few rows per lock hold.

        Rows are computed in small bursts (up to 256 rows or ~1 ms) to amortise the per-call
        overhead of trivial functions; a slow function still computes one row per read. An
        exception after some rows of a burst is kept and raised at the next read, so the
        consumer first receives the rows before the failing one.
        """
        pending = self._pending
        keep_tag, outputs = self._keep_tag, self._outputs
        start = time.perf_counter()
        done = 0
        while True:
            if pending:
                tag, packet = pending[0]
            else:
                row = self._pull_one()
                if row is None:
                    self._done = True
                    self._upstream = None
                    return done > 0
                tag, packet = row
            try:
                out = call(packet)
            except Exception as err:
                if done:
                    self._deferred_error = err
                    return True
                raise
            pending.popleft()
            keep_tag(tag)
            outputs.append(out)
            done += 1
            if done >= _BURST_ROWS or time.perf_counter() - start > _BURST_SECONDS:
                return True

    def _pull_one(self) -> tuple[Tag, Packet] | None:
        """The next upstream row (appended to ``_pending``), or None when exhausted."""
        upstream = self._upstream
        if upstream is None:
            if self._done:
                return None
            upstream = iter(self._input.iter_packets())
            for _ in range(self._pulled):  # re-iteration after an upstream failure
                next(upstream)
            self._upstream = upstream
        try:
            row = next(upstream)
        except StopIteration:
            return None
        except BaseException:
            self._upstream = None
            raise
        self._pulled += 1
        self._pending.append(row)
        return row

    def _feed(self) -> Iterator[tuple[Tag, Packet]]:
        yield from list(self._pending)
        while True:
            row = self._pull_one()
            if row is None:
                return
            yield row

    @property
    def num_rows(self) -> int:
        """Rows of the stream (computes every row; filtered rows are not counted). Builds no
        row objects: ``list(stream)`` asks for the length first and then iterates."""
        self._compute_all()
        return sum(1 for out in self._outputs if out is not None)

    def _compute_all(self) -> None:
        while self._advance(len(self._outputs)):
            pass

    def clear_cache(self) -> None:
        """Forget every computed row (the next read recomputes from the start)."""
        with self._lock:
            self._tags.clear()
            self._tag_rows.clear()
            self._tag_contexts.clear()
            self._tag_schema = None
            self._outputs.clear()
            self._computed = None
            self._direct = _UNKNOWN
            self._pending.clear()
            self._upstream = None
            self._driver = None
            self._deferred_error = None
            self._pulled = 0
            self._done = False
            self._full_table = None
            self._hash_column = None

    # -- table ---------------------------------------------------------------------------

    def _build_full_table(self) -> pa.Table:
        self._compute_all()
        with self._lock:
            if self._full_table is not None:
                return self._full_table
            outputs = self._outputs
            kept = [i for i, out in enumerate(outputs) if out is not None]
            tag_schema, _ = self._input.output_schema()
            full_tags, _ = self._input.output_schema(ColumnConfig(system_tags=True))
            tag_types = {**tag_schema, **{k: str | None for k in full_tags if k not in tag_schema}}
            tags = self._tag_table(kept, Schema(tag_types))
            columns: dict[str, Any] = {n: tags.column(n) for n in tags.column_names}
            out_schema = self._pod.output_packet_schema
            meta_schema = self._pod.meta_schema()
            meta_types = Schema({k: tp | None for k, tp in meta_schema.items()})
            computed = self._computed
            large = pa.large_string()
            if computed is not None and all(type(outputs[i]) is int for i in kept):
                # column-wise outputs: row j of ``computed`` is the j-th kept row
                packets = columns_to_table({k: computed[k] for k in out_schema}, out_schema)
                columns.update({n: packets.column(n) for n in packets.column_names})
                for k in out_schema:
                    columns[SOURCE_PREFIX + k] = pa.array(computed[SOURCE_PREFIX + k], type=large)
                if meta_schema:  # computed packets carry no meta
                    meta = rows_to_table([{}] * len(kept), meta_types)
                    columns.update({n: meta.column(n) for n in meta.column_names})
                columns[CONTEXT_KEY] = pa.array(computed.contexts, type=large)
            else:
                rows = [self._packet(outputs[i]) for i in kept]
                packets = rows_to_table([p.as_dict() for p in rows], out_schema)
                columns.update({n: packets.column(n) for n in packets.column_names})
                resolve_source_info(rows)
                sources = [p.source_info() for p in rows]
                for k in out_schema:
                    columns[SOURCE_PREFIX + k] = pa.array([s.get(k) for s in sources], type=large)
                if meta_schema:
                    meta_rows = [{k: p.get_meta_value(k) for k in meta_schema} for p in rows]
                    meta = rows_to_table(meta_rows, meta_types)
                    columns.update({n: meta.column(n) for n in meta.column_names})
                columns[CONTEXT_KEY] = pa.array([p.context_key for p in rows], type=large)
            self._full_table = pa.table(columns)
            return self._full_table

    def _packet(self, out: Packet | int | None) -> Packet:
        if type(out) is int:
            assert self._computed is not None
            return self._computed.packet(out)
        assert isinstance(out, Packet)
        return out

    def _tag_table(self, kept: list[int], schema: Schema) -> pa.Table:
        """Tags (with system tags) of the kept rows: taken from the row blocks' Arrow slices
        when every kept tag is an untouched block row, else built from the tags."""
        tags, rows = self._tags, self._tag_rows
        names = list(schema)
        blocks = [tags[i] for i in kept]
        unique = {id(b): b for b in blocks}.values()
        if kept and all(
            isinstance(b, RowBlock)
            and b.table is not None
            and set(names) <= set(b.table.column_names)
            for b in unique
        ):
            parts = []
            start = 0
            while start < len(kept):
                block = blocks[start]
                end = start
                while end < len(kept) and blocks[end] is block:
                    end += 1
                assert isinstance(block, RowBlock) and block.table is not None
                take = pa.array([rows[kept[j]] for j in range(start, end)], type=pa.int64())
                parts.append(block.table.select(names).take(take))
                start = end
            return pa.concat_tables(parts).cast(schema_to_arrow(schema))
        config = ColumnConfig(system_tags=True)
        return rows_to_table([self._tag(i).as_dict(config) for i in kept], schema)

    def _content_hashes(self, table: pa.Table) -> pa.Array:
        if self._hash_column is None:
            digests = hash_rows(table.select(list(self._pod.output_packet_schema)))
            self._hash_column = pa.array(
                [ContentHash(ROW_HASH_METHOD, d).to_string() for d in digests.to_pylist()],
                type=pa.large_string(),
            )
        return self._hash_column

    def as_table(self, columns: ColumnsArg = None, all_info: bool = False) -> pa.Table:
        config = ColumnConfig.handle_config(columns, all_info)
        table = self._build_full_table()
        tag_keys, _ = self._input.keys(ColumnConfig(system_tags=config.system_tags))
        out_keys = list(self._pod.output_packet_schema)
        names = [*tag_keys, *out_keys]
        hidden = self._hidden_packet_schema(config)
        hash_col = config.content_hash_column()
        names += [n for n in hidden if n != hash_col]
        result = table.select(names)
        if hash_col is not None:
            result = result.append_column(hash_col, self._content_hashes(table))
        if config.sort_by_tags:
            tag_only, _ = self._input.keys()
            if tag_only:
                result = result.sort_by([(c, "ascending") for c in tag_only])
        return result

    # -- identity ------------------------------------------------------------------------

    def content_hash(self) -> ContentHash:
        if self._content_hash is None:
            self._content_hash = self._pod.output_content_hash(self._input)
        return self._content_hash

    def pipeline_hash(self) -> ContentHash:
        if self._pipeline_hash is None:
            self._pipeline_hash = self._pod.output_pipeline_hash(self._input)
        return self._pipeline_hash
