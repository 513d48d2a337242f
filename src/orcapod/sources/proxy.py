"""``SourceProxy``: the identity of a source whose data is not at hand.

A proxy is built from what was recorded about a source — its id, its content and pipeline
hashes (as ``"<method>:<hex>"`` strings), its tag and packet schemas, optionally its class
name and configuration — and answers everything identity needs (``content_hash``,
``pipeline_hash``, ``output_schema``, ``keys``) without the data. Asking it for rows before a
live source is bound raises ``UnboundSourceError`` (also a ``NotImplementedError``).

``bind(source)`` attaches the live source after checking that it *is* the recorded one: same
source id, content hash, pipeline hash, tag and packet columns and, when recorded, class
name. Since a source's content hash covers its data, a source whose rows changed does not
bind. Every mismatch is listed in one ``InputValidationError``. Once bound, the proxy serves
the source's rows; ``unbind()`` detaches it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orcapod.errors import InputValidationError, UnboundSourceError
from orcapod.streams.base import ColumnsArg, StreamBase, StreamProtocol
from orcapod.types import ColumnConfig, ContentHash, Schema

__all__ = ["SourceProxy"]


class SourceProxy(StreamBase):
    """Stands in for a source by its recorded identity until ``bind`` attaches it."""

    def __init__(
        self,
        source_id: str,
        content_hash_str: str,
        pipeline_hash_str: str,
        tag_schema: Mapping[str, Any],
        packet_schema: Mapping[str, Any],
        expected_class_name: str | None = None,
        source_config: Mapping[str, Any] | None = None,
        label: str | None = None,
    ) -> None:
        if not isinstance(source_id, str) or not source_id:
            raise InputValidationError(f"source_id must be a non-empty string, got {source_id!r}")
        self._source_id = source_id
        self._content_hash = ContentHash.from_string(content_hash_str)
        self._pipeline_hash = ContentHash.from_string(pipeline_hash_str)
        self._schemas = (Schema(tag_schema), Schema(packet_schema))
        self._expected_class_name = expected_class_name
        self._source_config = dict(source_config or {})
        self.label = label
        self._delegate: StreamProtocol | None = None

    def __repr__(self) -> str:
        state = "bound" if self.is_bound else "unbound"
        return f"SourceProxy({self._source_id!r}, {state})"

    @property
    def source_id(self) -> str:
        return self._source_id

    @property
    def expected_class_name(self) -> str | None:
        return self._expected_class_name

    @property
    def source_config(self) -> dict[str, Any]:
        return dict(self._source_config)

    @property
    def is_bound(self) -> bool:
        return self._delegate is not None

    @property
    def delegate(self) -> StreamProtocol | None:
        """The bound live source, or None."""
        return self._delegate

    # Binding -------------------------------------------------------------------------------
    def bind(self, source: StreamProtocol) -> None:
        """Attach the live source after checking it is the recorded one."""
        problems = []
        their_id = getattr(source, "source_id", None)
        if their_id != self._source_id:
            problems.append(f"source_id: expected {self._source_id!r}, got {their_id!r}")
        if source.content_hash() != self._content_hash:
            problems.append(
                f"content hash: expected {self._content_hash}, got {source.content_hash()} "
                "(the source's data or configuration changed)"
            )
        if source.pipeline_hash() != self._pipeline_hash:
            problems.append(
                f"pipeline hash: expected {self._pipeline_hash}, got {source.pipeline_hash()}"
            )
        tags, packets = source.keys()
        if (tuple(tags), tuple(packets)) != (tuple(self._schemas[0]), tuple(self._schemas[1])):
            problems.append(
                f"columns: expected {tuple(self._schemas[0])} / {tuple(self._schemas[1])}, "
                f"got {tuple(tags)} / {tuple(packets)}"
            )
        kind = type(source).__name__
        if self._expected_class_name is not None and kind != self._expected_class_name:
            problems.append(f"class: expected {self._expected_class_name}, got {kind}")
        if problems:
            raise InputValidationError(
                f"cannot bind {kind} to SourceProxy({self._source_id!r}): "
                + "; ".join(problems)
                + " - bind the source that was recorded"
            )
        self._delegate = source

    def unbind(self) -> StreamProtocol | None:
        """Detach and return the bound source (None when unbound)."""
        delegate, self._delegate = self._delegate, None
        return delegate

    @property
    def stream(self) -> StreamProtocol:
        if self._delegate is None:
            raise UnboundSourceError(
                f"SourceProxy({self._source_id!r}) has no data: the original "
                f"{self._expected_class_name or 'source'} is not available; attach it with "
                "bind(source)"
            )
        return self._delegate

    # Identity and schema (no data needed) ----------------------------------------------------
    def content_hash(self) -> ContentHash:
        return self._content_hash

    def pipeline_hash(self) -> ContentHash:
        return self._pipeline_hash

    def output_schema(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[Schema, Schema]:
        if ColumnConfig.handle_config(columns, all_info) == ColumnConfig():
            return self._schemas
        return self.stream.output_schema(columns, all_info)

    def keys(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if ColumnConfig.handle_config(columns, all_info) == ColumnConfig():
            return tuple(self._schemas[0]), tuple(self._schemas[1])
        return self.stream.keys(columns, all_info)

    def resolve_field(self, record_id: str, field_name: str) -> Any:
        """The bound source's ``resolve_field``."""
        resolve = getattr(self.stream, "resolve_field", None)
        if resolve is None:
            raise UnboundSourceError(
                f"the source bound to SourceProxy({self._source_id!r}) cannot resolve fields"
            )
        return resolve(record_id, field_name)
