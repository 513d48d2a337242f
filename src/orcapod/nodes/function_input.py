"""``NodeInput``: a function node's input and what is derived from it.

* the input stream, checked against the function's parameters when it is set;
* what the function reads: the input projected onto its parameters (``FunctionPod.
  project_input``), so a packet column the function does not take is part of no key;
* the identification of every row (``InputPlan``: input packet hashes and pipeline entry
  ids), made on first use and kept;
* the node's identity hashes (pipeline hash: schema and topology; content hash: code and
  data), kept likewise.

``refresh()`` forgets the identification and the hashes (both made again on next use) when
the input may have changed: an upstream function node ran, or another process stored rows.
An input that can never change (no function node above it) keeps them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from orcapod.errors import InputValidationError
from orcapod.functions import FunctionPod
from orcapod.functions.engine.identify import InputPlan
from orcapod.nodes.operator_node import is_immutable_stream
from orcapod.streams import ArrowTableStream
from orcapod.types import ColumnConfig, ContentHash

__all__ = ["NodeInput"]

#: the columns an input plan reads: tags, system tags, packets and their source info
_PLAN_COLUMNS = ColumnConfig(system_tags=True, source=True)


class NodeInput:
    """The input of one function node (see the module docstring)."""

    def __init__(self, pod: FunctionPod, stream: Any) -> None:
        tag_schema, packet_schema = stream.output_schema()
        pod.validate_packet_schema(packet_schema, tag_schema)
        self._pod = pod
        self.stream = stream
        #: what the function reads: the input projected onto its parameters
        self.read: Any = pod.project_input(stream)
        self._plan: InputPlan | None = None
        self._hashes: dict[str, ContentHash] = {}

    @classmethod
    def of_streams(cls, pod: FunctionPod, streams: Sequence[Any]) -> NodeInput:
        """The input of a node given as a sequence of streams (exactly one)."""
        streams = tuple(streams)
        if len(streams) != 1:
            raise InputValidationError(
                f"a FunctionNode has exactly one input stream, got {len(streams)}; join "
                "several streams first"
            )
        return cls(pod, streams[0])

    def table(self) -> Any:
        """The projected input with its system tag and source columns (what a plan reads)."""
        return self.read.as_table(_PLAN_COLUMNS)

    def num_rows(self) -> int:
        """How many rows the input has (a projection keeps every row of its input)."""
        return int(self.stream.num_rows)

    def slices(self, rows: int) -> Iterator[pa.Table]:
        """``table()`` in consecutive slices of at most ``rows`` rows, each built on its own
        where the input can (a source enriches one slice at a time), so a run over a large
        input never holds every row's provenance columns at once."""
        if self.read is self.stream:
            return self.stream.iter_slices(rows, _PLAN_COLUMNS)
        tag_keys, packet_keys = self.read.keys(_PLAN_COLUMNS)
        names = [*tag_keys, *packet_keys]
        return (part.select(names) for part in self.stream.iter_slices(rows, _PLAN_COLUMNS))

    def plan(self) -> InputPlan:
        """Identity of every input row (made on first use)."""
        if self._plan is None:
            self._plan = InputPlan(self.read)
        return self._plan

    def pipeline_hash(self) -> ContentHash:
        """Schema and topology only: the function's URI and the input's pipeline hash."""
        if "pipeline" not in self._hashes:
            self._hashes["pipeline"] = self._pod.output_pipeline_hash(self.read)
        return self._hashes["pipeline"]

    def content_hash(self) -> ContentHash:
        """Includes data: the function's identity (code) and the input's content hash."""
        if "content" not in self._hashes:
            self._hashes["content"] = self._pod.output_content_hash(self.read)
        return self._hashes["content"]

    def refresh(self) -> None:
        """Identify the input again on next use, unless it can never change."""
        if not is_immutable_stream(self.stream):
            self.read = self._pod.project_input(self.stream)  # a projection reads once
            self._plan = None
            self._hashes.clear()

    def tag_keys(self) -> tuple[str, ...]:
        tag_keys, _ = self.stream.keys()
        return tuple(tag_keys)

    def stream_of(self, table: Any, **identity: Any) -> ArrowTableStream:
        """``table`` (the node's stored rows, or their zero-row template) as a stream with
        the input's tag columns."""
        return ArrowTableStream(table, self.tag_keys(), **identity)

    def full_tag_schema(self) -> Any:
        """Tag and system tag columns of the input."""
        tag_schema, _ = self.stream.output_schema(ColumnConfig(system_tags=True))
        return tag_schema
