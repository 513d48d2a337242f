"""``DerivedSource``: a node's stored results, read as a new source.

``node.as_source()`` returns one; ``DerivedSource(origin)`` works for any ``origin`` that
offers ``get_all_records(all_info=...)``, ``content_hash()``, ``keys()`` and
``output_schema()`` (function and operator nodes do). It depends only on that interface, not on
the node classes, so it lives with the other sources. Reading it is a query of the node's
records (``origin.get_all_records(all_info=True)``), never a recomputation: before the origin
has run (or when nothing is stored) it is empty, with the origin's schema.

Identity: ``content_hash = hash({"kind": "DerivedSource", "origin": origin.content_hash(),
"source_id": …})`` — the origin's content hash identifies the complete result set, so the
derived source is its own root of identity without hashing the stored rows; its pipeline
hash is that of a root source, ``(tag_schema, packet_schema)``. The default ``source_id`` is
``"derived:<first 16 hex digits of the origin's content hash>"``.

Rows keep the provenance they were stored with: user tags, system tags (``_tag_*``), packet
columns and their source info (``_source_<col>``); meta columns (``__*``), the context column
and the input packets' source info recorded by the origin are dropped. The stored rows are
read once, on first access, and then fixed (streams are immutable); call ``as_source()``
again to see rows stored later.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from orcapod.data.conversion import schema_to_arrow
from orcapod.errors import InputValidationError
from orcapod.hashing import hash_object
from orcapod.streams import ArrowTableStream
from orcapod.streams.arrow_table_stream import schema_pipeline_hash
from orcapod.streams.base import ColumnsArg, StreamBase
from orcapod.types import ContentHash, Schema
from orcapod.types.columns import SYSTEM_TAG_PREFIX, source_column

__all__ = ["DerivedSource"]


class DerivedSource(StreamBase):
    """The stored results of ``origin`` (a function or operator node) as a source."""

    def __init__(self, origin: Any, source_id: str | None = None) -> None:
        for method in ("get_all_records", "content_hash", "keys", "output_schema"):
            if not callable(getattr(origin, method, None)):
                raise InputValidationError(
                    f"DerivedSource needs a function or operator node, got "
                    f"{type(origin).__name__} (it has no {method}())"
                )
        self._origin = origin
        origin_hash = origin.content_hash()
        self._source_id = source_id or f"derived:{origin_hash.to_hex(16)}"
        self._content_hash = hash_object(
            {
                "kind": "DerivedSource",
                "origin": origin_hash.to_string(),
                "source_id": self._source_id,
            }
        )
        self._stream: ArrowTableStream | None = None

    @property
    def origin(self) -> Any:
        return self._origin

    @property
    def source_id(self) -> str:
        return self._source_id

    @property
    def origin_label(self) -> str:
        return str(getattr(self._origin, "label", type(self._origin).__name__))

    @property
    def label(self) -> str:
        return f"{self.origin_label}_source"

    @property
    def upstreams(self) -> tuple[()]:
        return ()

    def __repr__(self) -> str:
        return f"DerivedSource(source_id={self._source_id!r}, origin={self.origin_label!r})"

    @property
    def stream(self) -> ArrowTableStream:
        """The stored rows (read on first use)."""
        if self._stream is None:
            self._stream = ArrowTableStream(
                self._read(),
                self._origin.keys()[0],
                identity=self._content_hash,
                pipeline_identity=self.pipeline_hash(),
                label=self.label,
            )
        return self._stream

    def _read(self) -> pa.Table:
        tag_keys, packet_keys = self._origin.keys()
        stored = self._origin.get_all_records(all_info=True)
        if stored is None or stored.num_rows == 0:
            tag_schema, packet_schema = self._origin.output_schema()
            return schema_to_arrow({**tag_schema, **packet_schema}).empty_table()
        present = set(stored.column_names)
        missing = [c for c in (*tag_keys, *packet_keys) if c not in present]
        if missing:
            raise InputValidationError(
                f"the stored records of {self.origin_label!r} lack columns {missing}; they "
                "were written by a different version of this node"
            )
        system = [c for c in stored.column_names if c.startswith(SYSTEM_TAG_PREFIX)]
        sources = [source_column(c) for c in packet_keys if source_column(c) in present]
        return stored.select([*tag_keys, *system, *packet_keys, *sources])

    # Identity ------------------------------------------------------------------------------
    def content_hash(self) -> ContentHash:
        return self._content_hash

    def pipeline_hash(self) -> ContentHash:
        return schema_pipeline_hash(*self._origin.output_schema())

    # Stream surface --------------------------------------------------------------------------

    def output_schema(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[Schema, Schema]:
        if columns is None and not all_info:
            tag_schema, packet_schema = self._origin.output_schema()
            return Schema(tag_schema), Schema(packet_schema)
        return self.stream.output_schema(columns, all_info)
