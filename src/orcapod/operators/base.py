"""``Operator`` (the shared base of every operator) and ``OperatorStream`` (its lazy output).

An operator restructures streams without creating values. Applying it —
``op(*streams, label=None)`` or ``op.process(*streams)`` — does three things at once and
computes nothing:

1. validates the inputs against their *layouts* (column roles and types, see
   ``orcapod.operators.layout``), raising ``InputValidationError`` that names the offending
   columns, so bad input fails where the operator is applied, not when rows are first read;
2. records the invocation (``orcapod.streams.tracking.record_invocation``) so a pipeline can
   turn it into a node;
3. returns an ``OperatorStream``, whose schema and keys come from the predicted layout and
   whose rows are computed once, on first data access, by ``static_process``. Streams are
   immutable, so caching that result in the ``OperatorStream`` can never go stale.

A subclass implements two hooks over ``InputInfo`` objects (stream + layout):
``_predict(inputs) -> StreamLayout`` (validates; raises on bad input) and
``_compute(inputs, tables, layout) -> pa.Table`` (Arrow/Polars kernels only; the table's
columns must be ``layout.column_names``). Input tables are the inputs' full tables (every
hidden column) normalised to layout order.

Identity: an operator's identity is its class name plus its parameters
(``identity_structure()``). An output stream's content hash is
``hash_object({"operator": identity, "inputs": input content hashes})`` and its pipeline hash
the same over the input pipeline hashes; the input hashes form a sorted tuple (a multiset) for
commutative operators and keep argument order otherwise.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any, ClassVar

import pyarrow as pa

from orcapod.data import Packet, Tag
from orcapod.errors import InputValidationError
from orcapod.hashing import hash_object
from orcapod.operators.layout import (
    FULL_INFO,
    StreamLayout,
    layout_from_table,
    normalise_table,
)
from orcapod.sources import RootSource
from orcapod.streams import ArrowTableStream, StreamBase, StreamProtocol
from orcapod.streams.base import ColumnsArg
from orcapod.streams.tracking import InvocationKind, record_invocation
from orcapod.types import ColumnConfig, ContentHash, Schema
from orcapod.types.columns import (
    CONTEXT_KEY,
    DATAGRAM_PREFIX,
    META_PREFIX,
    SYSTEM_TAG_PREFIX,
    source_column,
)

__all__ = ["InputInfo", "Operator", "OperatorStream", "check_streams", "output_identity"]


class InputInfo:
    """One input of an operator application: the stream and its layout."""

    def __init__(self, stream: StreamProtocol) -> None:
        self.stream = stream
        self.layout = stream_layout(stream)

    @cached_property
    def pipeline_hash(self) -> ContentHash:
        return self.stream.pipeline_hash()

    @cached_property
    def content_hash(self) -> ContentHash:
        return self.stream.content_hash()


def _arrow_stream(stream: Any) -> ArrowTableStream | None:
    if isinstance(stream, ArrowTableStream):
        return stream
    if isinstance(stream, RootSource):
        return stream.stream
    return None


def stream_layout(stream: StreamProtocol) -> StreamLayout:
    """The layout of any stream, without computing an operator's output."""
    if isinstance(stream, OperatorStream):
        return stream.layout
    if isinstance(stream, RootSource):  # from its columns and schemas: no row is enriched
        tag_schema, packet_schema = stream.output_schema(FULL_INFO)
        types = {**tag_schema, **packet_schema}
        return layout_from_table(stream.empty_table(), stream.keys()[0], types)
    arrow = _arrow_stream(stream)
    if arrow is not None:
        return layout_from_table(arrow.table, arrow.keys()[0])
    user_tags = stream.keys()[0]
    tag_keys, packet_keys = stream.keys(FULL_INFO)
    tag_schema, packet_schema = stream.output_schema(FULL_INFO)
    packets = {k: packet_schema[k] for k in packet_keys if not k.startswith(DATAGRAM_PREFIX)}
    return StreamLayout.build(
        tags={k: tag_schema[k] for k in user_tags},
        system_tags={k: tag_schema[k] for k in tag_keys if k.startswith(SYSTEM_TAG_PREFIX)},
        packets=packets,
        sources={
            source_column(c): packet_schema.get(source_column(c), str | None) for c in packets
        },
        meta={k: packet_schema[k] for k in packet_keys if k.startswith(META_PREFIX)},
        context=CONTEXT_KEY in packet_keys,
    )


def stream_table(stream: StreamProtocol, layout: StreamLayout) -> pa.Table:
    """The full table of a stream (hidden columns included) in layout order."""
    if isinstance(stream, OperatorStream):
        return stream.table
    arrow = _arrow_stream(stream)
    table = arrow.table if arrow is not None else stream.as_table(FULL_INFO)
    return normalise_table(table, layout)


