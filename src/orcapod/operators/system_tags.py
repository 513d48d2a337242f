"""System-tag naming and ordering for multi-input operators.

Unary operators keep system-tag names. ``Join`` and ``MergeJoin`` give every input a
*canonical position*: inputs are stably sorted by their pipeline hash string, and input ``k``
of that order has position ``k``. Each of its system-tag columns ``X`` becomes
``X::<pipeline hash, 12 hex>:<k>``. Names therefore depend only on the inputs' pipeline hashes,
never on argument order, and predicting them needs no data.

Inputs with equal pipeline hashes have identical layouts, so they get identical names except
for the position. To keep the operator commutative their values are sorted **per row**: for
each row, the groups of suffixed columns (system tags, then suffixed meta columns) of the tied
inputs are compared lexicographically and reassigned in ascending order. The sort is a
vectorised sorting network (``k * (k - 1) / 2`` compare-and-swap passes over whole columns for
``k`` tied inputs). Values that Arrow cannot order (lists, structs, maps) are compared by their
row hash, so the order is arbitrary but deterministic.

Tied inputs are ordered further by their layout (column names, order and types — equal
pipeline hashes only promise equal user schemas, not equal column order or hidden columns),
which fixes the predicted layout; when computing, inputs with identical layouts are ordered by
content hash (computed only then), which fixes the row order. If those tie too the inputs
hold the same data and the order is moot. Only suffixed columns that every tied input has
(matched by their original name) take part in the per-row sort.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pyarrow as pa

from orcapod._lazy import pc
from orcapod.hashing import hash_rows
from orcapod.types import ContentHash
from orcapod.types.columns import BLOCK_SEP, FIELD_SEP, SCHEMA_HASH_CHARS

__all__ = [
    "canonical_order",
    "join_suffix",
    "orderable",
    "sort_tied_groups",
    "tie_groups",
]


def join_suffix(pipeline_hash: ContentHash, position: int) -> str:
    """``::<pipeline hash 12 hex>:<position>``, appended to a joined input's system tags."""
    return f"{BLOCK_SEP}{pipeline_hash.to_hex(SCHEMA_HASH_CHARS)}{FIELD_SEP}{position}"


def canonical_order(
    pipeline_hashes: Sequence[ContentHash], tiebreak: Callable[[int], str] | None = None
) -> list[int]:
    """Argument indices in canonical order: stable sort by pipeline hash string.

    ``tiebreak`` (index -> text) orders inputs with equal pipeline hashes; it is called only
    for tied inputs.
    """
    keys = [h.to_string() for h in pipeline_hashes]
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    if tiebreak is None or len(set(keys)) == len(keys):
        return order
    tied = {k for k in keys if keys.count(k) > 1}
    return sorted(order, key=lambda i: (keys[i], tiebreak(i) if keys[i] in tied else ""))


def tie_groups(pipeline_hashes: Sequence[ContentHash], order: Sequence[int]) -> list[list[int]]:
    """Canonical positions grouped by equal pipeline hash (only groups of two or more)."""
    groups: dict[str, list[int]] = {}
    for position, index in enumerate(order):
        groups.setdefault(pipeline_hashes[index].to_string(), []).append(position)
    return [g for g in groups.values() if len(g) > 1]


_ORDERABLE = (
    pa.types.is_integer,
    pa.types.is_floating,
    pa.types.is_boolean,
    pa.types.is_string,
    pa.types.is_large_string,
    pa.types.is_binary,
    pa.types.is_large_binary,
    pa.types.is_fixed_size_binary,
    pa.types.is_temporal,
    pa.types.is_decimal,
)


def orderable(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``values`` as an array Arrow can compare with ``less``: itself, or its row hashes.

    Nulls stay null (callers decide where nulls sort).
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if any(check(values.type) for check in _ORDERABLE):
        return values
    if pa.types.is_dictionary(values.type):
        return orderable(values.dictionary_decode())
    digests = hash_rows(pa.table({"v": values}))
    return pc.if_else(pc.is_null(values), pa.nulls(len(values), digests.type), digests)


def _greater(left: Sequence[pa.Array], right: Sequence[pa.Array], n: int) -> pa.Array:
    """Row-wise lexicographic ``left > right`` (nulls sort first; never null)."""
    result = pa.array([False] * n, pa.bool_())
    equal_so_far = pa.array([True] * n, pa.bool_())
    for a, b in zip(left, right, strict=True):
        a_null, b_null = pc.is_null(a), pc.is_null(b)
        gt = pc.fill_null(pc.greater(a, b), False)
        gt = pc.or_(gt, pc.and_(pc.invert(a_null), b_null))
        eq = pc.or_(pc.fill_null(pc.equal(a, b), False), pc.and_(a_null, b_null))
        result = pc.or_(result, pc.and_(equal_so_far, gt))
        equal_so_far = pc.and_(equal_so_far, eq)
    return result


def sort_tied_groups(
    columns: dict[str, pa.Array], groups: Sequence[Sequence[Sequence[str]]]
) -> dict[str, pa.Array]:
    """Sort, per row, the column groups of tied inputs (see module docstring).

    ``groups`` holds one entry per set of tied inputs; each entry lists, per input in
    canonical position order, the names of its suffixed columns (same length and meaning for
    every input of the set). Returns ``columns`` with those columns' values reassigned.
    """
    out = dict(columns)
    for members in groups:
        k = len(members)
        if k < 2 or not members[0]:
            continue
        for sweep in range(k - 1):
            for j in range(k - 1 - sweep):
                lo, hi = members[j], members[j + 1]
                swap = _greater(
                    [orderable(out[c]) for c in lo],
                    [orderable(out[c]) for c in hi],
                    len(out[lo[0]]),
                )
                if not pc.any(swap).as_py():
                    continue
                for a, b in zip(lo, hi, strict=True):
                    va, vb = out[a], out[b]
                    out[a] = pc.if_else(swap, vb, va)
                    out[b] = pc.if_else(swap, va, vb)
    return out
