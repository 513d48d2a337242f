"""Column operators: select, drop and rename tag or packet columns.

All six are one projection (``_project``, computed by ``_compute_projection``): each decides
which user tag and packet columns survive and under which names, and the projection carries
the hidden columns along —

* system tags always pass through unchanged (name-preserving);
* a packet column's source info ``_source_<c>`` follows it: dropped with it, renamed with it
  (the provenance text is kept as is, so it still names the original source column);
* meta columns (``__*``) and ``_context_key`` pass through.

Decisions:

* Output columns keep the input's column order (not the order the names were given in), so
  ``SelectTagColumns(["a", "b"])`` and ``SelectTagColumns(["b", "a"])`` are the same operator
  and have the same identity.
* ``strict=True`` (default): naming a column that is not a tag (resp. packet) column of the
  input is an ``InputValidationError`` naming it; ``strict=False`` ignores such names.
* A stream needs at least one packet column, so selecting or dropping every packet column is
  an error. Dropping every tag column is fine.
* ``MapTags`` / ``MapPackets(name_map, drop_unmapped=False)``: every key must be a tag (resp.
  packet) column of the input (there is no ``strict`` switch: renaming a column that is not
  there is always a mistake); new names must be valid user names (no leading ``_``) and must
  not collide with each other or with any remaining column. Swaps (``{"a": "b", "b": "a"}``)
  are fine. ``drop_unmapped=True`` keeps only the mapped columns of that kind. The fluent
  ``stream.map_tags`` / ``map_packets`` use the same default (``False``) as the classes.
* Computing is a zero-copy ``select`` + ``rename_columns`` of the input table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from orcapod.errors import InputValidationError
from orcapod.operators.base import InputInfo, Operator
from orcapod.operators.layout import StreamLayout
from orcapod.types.columns import CONTEXT_KEY, DATAGRAM_PREFIX, source_column

__all__ = [
    "DropPacketColumns",
    "DropTagColumns",
    "MapPackets",
    "MapTags",
    "SelectPacketColumns",
    "SelectTagColumns",
]


def _names(columns: str | Iterable[str], op_name: str) -> tuple[str, ...]:
    names = (columns,) if isinstance(columns, str) else tuple(columns)
    bad = [c for c in names if not isinstance(c, str) or not c]
    if bad:
        raise InputValidationError(f"{op_name}: column names must be non-empty strings: {bad}")
    return names


def _project(
    layout: StreamLayout, tags: Mapping[str, str], packets: Mapping[str, str], op_name: str
) -> tuple[StreamLayout, list[str], list[str]]:
    """Output layout plus (input names, output names) for a select+rename of the input.

    ``tags`` / ``packets`` map each surviving user column to its output name (input order).
    """
    if not packets:
        raise InputValidationError(
            f"{op_name} would leave no packet column (input packet columns: "
            f"{list(layout.packets)}); a stream needs at least one"
        )
    out_names = [*tags.values(), *packets.values()]
    dupes = sorted({n for n in out_names if out_names.count(n) > 1})
    if dupes:
        raise InputValidationError(
            f"{op_name}: renaming makes several columns share the names {dupes}; choose "
            "distinct names"
        )
    hidden = [n for n in out_names if n.startswith(DATAGRAM_PREFIX)]
    if hidden:
        raise InputValidationError(
            f"{op_name}: new names {hidden} start with '_', which is reserved for orcapod's "
            "hidden columns; choose other names"
        )
    new_layout = StreamLayout.build(
        {new: layout.tags[old] for old, new in tags.items()},
        layout.system_tags,
        {new: layout.packets[old] for old, new in packets.items()},
        {source_column(new): layout.sources[source_column(old)] for old, new in packets.items()},
        layout.meta,
        layout.context,
    )
    select = [
        *tags,
        *layout.system_tags,
        *packets,
        *(source_column(c) for c in packets),
        *layout.meta,
        *([CONTEXT_KEY] if layout.context else []),
    ]
    return new_layout, select, new_layout.column_names


def _known(
    op_name: str,
    names: Sequence[str],
    available: Sequence[str],
    kind: str,
    strict: bool,
    fix: str = "fix the names or pass strict=False to ignore missing ones",
) -> set[str]:
    missing = [c for c in names if c not in available]
    if missing and strict:
        raise InputValidationError(
            f"{op_name}: {missing} are not {kind} columns of the input ({kind} columns: "
            f"{list(available)}); {fix}"
        )
    return {c for c in names if c in available}


def _compute_projection(
    plan: tuple[StreamLayout, list[str], list[str]], table: pa.Table
) -> pa.Table:
    _, select, names = plan
    return table.select(select).rename_columns(names)


class _ColumnChoice(Operator):
    """Shared base of the select/drop operators."""

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

    def _plan(self, layout: StreamLayout) -> tuple[StreamLayout, list[str], list[str]]:
        raise NotImplementedError

    def _predict(self, inputs: Sequence[InputInfo]) -> StreamLayout:
        return self._plan(inputs[0].layout)[0]

    def _compute(
        self, inputs: Sequence[InputInfo], tables: Sequence[pa.Table], layout: StreamLayout
    ) -> pa.Table:
        return _compute_projection(self._plan(inputs[0].layout), tables[0])


def _same(names: Iterable[str]) -> dict[str, str]:
    return {n: n for n in names}


class SelectTagColumns(_ColumnChoice):
    """Keep only the named user tag columns (system tags always stay)."""

    def _plan(self, layout: StreamLayout) -> tuple[StreamLayout, list[str], list[str]]:
        keep = _known(type(self).__name__, self.columns, list(layout.tags), "tag", self.strict)
        tags = _same(c for c in layout.tags if c in keep)
        return _project(layout, tags, _same(layout.packets), type(self).__name__)


class DropTagColumns(_ColumnChoice):
    """Drop the named user tag columns (system tags always stay)."""

    def _plan(self, layout: StreamLayout) -> tuple[StreamLayout, list[str], list[str]]:
        drop = _known(type(self).__name__, self.columns, list(layout.tags), "tag", self.strict)
        tags = _same(c for c in layout.tags if c not in drop)
        return _project(layout, tags, _same(layout.packets), type(self).__name__)


class SelectPacketColumns(_ColumnChoice):
    """Keep only the named packet columns (and their source info)."""

    def _plan(self, layout: StreamLayout) -> tuple[StreamLayout, list[str], list[str]]:
        keep = _known(
            type(self).__name__, self.columns, list(layout.packets), "packet", self.strict
        )
        packets = _same(c for c in layout.packets if c in keep)
        return _project(layout, _same(layout.tags), packets, type(self).__name__)


class DropPacketColumns(_ColumnChoice):
    """Drop the named packet columns and their source info."""

    def _plan(self, layout: StreamLayout) -> tuple[StreamLayout, list[str], list[str]]:
        drop = _known(
            type(self).__name__, self.columns, list(layout.packets), "packet", self.strict
        )
        packets = _same(c for c in layout.packets if c not in drop)
        return _project(layout, _same(layout.tags), packets, type(self).__name__)


class _Rename(Operator):
    """Shared base of the rename operators."""

    _kind = ""

    def __init__(self, name_map: Mapping[str, str], drop_unmapped: bool = False) -> None:
        name = type(self).__name__
        mapping = name_map
        if not isinstance(mapping, Mapping):
            raise InputValidationError(
                f"{name}: mapping must be a dict of old name -> new name, got "
                f"{type(mapping).__name__}"
            )
        bad = [
            (k, v)
            for k, v in mapping.items()
            if not isinstance(k, str) or not isinstance(v, str) or not k or not v
        ]
        if bad:
            raise InputValidationError(f"{name}: mapping entries must be non-empty strings: {bad}")
        self.mapping = dict(mapping)
        self.drop_unmapped = bool(drop_unmapped)

    @property
    def name_map(self) -> dict[str, str]:
        return dict(self.mapping)

    def parameters(self) -> dict[str, Any]:
        # Stored as "mapping": the key is part of the operator's identity (and of saved
        # pipelines), which predates the ``name_map`` keyword.
        return {"mapping": dict(self.mapping), "drop_unmapped": self.drop_unmapped}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Operator:
        params = dict(config.get("config", {}))
        return cls(params["mapping"], bool(params.get("drop_unmapped", False)))

    def _renamed(self, available: Sequence[str]) -> dict[str, str]:
        _known(
            type(self).__name__,
            list(self.mapping),
            available,
            self._kind,
            strict=True,
            fix=f"every key of the mapping must be a {self._kind} column; fix the names",
        )
        return {
            c: self.mapping.get(c, c)
            for c in available
            if c in self.mapping or not self.drop_unmapped
        }

    def _plan(self, layout: StreamLayout) -> tuple[StreamLayout, list[str], list[str]]:
        raise NotImplementedError

    def _predict(self, inputs: Sequence[InputInfo]) -> StreamLayout:
        return self._plan(inputs[0].layout)[0]

    def _compute(
        self, inputs: Sequence[InputInfo], tables: Sequence[pa.Table], layout: StreamLayout
    ) -> pa.Table:
        return _compute_projection(self._plan(inputs[0].layout), tables[0])


class MapTags(_Rename):
    """Rename user tag columns (``{old: new}``)."""

    _kind = "tag"

    def _plan(self, layout: StreamLayout) -> tuple[StreamLayout, list[str], list[str]]:
        tags = self._renamed(list(layout.tags))
        return _project(layout, tags, _same(layout.packets), type(self).__name__)


class MapPackets(_Rename):
    """Rename packet columns (``{old: new}``); their source info follows."""

    _kind = "packet"

    def _plan(self, layout: StreamLayout) -> tuple[StreamLayout, list[str], list[str]]:
        packets = self._renamed(list(layout.packets))
        return _project(layout, _same(layout.tags), packets, type(self).__name__)