def _source_hint(value: Any) -> str:
    """Which source turns ``value`` into a stream (for error messages)."""
    module = type(value).__module__.split(".")[0]
    kind = type(value).__name__
    if module in ("pandas", "polars") and kind == "DataFrame":
        return f"wrap the {module} DataFrame in a source: DataFrameSource(df, tag_columns=[...])"
    if isinstance(value, (pa.Table, pa.RecordBatch)):
        return "wrap the Arrow table in a source: ArrowTableSource(table, tag_columns=[...])"
    if isinstance(value, Mapping | list | tuple):
        return "wrap Python rows in a source: DictSource(rows, tag_columns=[...])"
    return "pass sources or streams"


def check_streams(owner: str, streams: Sequence[Any]) -> None:
    """Raise ``InputValidationError`` naming the first input that is not a stream, with the
    source (``orcapod.sources``) that would turn it into one."""
    for i, stream in enumerate(streams):
        if not isinstance(stream, StreamProtocol):
            raise InputValidationError(
                f"{owner}: input {i} is a {type(stream).__name__}, not a stream; "
                f"{_source_hint(stream)} (from orcapod.sources)"
            )


def output_identity(operator: Operator, input_hashes: Sequence[ContentHash]) -> ContentHash:
    """Identity of an operator's output over inputs with the given (content or pipeline) hashes."""
    texts = [h.to_string() for h in input_hashes]
    inputs = tuple(sorted(texts)) if operator.is_commutative else tuple(texts)
    return hash_object({"operator": operator.identity_structure(), "inputs": inputs})


