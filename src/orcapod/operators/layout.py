"""``StreamLayout``: every column of a stream, by role, with Python types — without data.

Operators predict their output from their inputs' layouts and build output tables in layout
order, so the prediction and the computed stream agree by construction. A layout lists:

* ``tags`` — user tag columns; ``system_tags`` — ``_tag_*`` columns (table order);
* ``packets`` — user packet columns; ``sources`` — ``_source_<c>`` for **every** packet column,
  in packet order (a packet column without source info gets an all-null ``_source_<c>`` when an
  operator reads its input, typed ``str | None``);
* ``meta`` — ``__*`` columns (table order); ``context`` — whether ``_context_key`` is a column.

The table of an operator's output has its columns in exactly that order, and ``keys`` /
``schemas`` mirror ``ArrowTableStream``'s views of such a table (user tags, then system tags;
user packets, then source info, meta, context and the optional content-hash column).

Nullability follows the data (``orcapod.data.conversion.table_schema``): a column is
``T | None`` when it holds nulls. A prediction cannot know which rows a filter or join will
drop, so a predicted ``T | None`` is an upper bound: the computed table of an operator that
removes rows (``Join``, ``SemiJoin``, ``PolarsFilter``, ``Batch(drop_partial_batch=True)``) may
hold no nulls any more and then reads back as ``T``. Operator streams always report the
prediction, so a stream's schema never changes when it is computed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from orcapod.data.conversion import table_schema
from orcapod.types import ColumnConfig, Schema
from orcapod.types.columns import (
    CONTEXT_KEY,
    META_PREFIX,
    SOURCE_PREFIX,
    SYSTEM_TAG_PREFIX,
    source_column,
)

__all__ = ["FULL_INFO", "StreamLayout", "layout_from_table", "normalise_table"]

# Every hidden column except the per-row content hash (which would hash every packet).
FULL_INFO = ColumnConfig(meta=True, context=True, source=True, system_tags=True)


def _schema(items: Mapping[str, Any] | Sequence[tuple[str, Any]]) -> Schema:
    return Schema(dict(items))


@dataclass(frozen=True)
class StreamLayout:
    """Column roles and Python types of a stream (see module docstring)."""

    tags: Schema
    system_tags: Schema
    packets: Schema
    sources: Schema
    meta: Schema = field(default_factory=Schema)
    context: bool = False

    @classmethod
    def build(
        cls,
        tags: Mapping[str, Any],
        system_tags: Mapping[str, Any],
        packets: Mapping[str, Any],
        sources: Mapping[str, Any],
        meta: Mapping[str, Any] | None = None,
        context: bool = False,
    ) -> StreamLayout:
        return cls(
            _schema(tags),
            _schema(system_tags),
            _schema(packets),
            _schema(sources),
            _schema(meta or {}),
            context,
        )

    @property
    def column_names(self) -> list[str]:
        """Every column, in the order operator output tables use."""
        names = [*self.tags, *self.system_tags, *self.packets, *self.sources, *self.meta]
        if self.context:
            names.append(CONTEXT_KEY)
        return names

    @property
    def user_columns(self) -> list[str]:
        return [*self.tags, *self.packets]

    def type_of(self, name: str) -> Any:
        for part in (self.tags, self.system_tags, self.packets, self.sources, self.meta):
            if name in part:
                return part[name]
        if name == CONTEXT_KEY and self.context:
            return str
        raise KeyError(name)

    def keys(self, config: ColumnConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
        tags = [*self.tags, *(self.system_tags if config.system_tags else ())]
        packets = list(self.packets)
        if config.source:
            packets += list(self.sources)
        if config.meta:
            packets += [c for c in self.meta if config.includes_meta(c)]
        if config.context:
            packets.append(CONTEXT_KEY)
        hash_col = config.content_hash_column()
        if hash_col is not None:
            packets.append(hash_col)
        return tuple(tags), tuple(packets)

    def schemas(self, config: ColumnConfig) -> tuple[Schema, Schema]:
        tag_keys, packet_keys = self.keys(config)
        hash_col = config.content_hash_column()
        tag_schema = {k: self.type_of(k) for k in tag_keys}
        packet_schema = {
            k: (str if k in (hash_col, CONTEXT_KEY) else self.type_of(k)) for k in packet_keys
        }
        return Schema(tag_schema), Schema(packet_schema)


def layout_from_table(
    table: pa.Table, tag_columns: Sequence[str], types: Mapping[str, Any] | None = None
) -> StreamLayout:
    """Layout of a full stream table (hidden columns included); the columns' types are
    ``types`` when given, else read from the table (nullability from the data)."""
    types = table_schema(table) if types is None else types
    tags = {c: types[c] for c in tag_columns}
    system_tags: dict[str, Any] = {}
    packets: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for name in table.column_names:
        if name in tags or name == CONTEXT_KEY or name.startswith(SOURCE_PREFIX):
            continue
        if name.startswith(SYSTEM_TAG_PREFIX):
            system_tags[name] = types[name]
        elif name.startswith(META_PREFIX):
            meta[name] = types[name]
        else:
            packets[name] = types[name]
    sources = {source_column(c): types.get(source_column(c), str | None) for c in packets}
    return StreamLayout.build(
        tags, system_tags, packets, sources, meta, CONTEXT_KEY in table.column_names
    )


def normalise_table(table: pa.Table, layout: StreamLayout) -> pa.Table:
    """``table`` with its columns in layout order, missing source info filled with nulls."""
    have = set(table.column_names)
    n = table.num_rows
    for name in layout.sources:
        if name not in have:
            table = table.append_column(
                pa.field(name, pa.large_string()), pa.nulls(n, type=pa.large_string())
            )
    names = layout.column_names
    if table.column_names != names:
        table = table.select(names)
    return table
