"""Vectorised join *indices*: which input rows pair up, in a deterministic order.

Joins never move payload columns through the hash join. Each input contributes a small key
table — its join-key columns plus a row-position column ``__idx_<k>`` — and polars'
multi-threaded hash join pairs the positions (measured about twice as fast as Acero's
``pa.Table.join`` on such key tables; semi-joins use polars too, and Acero would import
pandas with ``pyarrow.acero``, ~0.3 s of CPU a process). Every payload column
(user, source info, system tags, meta; any type, including lists, structs and maps that a
hash join cannot carry) is then gathered once with ``take``, on threads for large tables.
N-ary inner joins are a left-deep sequence of binary joins in the given order, each on the
key columns shared with what was joined so far (a cross join when none are shared: the
cartesian product); a key column is carried along only while a later input still needs it.

Keys: scalar types are cast to their canonical Arrow type (so ``string`` joins
``large_string`` and ``int32`` joins ``int64``); types a hash join cannot key on (lists,
structs, maps, ``Path``) are replaced by their 128-bit row hash. Nulls never match (SQL
semantics), for both kinds.

Order: a threaded hash join's output order depends on scheduling, so the matched positions
are sorted — lexicographically by the position in the first input, then the second, … (an
O(n) counting sort when every first-input row matches at most once, else a single ``int64``
mixed-radix key when it fits, else a multi-column sort). The result order is therefore the
first input's row order, ties broken by the next input's, independent of scheduling.

polars is imported inside ``inner_join_indices`` and ``semi_join_indices`` when a join runs,
not with this module, so importing orcapod does not import it.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod._arrow_without_pandas import column_numpy
from orcapod._lazy import pc
from orcapod.data.conversion import python_to_arrow_type
from orcapod.data.value_types import strip_optional
from orcapod.hashing import hash_rows

__all__ = ["inner_join_indices", "is_identity", "join_key", "semi_join_indices", "take_rows"]

_CASTABLE = (int, float, bool, str, bytes, dt.datetime, dt.date, dt.time, dt.timedelta, Decimal)


def _idx_name(k: int) -> str:
    return f"__idx_{k}"


def join_key(values: pa.Array | pa.ChunkedArray, py_type: Any) -> pa.Array | pa.ChunkedArray:
    """``values`` as an Acero join key for a column of Python type ``py_type``."""
    base = strip_optional(py_type)
    if base in _CASTABLE:
        target = python_to_arrow_type(base)
        return values if values.type == target else pc.cast(values, target)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    digests = hash_rows(pa.table({"k": values}))
    if values.null_count:
        return pc.if_else(pc.is_null(values), pa.nulls(len(values), digests.type), digests)
    return digests


def _positions(n: int) -> pa.Array:
    return pa.array(np.arange(n, dtype=np.int64))


def _sorted_positions(table: pa.Table, sizes: Sequence[int]) -> list[pa.Array]:
    """The ``__idx_<k>`` columns of ``table``, rows sorted by (idx_0, idx_1, …)."""
    cols = [table.column(_idx_name(k)).combine_chunks() for k in range(len(sizes))]
    if table.num_rows == 0:
        return [pa.array([], pa.int64()) for _ in sizes]
    first = column_numpy(cols[0])
    if len(first) <= sizes[0] and not np.any(np.bincount(first, minlength=sizes[0]) > 1):
        # every row of the first input matched at most once (the common 1:1 / n:1 join):
        # a counting sort by its positions is O(n), no comparison sort needed
        slot = np.full(sizes[0], -1, dtype=np.int64)
        slot[first] = np.arange(len(first), dtype=np.int64)
        order = pa.array(slot[slot >= 0])
        return [c.take(order) for c in cols]
    span = 1
    for size in sizes:
        span *= max(size, 1)
    if span < 2**63:
        key = np.zeros(table.num_rows, dtype=np.int64)
        for col, size in zip(cols, sizes, strict=True):
            key *= max(size, 1)
            key += column_numpy(col)
        order = pa.array(np.argsort(key))  # keys are unique: no stability needed
    else:
        order = pc.sort_indices(
            pa.table({_idx_name(k): c for k, c in enumerate(cols)}),
            sort_keys=[(_idx_name(k), "ascending") for k in range(len(cols))],
        )
    return [c.take(order) for c in cols]


def inner_join_indices(
    keys: Sequence[Mapping[str, pa.Array | pa.ChunkedArray]], sizes: Sequence[int]
) -> list[pa.Array]:
    """Matched row positions of an inner join of several inputs (see module docstring).

    ``keys[k]`` maps key-column names to join-key arrays (from ``join_key``) of input ``k``,
    which has ``sizes[k]`` rows; inputs are joined on equal names. Returns one int64 position
    array per input, all the same length.
    """
    import polars as pl

    n = len(keys)
    later: list[set[str]] = [set() for _ in range(n)]
    for i in range(n - 2, -1, -1):
        later[i] = later[i + 1] | set(keys[i + 1])
    acc = pl.from_arrow(
        pa.table(
            {
                **{k: v for k, v in keys[0].items() if k in later[0]},
                _idx_name(0): _positions(sizes[0]),
            }
        )
    )
    assert isinstance(acc, pl.DataFrame)
    for i in range(1, n):
        shared = [k for k in keys[i] if k in acc.columns]
        right = pl.from_arrow(
            pa.table(
                {
                    **{k: v for k, v in keys[i].items() if k in shared or k in later[i]},
                    _idx_name(i): _positions(sizes[i]),
                }
            )
        )
        assert isinstance(right, pl.DataFrame)
        if shared:
            # polars' multi-threaded hash join; nulls never match (nulls_equal=False)
            acc = acc.lazy().join(right.lazy(), on=shared, how="inner").collect()
        else:
            acc = acc.join(right, how="cross")
        stale = [c for c in acc.columns if not c.startswith("__idx_") and c not in later[i]]
        if stale:
            acc = acc.drop(stale)
    return _sorted_positions(acc.select([_idx_name(k) for k in range(n)]).to_arrow(), sizes)


def semi_join_indices(
    left: Mapping[str, pa.Array | pa.ChunkedArray],
    left_size: int,
    right: Mapping[str, pa.Array | pa.ChunkedArray],
    right_size: int,
) -> pa.Array:
    """Ascending positions of the left rows whose key tuple occurs on the right.

    With no key columns every left row matches a non-empty right side.
    """
    if not left:
        return _positions(left_size if right_size else 0)
    if left_size == 0 or right_size == 0:
        return pa.array([], pa.int64())
    import polars as pl

    names = list(left)
    left_frame = pl.from_arrow(pa.table({**dict(left), _idx_name(0): _positions(left_size)}))
    right_frame = pl.from_arrow(pa.table({k: right[k] for k in names}))
    assert isinstance(left_frame, pl.DataFrame) and isinstance(right_frame, pl.DataFrame)
    # polars' hash semi-join; nulls never match (nulls_equal=False)
    matched = left_frame.lazy().join(right_frame.lazy(), on=names, how="semi").collect()
    positions = matched.get_column(_idx_name(0)).to_numpy()
    return pa.array(np.sort(positions), pa.int64())


def is_identity(positions: pa.Array, size: int) -> bool:
    """Whether ``positions`` is exactly ``0, 1, …, size - 1`` (so ``take`` can be skipped)."""
    if len(positions) != size:
        return False
    if size == 0:
        return True
    values = column_numpy(positions)
    return bool(values[0] == 0 and values[-1] == size - 1 and np.all(np.diff(values) == 1))


#: below this many rows a gather is too quick to be worth threads
_PARALLEL_TAKE_ROWS = 65_536


def take_rows(table: pa.Table, positions: pa.Array) -> pa.Table:
    """``table.take(positions)``, gathering the columns in parallel for large tables.

    Arrow's ``take`` is single-threaded per call and releases the GIL, so gathering the
    columns (hidden system-tag and source-info strings included) on a few threads is close to
    ``cores``-times faster; the result is identical.
    """
    columns = table.columns
    if len(positions) < _PARALLEL_TAKE_ROWS or len(columns) < 2:
        return table.take(positions)
    workers = min(len(columns), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        taken = list(pool.map(lambda column: column.take(positions), columns))
    return pa.Table.from_arrays(taken, schema=table.schema)
