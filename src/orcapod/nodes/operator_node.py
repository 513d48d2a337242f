"""``OperatorNode``: an operator bound to its input streams (usually other nodes) and,
optionally, to a database that logs its output.

Cache modes (``CacheMode``):

* ``OFF`` (default) — compute with the operator's Arrow kernels, write nothing;
* ``LOG`` — compute, then store the output rows, deduplicated by row hash: one vectorised
  ``hash_rows`` over every column of the full output table (hidden columns included) plus
  ``_node_content_hash``, written with ``add_records(..., skip_duplicates=True)`` — the same
  row stored twice is kept once, whatever the number of runs;
* ``REPLAY`` — serve the rows stored for this node's content hash with one filtered query
  (``get_records_with_column_value``), never touching the inputs.

Table path: ``(OperatorClass, <operator hash hex>, "schema:<node pipeline hash>")`` under the
node's database, so every run of the same structure shares one table; rows of different
inputs are told apart by ``_node_content_hash``.

Freshness (an operator node never serves an output computed before an upstream changed):
the computed output is cached only when every ancestor is immutable (sources, plain streams,
operator nodes over them). Below a function node — whose stored results grow when it runs —
each read recomputes from the current upstream, and ``run()`` always recomputes. Reading the
node (``as_table``/``iter_packets``) computes when needed but never writes; only ``run()``
logs rows.

Decision: a REPLAY node's output schema is the operator's prediction; stored rows come back in
the database's storage types and are cast to it, so replayed and computed rows look the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from orcapod.data import Packet, Tag
from orcapod.data.conversion import schema_to_arrow
from orcapod.errors import InputValidationError, PipelineError
from orcapod.nodes.source_node import SourceNode
from orcapod.nodes.streaming import stream_operator
from orcapod.nodes.summary import NodeRunSummary, NodeType
from orcapod.operators.base import Operator
from orcapod.operators.layout import FULL_INFO, StreamLayout
from orcapod.operators.streaming import ChunkOperator, streaming_form
from orcapod.sources import RootSource
from orcapod.sources.cached import row_hash_ids
from orcapod.sources.derived import DerivedSource
from orcapod.streams import ArrowTableStream
from orcapod.streams.base import ColumnsArg, StreamBase, StreamProtocol
from orcapod.streams.tracking import no_tracking
from orcapod.types import CacheMode, ContentHash, Schema
from orcapod.types.columns import NODE_CONTENT_HASH, RECORD_HASH
from orcapod.types.configs import enum_member

__all__ = ["OperatorNode", "is_immutable_stream"]


class OperatorNode(StreamBase):
    """An operator applied to fixed inputs, computed (or replayed) on ``run()``."""

    node_type = NodeType.OPERATOR

    def __init__(
        self,
        operator: Operator,
        input_streams: Sequence[StreamProtocol],
        pipeline_database: Any | None = None,
        cache_mode: CacheMode = CacheMode.OFF,
        label: str | None = None,
    ) -> None:
        if not isinstance(operator, Operator):
            raise InputValidationError(
                f"OperatorNode needs an orcapod operator, got {type(operator).__name__}"
            )
        inputs = tuple(input_streams)
        operator.validate_inputs(*inputs)
        self._operator = operator
        self._inputs = inputs
        self._database = pipeline_database
        self._label = label
        self.cache_mode = CacheMode(cache_mode)
        with no_tracking():
            self._lazy = operator.process(*inputs)
        self._layout: StreamLayout = self._lazy.layout
        self._cached: ArrowTableStream | None = None

    # Structure -----------------------------------------------------------------------------
    @property
    def operator(self) -> Operator:
        return self._operator

    @property
    def upstreams(self) -> tuple[StreamProtocol, ...]:
        return self._inputs

    @property
    def label(self) -> str:
        return self._label or type(self._operator).__name__

    @label.setter
    def label(self, value: str) -> None:
        self._label = value

    @property
    def cache_mode(self) -> CacheMode:
        return self._cache_mode

    @cache_mode.setter
    def cache_mode(self, mode: CacheMode | str) -> None:
        mode = enum_member(CacheMode, mode, f"operator node {self.label!r}: cache_mode")
        if mode is not CacheMode.OFF and getattr(self, "_database", None) is None:
            raise PipelineError(
                f"operator node {self.label!r}: cache mode {mode.value!r} needs a "
                "pipeline_database; pass one or use CacheMode.OFF"
            )
        self._cache_mode = mode
        self._cached = None

    @property
    def pipeline_database(self) -> Any | None:
        return self._database

    @property
    def record_path(self) -> tuple[str, ...]:
        """Where LOG writes and REPLAY reads, relative to the pipeline database."""
        return (
            type(self._operator).__name__,
            self._operator.content_hash().to_hex(),
            "schema:" + self.pipeline_hash().to_string(),
        )

    def __repr__(self) -> str:
        return (
            f"OperatorNode(label={self.label!r}, operator={self._operator!r}, "
            f"cache_mode={self.cache_mode.value!r})"
        )

    # Identity and schema (never compute) -------------------------------------------------------
    def content_hash(self) -> ContentHash:
        return self._lazy.content_hash()

    def pipeline_hash(self) -> ContentHash:
        return self._lazy.pipeline_hash()

    def keys(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return self._lazy.keys(columns, all_info)

    def output_schema(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[Schema, Schema]:
        return self._lazy.output_schema(columns, all_info)

    # Running ---------------------------------------------------------------------------------
    def _inputs_immutable(self) -> bool:
        return all(is_immutable_stream(s) for s in self._inputs)

    def _compute(self) -> ArrowTableStream:
        with no_tracking():
            result = self._operator.static_process(*self._inputs)
        return ArrowTableStream(
            result.table,
            list(self._layout.tags),
            identity=self.content_hash(),
            pipeline_identity=self.pipeline_hash(),
            label=self.label,
        )

    def _replay(self) -> ArrowTableStream:
        table = self._stored_rows()
        expected = schema_to_arrow(
            {name: self._layout.type_of(name) for name in self._layout.column_names}
        )
        if table is None:
            table = expected.empty_table()
        else:
            table = table.select(self._layout.column_names).cast(_relaxed(expected))
        return ArrowTableStream(
            table,
            list(self._layout.tags),
            identity=self.content_hash(),
            pipeline_identity=self.pipeline_hash(),
            label=self.label,
        )

    def _stored_rows(self) -> pa.Table | None:
        if self._database is None:
            return None
        table = self._database.get_records_with_column_value(
            self.record_path, {NODE_CONTENT_HASH: self.content_hash().to_string()}
        )
        if table is None:
            return None
        return table.drop_columns([c for c in (NODE_CONTENT_HASH,) if c in table.column_names])

    def _log(self, stream: ArrowTableStream) -> None:
        table = stream.table
        if table.num_rows == 0:
            return
        content = pa.array(
            [self.content_hash().to_string()] * table.num_rows, type=pa.large_string()
        )
        table = table.append_column(NODE_CONTENT_HASH, content)
        table = table.append_column(RECORD_HASH, row_hash_ids(table))
        assert self._database is not None  # guaranteed by the cache_mode setter
        self._database.add_records(
            self.record_path, table, record_id_column=RECORD_HASH, skip_duplicates=True
        )

    @property
    def runnable(self) -> bool:
        return True

    def refresh(self) -> None:
        """Forget the rows computed or replayed last (read again on next use)."""
        self._cached = None

    def run(self, max_concurrency: int | None = None) -> NodeRunSummary:
        """Compute (OFF, LOG — and log the rows) or replay (REPLAY) the output now."""
        if self.cache_mode is CacheMode.REPLAY:
            stream = self._replay()
            self._cached = stream
            return NodeRunSummary(self.label, reused=stream.num_rows)
        stream = self._compute()
        if self.cache_mode is CacheMode.LOG:
            self._log(stream)
        self._cached = stream
        return NodeRunSummary(self.label, computed=stream.num_rows)

    def run_rows(self) -> tuple[NodeRunSummary, pa.Table]:
        """``run()``, and the full table of the rows it computed or replayed."""
        summary = self.run()
        assert self._cached is not None  # set by run()
        return summary, self._cached.as_table(FULL_INFO)

    def streaming_form(self, ordered: Sequence[bool]) -> ChunkOperator | None:
        """The operator applied chunk by chunk, or None when this node is a barrier
        (``orcapod.operators.streaming``; always a barrier with ``CacheMode.LOG``/``REPLAY``).
        ``ordered``: per input, whether its chunks arrive in the synchronous row order."""
        if self.cache_mode is not CacheMode.OFF:
            return None
        return streaming_form(self._operator, self._lazy.input_infos, self._layout, ordered)

    async def async_execute(
        self,
        inputs: Sequence[Any],
        output: Any,
        *,
        ordered: Sequence[bool] | None = None,
        chunk_rows: int = 64,
        **_: Any,
    ) -> NodeRunSummary:
        """Streaming run: stream when the operator allows, else wait for every input and run
        as a synchronous run does (``orcapod.nodes.streaming``)."""
        flags = list(ordered) if ordered is not None else [True] * len(inputs)
        return await stream_operator(self, inputs, output, flags, chunk_rows)

    def flush(self) -> None:
        if self._database is not None:
            self._database.flush()

    def _current(self) -> ArrowTableStream:
        if self.cache_mode is CacheMode.REPLAY:
            if self._cached is None:
                self._cached = self._replay()
            return self._cached
        if self._cached is not None and self._inputs_immutable():
            return self._cached
        stream = self._compute()
        if self._inputs_immutable():
            self._cached = stream
        return stream

    # Data ----------------------------------------------------------------------------------
    def as_table(self, columns: ColumnsArg = None, all_info: bool = False) -> pa.Table:
        return self._current().as_table(columns, all_info)

    def iter_packets(self) -> Iterator[tuple[Tag, Packet]]:
        return self._current().iter_packets()

    @property
    def table(self) -> pa.Table:
        """The full current output table (hidden columns included)."""
        return self._current().table

    def get_all_records(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> pa.Table | None:
        """The rows logged for this node's content hash (None when nothing is stored)."""
        if self._database is None:
            raise PipelineError(
                f"operator node {self.label!r} has no pipeline_database, so nothing is "
                "stored; give it a database and CacheMode.LOG"
            )
        stored = self._stored_rows()
        if stored is None:
            return None
        stream = ArrowTableStream(stored.select(self._layout.column_names), list(self._layout.tags))
        return stream.as_table(columns, all_info)

    def as_source(self, source_id: str | None = None) -> DerivedSource:
        """A new source over this node's logged rows (a query, never a recomputation)."""
        return DerivedSource(self, source_id=source_id)


def _relaxed(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every field nullable (stored columns always are)."""
    return pa.schema([f.with_nullable(True) for f in schema])


def is_immutable_stream(stream: Any) -> bool:
    """True when ``stream``'s rows can never change (no function node above it)."""
    if isinstance(stream, OperatorNode):
        return stream.cache_mode is not CacheMode.REPLAY and stream._inputs_immutable()
    if isinstance(stream, SourceNode):
        return is_immutable_stream(stream.stream)
    if isinstance(stream, RootSource | ArrowTableStream):
        return True
    upstreams = getattr(stream, "upstreams", None)
    if upstreams is not None and not hasattr(stream, "run"):
        return all(is_immutable_stream(s) for s in upstreams)
    return False
