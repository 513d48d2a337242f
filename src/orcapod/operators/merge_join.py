"""``MergeJoin``: binary inner join that merges same-named packet columns into sorted lists.

Everything ``Join`` does (``orcapod.operators.join``: keys, hidden columns, system-tag
suffixes, column and row order; inputs without a shared tag column need ``cross=True``)
applies, except that a packet column present in
both inputs is allowed when its type is identical on both sides (``int`` and ``int | None``
count as identical) and becomes ``list[T]`` holding the two values **sorted per row**; its
source info ``_source_<c>`` becomes the matching ``list[str]``, reordered the same way. A
differing type is an ``InputValidationError`` naming the column.

Sorting, vectorised over whole columns (one compare-and-swap per merged column): ascending
for types Arrow can order (numbers, strings, bytes, booleans, dates and times, decimals);
other types (lists, structs, maps, ``Path``) by their row hash — an arbitrary but fixed order.
A null sorts after every value (it never raises). Equal values are ordered
by their source info, so the lists never depend on argument order and ``MergeJoin(A, B)``
equals ``MergeJoin(B, A)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod._lazy import pc
from orcapod.errors import InputValidationError
from orcapod.operators.base import InputInfo, Operator
from orcapod.operators.join import assemble_join, plan_join
from orcapod.operators.layout import StreamLayout
from orcapod.operators.system_tags import orderable

__all__ = ["MergeJoin"]


def _array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _pairs_to_lists(first: pa.Array, second: pa.Array) -> pa.Array:
    """Row ``i`` -> ``[first[i], second[i]]`` as a ``large_list`` (no Python loop)."""
    n = len(first)
    interleave = np.empty(2 * n, dtype=np.int64)
    interleave[0::2] = np.arange(n)
    interleave[1::2] = np.arange(n) + n
    values = pa.concat_arrays([first, second]).take(pa.array(interleave, pa.int64()))
    offsets = pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int64))
    return pa.LargeListArray.from_arrays(offsets, values)


def merge_sorted(
    left: pa.ChunkedArray,
    right: pa.ChunkedArray,
    left_source: pa.ChunkedArray,
    right_source: pa.ChunkedArray,
) -> tuple[pa.Array, pa.Array]:
    """Per row, the two values as a sorted list and their source info in the same order."""
    a, b = _array(left), _array(right)
    if b.type != a.type:
        b = pc.cast(b, a.type)
    sa, sb = _array(left_source), _array(right_source)
    ka, kb = orderable(a), orderable(b)
    a_null, b_null = pc.is_null(a), pc.is_null(b)
    b_less = pc.fill_null(pc.less(kb, ka), False)
    equal = pc.or_(pc.fill_null(pc.equal(kb, ka), False), pc.and_(a_null, b_null))
    source_less = pc.fill_null(pc.less(pc.fill_null(sb, ""), pc.fill_null(sa, "")), False)
    swap = pc.or_(
        pc.or_(pc.and_(a_null, pc.invert(b_null)), b_less),
        pc.and_(equal, source_less),
    )
    values = _pairs_to_lists(pc.if_else(swap, b, a), pc.if_else(swap, a, b))
    sources = _pairs_to_lists(pc.if_else(swap, sb, sa), pc.if_else(swap, sa, sb))
    return values, sources


class MergeJoin(Operator):
    """Binary inner join; same-named packet columns become sorted ``list[T]`` (commutative)."""

    is_commutative = True
    min_inputs = 2
    max_inputs = 2

    def __init__(self, cross: bool = False) -> None:
        if not isinstance(cross, bool):
            raise InputValidationError(f"MergeJoin: cross must be True or False, got {cross!r}")
        self.cross = cross

    def parameters(self) -> dict[str, Any]:
        return {"cross": True} if self.cross else {}

    def _predict(self, inputs: Sequence[InputInfo]) -> StreamLayout:
        return plan_join(type(self).__name__, inputs, merge=True, cross=self.cross).layout

    def _compute(
        self, inputs: Sequence[InputInfo], tables: Sequence[pa.Table], layout: StreamLayout
    ) -> pa.Table:
        plan = plan_join(type(self).__name__, inputs, merge=True, cross=self.cross)
        return assemble_join(plan, inputs, tables, merger=merge_sorted)
