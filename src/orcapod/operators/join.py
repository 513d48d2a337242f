"""``Join``: N-ary inner join on shared tag columns (commutative), and the shared join plan.

Approach. Inputs are put in canonical order (``system_tags.canonical_order``: by pipeline
hash). A ``JoinPlan`` — built from the inputs' layouts and pipeline hashes only, so prediction
needs no data — fixes the output layout and every rename; computing it pairs row positions
with ``indices.inner_join_indices`` and gathers each input's columns once with ``take``.

Semantics and decisions:

* The join keys are the user tag columns present in two or more inputs; inputs are joined in
  canonical order, each on the tag columns it shares with the inputs before it.
* A cartesian product (every row with every row) must be asked for. By default the inputs
  must be *connected* by shared tag columns (each input shares a tag column with another,
  directly or through a chain of inputs: ``A(a), B(a, b), C(b)`` is fine); otherwise
  ``InputValidationError`` names each input's tags — a join with nothing in common is almost
  always a mistake that multiplies rows. ``Join(cross=True)`` (fluent: ``a.cross_join(b)``)
  allows it: unconnected inputs then join as a cartesian product. ``cross`` is part of the
  operator's identity only when true, so a default ``Join()`` keeps its identity.
* Shared tag columns must have the same Python type (``int`` vs ``int | None`` is fine,
  ``int`` vs ``str`` is an ``InputValidationError``); nulls never match, so a shared tag
  column is never ``T | None`` in the output. Its values come from the first input (canonical
  order) that has it.
* Packet columns must not collide, and no packet column may share a name with another
  input's tag column (``InputValidationError`` naming them; rename first with
  ``map_packets``). ``MergeJoin`` is the variant that merges colliding packet columns.
* Hidden columns: every input's system tags get the suffix ``::<pipeline hash 12>:<position>``
  (see ``system_tags``); source info (``_source_<c>``) is carried unchanged; meta columns
  (``__*``) pass through, and a meta column present in several inputs gets the same suffix as
  the system tags so none is lost; ``_context_key`` comes from the first input that has it.
* Column order: tags (first appearance in canonical order), then per input in canonical
  order its system tags, packets, source info and meta — so ``Join(A, B)`` and
  ``Join(B, A)`` give identical tables, hidden columns included.
* Row order: the first canonical input's row order, ties by the next input's, and so on
  (see ``indices``).
* One input: the input passes through unchanged (a unary use; system-tag names kept).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from orcapod.data.value_types import strip_optional
from orcapod.errors import InputValidationError
from orcapod.operators.base import InputInfo, Operator
from orcapod.operators.indices import inner_join_indices, is_identity, join_key, take_rows
from orcapod.operators.layout import StreamLayout
from orcapod.operators.system_tags import (
    canonical_order,
    join_suffix,
    sort_tied_groups,
    tie_groups,
)
from orcapod.types.columns import CONTEXT_KEY, SOURCE_PREFIX, source_column

__all__ = ["Join", "JoinPlan", "assemble_join", "layout_key", "plan_join"]

Merger = Callable[
    [pa.ChunkedArray, pa.ChunkedArray, pa.ChunkedArray, pa.ChunkedArray],
    tuple[pa.Array, pa.Array],
]


@dataclass(frozen=True)
class JoinPlan:
    """Everything about a join that follows from layouts and pipeline hashes alone."""

    layout: StreamLayout
    key_types: dict[str, Any]
    """Shared tag columns -> their Python type without ``None`` (the join keys)."""
    tag_owner: dict[str, int]
    """Output tag column -> canonical position of the input it is taken from."""
    renames: tuple[dict[str, str], ...]
    """Per canonical position: input column -> output name (only renamed columns)."""
    merged: tuple[str, ...]
    """Packet columns present in both inputs and merged into sorted lists (MergeJoin)."""
    ties: tuple[tuple[int, ...], ...]
    """Groups of canonical positions whose inputs share a pipeline hash."""
    context_owner: int | None


def layout_key(layout: StreamLayout) -> str:
    """Deterministic text of a layout (names, order, types), to order tied inputs."""
    return repr([(n, repr(layout.type_of(n))) for n in layout.column_names])


def _types_differ(a: Any, b: Any) -> bool:
    return bool(strip_optional(a) != strip_optional(b))


def _check_connected(op_name: str, layouts: Sequence[StreamLayout]) -> None:
    """Raise unless the inputs are connected by shared tag columns (see module docstring)."""
    group = list(range(len(layouts)))

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    owner: dict[str, int] = {}
    for pos, layout in enumerate(layouts):
        for name in layout.tags:
            if name in owner:
                group[root(pos)] = root(owner[name])
            else:
                owner[name] = pos
    if len({root(i) for i in range(len(layouts))}) > 1:
        tags = "; ".join(f"input {i}: {list(lay.tags)}" for i, lay in enumerate(layouts))
        untagged = [i for i, lay in enumerate(layouts) if not lay.tags]
        fix = (
            f"input {', '.join(map(str, untagged))} has no tag column: make a packet column "
            "the key with packet_to_tags(...)"
            if untagged
            else "Rename tags so they match (map_tags)"
        )
        raise InputValidationError(
            f"{op_name}: the inputs share no tag column to join on ({tags}), so every row "
            f"would pair with every row. {fix}, or ask for the cartesian product explicitly: "
            f"{op_name}(cross=True) / a.cross_join(b)"
        )


def plan_join(
    op_name: str, inputs: Sequence[InputInfo], *, merge: bool, cross: bool = False
) -> JoinPlan:
    """Validate a join of ``inputs`` and fix its output layout (see module docstring)."""
    if not cross:
        _check_connected(op_name, [i.layout for i in inputs])
    hashes = [i.pipeline_hash for i in inputs]
    order = canonical_order(hashes, tiebreak=lambda k: layout_key(inputs[k].layout))
    layouts = [inputs[i].layout for i in order]

    tag_types: dict[str, Any] = {}
    tag_owner: dict[str, int] = {}
    shared: set[str] = set()
    conflicts: list[str] = []
    for pos, layout in enumerate(layouts):
        for name, tp in layout.tags.items():
            if name not in tag_types:
                tag_types[name], tag_owner[name] = tp, pos
                continue
            shared.add(name)
            if _types_differ(tp, tag_types[name]):
                conflicts.append(
                    f"{name!r} is {tag_types[name]} in input {order[tag_owner[name]]} but "
                    f"{tp} in input {order[pos]}"
                )
    if conflicts:
        raise InputValidationError(
            f"{op_name}: shared tag columns have conflicting types: {'; '.join(conflicts)}. "
            "Cast or rename them (map_tags) so shared tags mean the same thing"
        )
    key_types = {name: strip_optional(tag_types[name]) for name in shared}

    packet_owner: dict[str, list[int]] = {}
    for pos, layout in enumerate(layouts):
        for name in layout.packets:
            packet_owner.setdefault(name, []).append(pos)
    colliding = {n: ps for n, ps in packet_owner.items() if len(ps) > 1}
    clash = sorted(set(packet_owner) & set(tag_types))
    if clash:
        raise InputValidationError(
            f"{op_name}: columns {clash} are a tag in one input and a packet column in "
            "another; rename one side (map_tags / map_packets) before joining"
        )
    merged: list[str] = []
    if colliding and not merge:
        detail = ", ".join(
            f"{n!r} (inputs {sorted(order[p] for p in ps)})" for n, ps in colliding.items()
        )
        raise InputValidationError(
            f"{op_name}: packet columns collide: {detail}. Rename them first (map_packets), "
            "or use MergeJoin to merge same-named columns into lists"
        )
    if colliding:
        bad = [
            f"{n!r}: {layouts[ps[0]].packets[n]} vs {layouts[ps[1]].packets[n]}"
            for n, ps in colliding.items()
            if _types_differ(layouts[ps[0]].packets[n], layouts[ps[1]].packets[n])
        ]
        if bad:
            raise InputValidationError(
                f"{op_name}: colliding packet columns must have identical types to merge: "
                f"{'; '.join(bad)}"
            )
        merged = list(colliding)

    meta_count: dict[str, int] = {}
    for layout in layouts:
        for name in layout.meta:
            meta_count[name] = meta_count.get(name, 0) + 1

    renames: list[dict[str, str]] = []
    system_tags: dict[str, Any] = {}
    packets: dict[str, Any] = {}
    sources: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    context_owner: int | None = None
    for pos, layout in enumerate(layouts):
        suffix = join_suffix(hashes[order[pos]], pos)
        rename = {name: name + suffix for name in layout.system_tags}
        rename.update({name: name + suffix for name in layout.meta if meta_count[name] > 1})
        renames.append(rename)
        for name, tp in layout.system_tags.items():
            system_tags[rename[name]] = tp
        for name, tp in layout.packets.items():
            if name in merged:
                packets.setdefault(name, list[strip_optional(tp)])  # type: ignore[misc]
                sources.setdefault(source_column(name), list[str])
            else:
                packets[name] = tp
                sources[source_column(name)] = layout.sources[source_column(name)]
        for name, tp in layout.meta.items():
            meta[rename.get(name, name)] = tp
        if layout.context and context_owner is None:
            context_owner = pos
    tags = {n: key_types.get(n, tp) for n, tp in tag_types.items()}
    out = StreamLayout.build(tags, system_tags, packets, sources, meta, context_owner is not None)
    return JoinPlan(
        layout=out,
        key_types=key_types,
        tag_owner=tag_owner,
        renames=tuple(renames),
        merged=tuple(merged),
        ties=tuple(tuple(g) for g in tie_groups(hashes, order)),
        context_owner=context_owner,
    )


def _chunked(values: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    return values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])


def assemble_join(
    plan: JoinPlan,
    inputs: Sequence[InputInfo],
    tables: Sequence[pa.Table],
    merger: Merger | None = None,
) -> pa.Table:
    """Compute a planned join: match rows, gather columns, rename, sort ties, merge."""
    order = canonical_order(
        [i.pipeline_hash for i in inputs],
        tiebreak=lambda k: layout_key(inputs[k].layout) + inputs[k].content_hash.to_string(),
    )
    layouts = [inputs[i].layout for i in order]
    ordered = [tables[i] for i in order]
    keys = [
        {
            name: join_key(t.column(name), plan.key_types[name])
            for name in lay.tags
            if name in plan.key_types
        }
        for t, lay in zip(ordered, layouts, strict=True)
    ]
    sizes = [t.num_rows for t in ordered]
    positions = inner_join_indices(keys, sizes)
    taken = [
        t if is_identity(p, t.num_rows) else take_rows(t, p)
        for t, p in zip(ordered, positions, strict=True)
    ]

    columns: dict[str, Any] = {
        name: taken[pos].column(name) for name, pos in plan.tag_owner.items()
    }
    pending: dict[str, list[tuple[Any, Any]]] = {}
    for pos, (table, layout) in enumerate(zip(taken, layouts, strict=True)):
        rename = plan.renames[pos]
        for name in table.column_names:
            if name in layout.tags:
                continue
            if name == CONTEXT_KEY:
                if pos == plan.context_owner:
                    columns[name] = table.column(name)
                continue
            if name in plan.merged:
                pending.setdefault(name, []).append(
                    (table.column(name), table.column(source_column(name)))
                )
                continue
            if name.startswith(SOURCE_PREFIX) and name[len(SOURCE_PREFIX) :] in plan.merged:
                continue
            columns[rename.get(name, name)] = table.column(name)

    if plan.ties:
        groups = []
        for tie in plan.ties:
            suffixed = [
                {
                    n: plan.renames[pos][n]
                    for n in [*layouts[pos].system_tags, *layouts[pos].meta]
                    if n in plan.renames[pos]
                }
                for pos in tie
            ]
            # compare in the first member's column order (source id before record id)
            common = [n for n in suffixed[0] if all(n in m for m in suffixed[1:])]
            groups.append([[m[n] for n in common] for m in suffixed])
        columns = sort_tied_groups(columns, groups)

    if merger is not None:  # plan_join(merge=False) never plans merged columns
        for name, pairs in pending.items():
            (left, left_src), (right, right_src) = pairs
            columns[name], columns[source_column(name)] = merger(left, right, left_src, right_src)

    names = plan.layout.column_names
    return pa.Table.from_arrays([_chunked(columns[n]) for n in names], names=names)


class Join(Operator):
    """Inner join of one or more streams on their shared tag columns (commutative).

    See the module docstring for keys, collisions, hidden columns and row order.
    """

    is_commutative = True
    min_inputs = 1
    max_inputs = None

    def __init__(self, cross: bool = False) -> None:
        if not isinstance(cross, bool):
            raise InputValidationError(f"Join: cross must be True or False, got {cross!r}")
        self.cross = cross

    def parameters(self) -> dict[str, Any]:
        return {"cross": True} if self.cross else {}

    def _plan(self, inputs: Sequence[InputInfo]) -> JoinPlan:
        return plan_join(type(self).__name__, inputs, merge=False, cross=self.cross)

    def _predict(self, inputs: Sequence[InputInfo]) -> StreamLayout:
        if len(inputs) == 1:
            return inputs[0].layout
        return self._plan(inputs).layout

    def _compute(
        self, inputs: Sequence[InputInfo], tables: Sequence[pa.Table], layout: StreamLayout
    ) -> pa.Table:
        if len(inputs) == 1:
            return tables[0]
        return assemble_join(self._plan(inputs), inputs, tables)
