"""The fluent stream shortcuts (``stream.join(other)``, ``stream.batch(4)``, …).

``orcapod.streams`` is a lower layer, so it cannot import operators; instead this module
registers one factory per shortcut with ``orcapod.streams.base.register_operator`` when
``orcapod.operators`` is imported. Each factory builds the operator and applies it (so the
call is validated and recorded like any other application) and accepts ``label=``.

Column shortcuts take names as varargs or one list: ``s.select_tag_columns("a", "b")`` and
``s.select_tag_columns(["a", "b"])`` are the same. ``map_tags`` / ``map_packets`` default to
``drop_unmapped=False``, like the classes, so a shortcut never silently drops the columns
a mapping does not name. ``polars_filter(*predicates, label=None, **constraints)`` passes the
other keyword arguments as equality constraints; ``label`` names the application like
everywhere else (to filter on a column called ``label``, use ``pl.col("label") == value``).
``cross_join(*others)`` is ``Join(cross=True)``; ``group_by(*columns)``,
``tags_to_packet(*columns)`` and ``packet_to_tags(*columns)`` take names like the column
shortcuts. polars appears here in annotations only, so registering the shortcuts does not
import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from orcapod.operators.base import OperatorStream
from orcapod.operators.batch import Batch
from orcapod.operators.columns import (
    DropPacketColumns,
    DropTagColumns,
    MapPackets,
    MapTags,
    SelectPacketColumns,
    SelectTagColumns,
)
from orcapod.operators.filters import PolarsFilter
from orcapod.operators.group_by import GroupBy
from orcapod.operators.join import Join
from orcapod.operators.merge_join import MergeJoin
from orcapod.operators.roles import PacketToTags, TagsToPacket
from orcapod.operators.semi_join import SemiJoin
from orcapod.streams.base import StreamProtocol, register_operator

if TYPE_CHECKING:
    import polars as pl

__all__ = ["register_fluent_operators"]


def _column_names(columns: tuple[Any, ...]) -> str | Iterable[str]:
    if len(columns) == 1 and not isinstance(columns[0], str):
        return tuple(columns[0])
    return columns


def _join(
    stream: StreamProtocol, *others: StreamProtocol, label: str | None = None
) -> OperatorStream:
    return Join()(stream, *others, label=label)


def _semi_join(
    stream: StreamProtocol, other: StreamProtocol, label: str | None = None
) -> OperatorStream:
    return SemiJoin()(stream, other, label=label)


def _merge_join(
    stream: StreamProtocol, other: StreamProtocol, label: str | None = None
) -> OperatorStream:
    return MergeJoin()(stream, other, label=label)


def _batch(
    stream: StreamProtocol,
    batch_size: int = 0,
    drop_partial_batch: bool = False,
    label: str | None = None,
) -> OperatorStream:
    return Batch(batch_size, drop_partial_batch)(stream, label=label)


def _select_tag_columns(
    stream: StreamProtocol, *columns: Any, strict: bool = True, label: str | None = None
) -> OperatorStream:
    return SelectTagColumns(_column_names(columns), strict)(stream, label=label)


def _select_packet_columns(
    stream: StreamProtocol, *columns: Any, strict: bool = True, label: str | None = None
) -> OperatorStream:
    return SelectPacketColumns(_column_names(columns), strict)(stream, label=label)


def _drop_tag_columns(
    stream: StreamProtocol, *columns: Any, strict: bool = True, label: str | None = None
) -> OperatorStream:
    return DropTagColumns(_column_names(columns), strict)(stream, label=label)


def _drop_packet_columns(
    stream: StreamProtocol, *columns: Any, strict: bool = True, label: str | None = None
) -> OperatorStream:
    return DropPacketColumns(_column_names(columns), strict)(stream, label=label)


def _map_tags(
    stream: StreamProtocol,
    mapping: Mapping[str, str],
    drop_unmapped: bool = False,
    label: str | None = None,
) -> OperatorStream:
    return MapTags(mapping, drop_unmapped)(stream, label=label)


def _map_packets(
    stream: StreamProtocol,
    mapping: Mapping[str, str],
    drop_unmapped: bool = False,
    label: str | None = None,
) -> OperatorStream:
    return MapPackets(mapping, drop_unmapped)(stream, label=label)


def _polars_filter(
    stream: StreamProtocol, *predicates: pl.Expr, label: str | None = None, **constraints: Any
) -> OperatorStream:
    return PolarsFilter(predicates, constraints or None)(stream, label=label)


def _cross_join(
    stream: StreamProtocol, *others: StreamProtocol, label: str | None = None
) -> OperatorStream:
    return Join(cross=True)(stream, *others, label=label)


def _group_by(stream: StreamProtocol, *columns: Any, label: str | None = None) -> OperatorStream:
    return GroupBy(_column_names(columns))(stream, label=label)


def _tags_to_packet(
    stream: StreamProtocol, *columns: Any, strict: bool = True, label: str | None = None
) -> OperatorStream:
    return TagsToPacket(_column_names(columns), strict)(stream, label=label)


def _packet_to_tags(
    stream: StreamProtocol, *columns: Any, strict: bool = True, label: str | None = None
) -> OperatorStream:
    return PacketToTags(_column_names(columns), strict)(stream, label=label)


def register_fluent_operators() -> None:
    """Provide every fluent shortcut on ``StreamBase`` (idempotent)."""
    register_operator("join", _join)
    register_operator("semi_join", _semi_join)
    register_operator("merge_join", _merge_join)
    register_operator("batch", _batch)
    register_operator("select_tag_columns", _select_tag_columns)
    register_operator("select_packet_columns", _select_packet_columns)
    register_operator("drop_tag_columns", _drop_tag_columns)
    register_operator("drop_packet_columns", _drop_packet_columns)
    register_operator("map_tags", _map_tags)
    register_operator("map_packets", _map_packets)
    register_operator("polars_filter", _polars_filter)
    register_operator("cross_join", _cross_join)
    register_operator("group_by", _group_by)
    register_operator("tags_to_packet", _tags_to_packet)
    register_operator("packet_to_tags", _packet_to_tags)
