"""``SourceNode``: a leaf stream (a source, or any stream not produced inside the pipeline)
bound into a compiled pipeline.

A source node computes nothing: it hands its stream's rows to the nodes downstream. Its
identity (content and pipeline hash), schema and rows are the wrapped stream's, so nodes built
on it hash exactly as they would on the bare stream. ``run()`` reports every row as reused
(``computed=0``): reading a source is not work the pipeline remembers or repeats.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from orcapod.data import Packet, Tag
from orcapod.errors import InputValidationError
from orcapod.nodes.streaming import stream_source
from orcapod.nodes.summary import NodeRunSummary, NodeType
from orcapod.streams.base import ColumnsArg, StreamBase, StreamProtocol
from orcapod.types import ContentHash, Schema

__all__ = ["SourceNode"]


class SourceNode(StreamBase):
    """Wraps a leaf stream so it can sit in a pipeline graph like every other node."""

    node_type = NodeType.SOURCE

    def __init__(self, stream: StreamProtocol, label: str | None = None) -> None:
        if not isinstance(stream, StreamProtocol):
            raise InputValidationError(
                f"SourceNode needs a stream (a source or any orcapod stream), got "
                f"{type(stream).__name__}"
            )
        self._stream = stream
        self._label = label

    @property
    def stream(self) -> StreamProtocol:
        """The wrapped leaf stream."""
        return self._stream

    @property
    def label(self) -> str:
        if self._label:
            return self._label
        inner = getattr(self._stream, "label", None)
        return inner if isinstance(inner, str) and inner else type(self._stream).__name__

    @label.setter
    def label(self, value: str) -> None:
        self._label = value

    @property
    def upstreams(self) -> tuple[StreamProtocol, ...]:
        return ()

    @property
    def runnable(self) -> bool:
        return True

    def refresh(self) -> None:
        """Nothing is kept: a source node reads its stream on every use."""

    def run(self, max_concurrency: int | None = None) -> NodeRunSummary:
        """Nothing to compute; reports the number of rows the source provides."""
        return NodeRunSummary(self.label, reused=self._stream.as_table().num_rows)

    async def async_execute(
        self, inputs: Sequence[Any], output: Any, *, chunk_rows: int = 64, **_: Any
    ) -> NodeRunSummary:
        """Streaming run: send the stream's rows to ``output`` in chunks
        (``orcapod.nodes.streaming``)."""
        return await stream_source(self, output, chunk_rows)

    def flush(self) -> None:
        """A source node writes nothing."""

    # Stream surface (delegated) ------------------------------------------------------------
    def keys(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return self._stream.keys(columns, all_info)

    def output_schema(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[Schema, Schema]:
        return self._stream.output_schema(columns, all_info)

    def iter_packets(self) -> Iterator[tuple[Tag, Packet]]:
        return self._stream.iter_packets()

    def as_table(self, columns: ColumnsArg = None, all_info: bool = False) -> pa.Table:
        return self._stream.as_table(columns, all_info)

    def content_hash(self) -> ContentHash:
        return self._stream.content_hash()

    def pipeline_hash(self) -> ContentHash:
        return self._stream.pipeline_hash()

    def __repr__(self) -> str:
        return f"SourceNode(label={self.label!r}, stream={self._stream!r})"
