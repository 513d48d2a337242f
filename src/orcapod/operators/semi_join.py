"""``SemiJoin``: keep the left stream's rows that have a match in the right stream (ordered).

* Match columns: every user column (tag or packet) the two streams share by name. Their
  types must agree (``T`` vs ``T | None`` is fine), otherwise ``InputValidationError``
  names them. Nulls never match.
* At least one column must be shared. Inputs with nothing in common are an
  ``InputValidationError`` naming each input's columns, as ``Join`` refuses inputs that share
  no tag column: a mistyped or differently named key would otherwise keep every left row (or
  none), turning the filter into a silent no-op. There is no opt-in to that reading; rename
  the key so it matches (``map_tags`` / ``map_packets``).
* The output keeps the left stream's layout exactly (columns, hidden columns, system-tag
  names) and its row order. The right stream contributes nothing but the filter.
* Nothing is stored on the operator instance: the shared columns are derived from the
  inputs' layouts at every application, so one ``SemiJoin`` can be reused freely.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from orcapod.data.value_types import strip_optional
from orcapod.errors import InputValidationError
from orcapod.operators.base import InputInfo, Operator
from orcapod.operators.indices import is_identity, join_key, semi_join_indices, take_rows
from orcapod.operators.layout import StreamLayout

__all__ = ["SemiJoin"]


def _shared_columns(name: str, left: StreamLayout, right: StreamLayout) -> dict[str, object]:
    right_types = {**right.tags, **right.packets}
    shared: dict[str, object] = {}
    conflicts: list[str] = []
    for col, tp in {**left.tags, **left.packets}.items():
        if col not in right_types:
            continue
        if strip_optional(tp) != strip_optional(right_types[col]):
            conflicts.append(f"{col!r}: {tp} (left) vs {right_types[col]} (right)")
        shared[col] = strip_optional(tp)
    if conflicts:
        raise InputValidationError(
            f"{name}: shared columns have conflicting types: {'; '.join(conflicts)}; cast or "
            "rename them so they can be matched"
        )
    if not shared:
        sides = "; ".join(
            f"{side}: tags {list(layout.tags)}, packets {list(layout.packets)}"
            for side, layout in (("left", left), ("right", right))
        )
        raise InputValidationError(
            f"{name}: the inputs share no column to match on ({sides}), so the filter would "
            "keep every left row. Rename columns so the key matches (map_tags / map_packets)"
        )
    return shared


class SemiJoin(Operator):
    """Rows of the first stream whose shared columns match a row of the second."""

    min_inputs = 2
    max_inputs = 2

    def _predict(self, inputs: Sequence[InputInfo]) -> StreamLayout:
        _shared_columns(type(self).__name__, inputs[0].layout, inputs[1].layout)
        return inputs[0].layout

    def _compute(
        self, inputs: Sequence[InputInfo], tables: Sequence[pa.Table], layout: StreamLayout
    ) -> pa.Table:
        shared = _shared_columns(type(self).__name__, inputs[0].layout, inputs[1].layout)
        left, right = tables
        positions = semi_join_indices(
            {c: join_key(left.column(c), tp) for c, tp in shared.items()},
            left.num_rows,
            {c: join_key(right.column(c), tp) for c, tp in shared.items()},
            right.num_rows,
        )
        return left if is_identity(positions, left.num_rows) else take_rows(left, positions)
