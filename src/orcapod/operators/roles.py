"""``TagsToPacket`` / ``PacketToTags``: move columns between the tag and the packet.

A function pod reads packet columns only; ``stream.tags_to_packet("session")`` makes a tag's
value readable by a pod (the column stays in every row, now as data). ``packet_to_tags`` is
the inverse, e.g. to ``group_by`` or ``join`` on a value that was computed.

``TagsToPacket(columns, strict=True)`` / ``PacketToTags(columns, strict=True)`` (a single
name is accepted too):

* The moved columns keep their names, types and values. They go after the columns already in
  their new role, in the input's order (a tag moved to the packet comes after the existing
  packet columns). Nothing else moves; system tags pass through unchanged (name-preserving),
  and so do meta columns and ``_context_key``.
* ``strict=True`` (default): naming a column that is not a tag (resp. packet) column of the
  input is an ``InputValidationError`` naming it; ``strict=False`` ignores such names. A
  stream needs at least one packet column, so moving every packet column to the tags is an
  error; moving every tag column to the packet is fine.

Source info (a decision): a tag has no per-column provenance of its own — which source rows a
row came from is recorded once per row, in its system tags. So

* a tag moved into the packet gets an **empty (null)** ``_source_<c>``: its value is a key,
  not data read from a source column, and the row's provenance is still in its system tags,
  which are kept;
* a packet column moved into the tags **drops** its ``_source_<c>`` (tags carry no source
  info); moving it back gives a null one.

Computing is a zero-copy ``select`` of the input table plus one all-null column per tag moved
into the packet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa

from orcapod.errors import InputValidationError
from orcapod.operators.base import InputInfo, Operator
from orcapod.operators.columns import _known, _names
from orcapod.operators.layout import StreamLayout
from orcapod.types.columns import source_column

__all__ = ["PacketToTags", "TagsToPacket"]


class _Move(Operator):
    """Shared base: configuration, identity and the column gathering."""

    def __init__(self, columns: str | Iterable[str], strict: bool = True) -> None:
        self.columns = _names(columns, type(self).__name__)
        self.strict = bool(strict)

    def parameters(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "strict": self.strict}

    def identity_structure(self) -> Any:
        return {
            "operator": type(self).__name__,
            "parameters": {"columns": sorted(set(self.columns)), "strict": self.strict},
        }

    def _compute(
        self, inputs: Sequence[InputInfo], tables: Sequence[pa.Table], layout: StreamLayout
    ) -> pa.Table:
        table = tables[0]
        have = set(table.column_names)
        fields, arrays = [], []
        for name in layout.column_names:
            if name in have:
                fields.append(table.schema.field(name))
                arrays.append(table.column(name))
            else:  # the source info of a tag moved into the packet
                fields.append(pa.field(name, pa.large_string()))
                arrays.append(pa.chunked_array([pa.nulls(table.num_rows, pa.large_string())]))
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


class TagsToPacket(_Move):
    """Move user tag columns into the packet (their source info is null)."""

    def _predict(self, inputs: Sequence[InputInfo]) -> StreamLayout:
        layout = inputs[0].layout
        name = type(self).__name__
        moved = _known(name, self.columns, list(layout.tags), "tag", self.strict)
        moving = [c for c in layout.tags if c in moved]
        return StreamLayout.build(
            {c: tp for c, tp in layout.tags.items() if c not in moved},
            layout.system_tags,
            {**layout.packets, **{c: layout.tags[c] for c in moving}},
            {**layout.sources, **{source_column(c): str | None for c in moving}},
            layout.meta,
            layout.context,
        )


class PacketToTags(_Move):
    """Move packet columns into the tags (their source info is dropped)."""

    def _predict(self, inputs: Sequence[InputInfo]) -> StreamLayout:
        layout = inputs[0].layout
        name = type(self).__name__
        moved = _known(name, self.columns, list(layout.packets), "packet", self.strict)
        packets = {c: tp for c, tp in layout.packets.items() if c not in moved}
        if not packets:
            raise InputValidationError(
                f"{name} would leave no packet column (input packet columns: "
                f"{list(layout.packets)}); a stream needs at least one, so keep one in the packet"
            )
        return StreamLayout.build(
            {**layout.tags, **{c: tp for c, tp in layout.packets.items() if c in moved}},
            layout.system_tags,
            packets,
            {source_column(c): layout.sources[source_column(c)] for c in packets},
            layout.meta,
            layout.context,
        )