class Operator:
    """Base of every operator; see the module docstring for the contract."""

    is_commutative: ClassVar[bool] = False
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1

    # Identity and configuration -------------------------------------------------------------
    def parameters(self) -> dict[str, Any]:
        """Constructor arguments (JSON-friendly); part of identity and of ``to_config``."""
        return {}

    def identity_structure(self) -> Any:
        return {"operator": type(self).__name__, "parameters": self.parameters()}

    def content_hash(self) -> ContentHash:
        return hash_object(self.identity_structure())

    def pipeline_hash(self) -> ContentHash:
        return self.content_hash()

    @property
    def uri(self) -> tuple[str, str]:
        """``(class name, hex content hash)``: names this operator with its parameters."""
        return (type(self).__name__, self.content_hash().to_hex())

    def argument_symmetry(
        self, streams: Sequence[StreamProtocol]
    ) -> frozenset[StreamProtocol] | tuple[StreamProtocol, ...]:
        """The inputs as identity sees them: a set for commutative operators (argument order
        does not matter), else a tuple."""
        return frozenset(streams) if self.is_commutative else tuple(streams)

    def to_config(self) -> dict[str, Any]:
        return {"class_name": type(self).__name__, "config": self.parameters()}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Operator:
        return cls(**dict(config.get("config", {})))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.parameters().items())
        return f"{type(self).__name__}({params})"

    # Hooks ----------------------------------------------------------------------------------
    def _predict(self, inputs: Sequence[InputInfo]) -> StreamLayout:
        raise NotImplementedError

    def _compute(
        self, inputs: Sequence[InputInfo], tables: Sequence[pa.Table], layout: StreamLayout
    ) -> pa.Table:
        raise NotImplementedError

    # Application ----------------------------------------------------------------------------
    def _inputs(self, streams: Sequence[Any]) -> list[InputInfo]:
        name = type(self).__name__
        n = len(streams)
        if n < self.min_inputs or (self.max_inputs is not None and n > self.max_inputs):
            if self.max_inputs == self.min_inputs:
                expected = f"exactly {self.min_inputs}"
            elif self.max_inputs is None:
                expected = f"at least {self.min_inputs}"
            else:
                expected = f"{self.min_inputs} to {self.max_inputs}"
            raise InputValidationError(f"{name} takes {expected} input stream(s), got {n}")
        check_streams(name, streams)
        return [InputInfo(s) for s in streams]

    def validate_inputs(self, *streams: StreamProtocol) -> None:
        """Raise ``InputValidationError`` if the operator cannot be applied to ``streams``."""
        self._predict(self._inputs(streams))

    def output_schema(
        self, *streams: StreamProtocol, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[Schema, Schema]:
        """The (tag, packet) schema the output would have, predicted without computing."""
        layout = self._predict(self._inputs(streams))
        return layout.schemas(ColumnConfig.handle_config(columns, all_info))

    def _materialise(
        self,
        inputs: Sequence[InputInfo],
        layout: StreamLayout,
        identity: ContentHash,
        pipeline_identity: ContentHash,
        label: str | None,
    ) -> ArrowTableStream:
        tables = [stream_table(i.stream, i.layout) for i in inputs]
        table = self._compute(inputs, tables, layout)
        return ArrowTableStream(
            table,
            list(layout.tags),
            identity=identity,
            pipeline_identity=pipeline_identity,
            label=label,
            schemas=layout.schemas(ColumnConfig()),
        )

    def static_process(self, *streams: StreamProtocol) -> ArrowTableStream:
        """Compute the output now, as an ``ArrowTableStream`` (no recording)."""
        inputs = self._inputs(streams)
        layout = self._predict(inputs)
        return self._materialise(
            inputs,
            layout,
            output_identity(self, [i.content_hash for i in inputs]),
            output_identity(self, [i.pipeline_hash for i in inputs]),
            None,
        )

    def process(self, *streams: StreamProtocol, label: str | None = None) -> OperatorStream:
        """Validate, record, and return the lazy output stream."""
        inputs = self._inputs(streams)
        layout = self._predict(inputs)
        output = OperatorStream(self, inputs, layout, label)
        record_invocation(InvocationKind.OPERATOR, self, tuple(streams), output, label)
        return output

    def __call__(self, *streams: StreamProtocol, label: str | None = None) -> OperatorStream:
        return self.process(*streams, label=label)


class OperatorStream(StreamBase):
    """The lazy output of an operator: schema predicted, rows computed once on first use."""

    def __init__(
        self,
        operator: Operator,
        inputs: Sequence[InputInfo],
        layout: StreamLayout,
        label: str | None = None,
    ) -> None:
        self._operator = operator
        self._inputs = tuple(inputs)
        self._layout = layout
        self.label = label
        self._lock = threading.Lock()
        self._result: ArrowTableStream | None = None
        self._content_hash: ContentHash | None = None
        self._pipeline_hash: ContentHash | None = None

    # Structure -------------------------------------------------------------------------------
    @property
    def operator(self) -> Operator:
        return self._operator

    @property
    def producer(self) -> Operator:
        """The operator that produces this stream (same as ``operator``)."""
        return self._operator

    @property
    def upstreams(self) -> tuple[StreamProtocol, ...]:
        return tuple(i.stream for i in self._inputs)

    @property
    def layout(self) -> StreamLayout:
        return self._layout

    @property
    def input_infos(self) -> tuple[InputInfo, ...]:
        """The inputs as the operator sees them (stream + layout)."""
        return self._inputs

    def __repr__(self) -> str:
        tags, packets = self.keys()
        state = "computed" if self._result is not None else "lazy"
        return f"OperatorStream({self._operator!r}, {state}, tags={tags}, packets={packets})"

    # Schema (predicted, never computes) ------------------------------------------------------
    def keys(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return self._layout.keys(ColumnConfig.handle_config(columns, all_info))

    def output_schema(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[Schema, Schema]:
        return self._layout.schemas(ColumnConfig.handle_config(columns, all_info))

    # Data (computed once) --------------------------------------------------------------------
    @property
    def is_computed(self) -> bool:
        return self._result is not None

    def computed(self) -> ArrowTableStream:
        """The computed output (computing it on first call)."""
        if self._result is None:
            with self._lock:
                if self._result is None:
                    self._result = self._operator._materialise(
                        self._inputs,
                        self._layout,
                        self.content_hash(),
                        self.pipeline_hash(),
                        self.label,
                    )
        return self._result

    @property
    def table(self) -> pa.Table:
        """The full computed table (hidden columns included)."""
        return self.computed().table

    @property
    def num_rows(self) -> int:
        return self.computed().num_rows

    def __len__(self) -> int:
        return self.num_rows

    def as_table(self, columns: ColumnsArg = None, all_info: bool = False) -> pa.Table:
        return self.computed().as_table(columns, all_info)

    def iter_packets(self) -> Iterator[tuple[Tag, Packet]]:
        return self.computed().iter_packets()

    # Identity --------------------------------------------------------------------------------
    def content_hash(self) -> ContentHash:
        if self._content_hash is None:
            self._content_hash = output_identity(
                self._operator, [i.content_hash for i in self._inputs]
            )
        return self._content_hash

    def pipeline_hash(self) -> ContentHash:
        if self._pipeline_hash is None:
            self._pipeline_hash = output_identity(
                self._operator, [i.pipeline_hash for i in self._inputs]
            )
        return self._pipeline_hash
