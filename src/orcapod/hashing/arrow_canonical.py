"""Canonical, logical form of Arrow columns, shared by ``hash_table`` and ``hash_rows``.

Two Arrow columns holding the same *logical* values must hash equal, whatever their physical
layout. Canonicalisation has two steps:

1. **Cast to a canonical Arrow type** (chunk by chunk, then combine chunks), which removes the
   storage choices in one pass of Arrow kernels:

   ========================================  ==========================================
   input                                     canonical
   ========================================  ==========================================
   int8 / int16 / int32 / int64              int64   (signedness kept, width dropped)
   uint8 / uint16 / uint32 / uint64          uint64
   float16 / float32 / float64               float64 (exact widening)
   string / large_string / string_view       large_string
   binary / large_binary / binary_view /     large_binary (a fixed-size binary is bytes)
   fixed_size_binary
   list / large_list / fixed_size_list       large_list (a fixed-size list is a list)
   map<k, v>                                 large_list<struct<key, value>>, entries
                                             sorted by key (see below)
   dictionary<v>                             v (decoded)
   date32 / date64                           date32 (date64 must hold whole days)
   time32 / time64 (any unit)                time64[ns]
   decimal32/64/128/256 (p, s)               decimal256 (scale kept, precision dropped)
   timestamp / duration                      unchanged; normalised in step 2
   struct<path: string-like>                 ``PATH_STRUCT_TYPE`` (a file path, see below)
   ========================================  ==========================================

   Consequences, on purpose: ``int32 5`` and ``int64 5`` hash equal (schemas that differ only
   by integer width or float width are the same logical schema), while ``int64 5``,
   ``uint64 5`` and ``float64 5.0`` all differ. A timestamp's time zone string is part of its
   type (``"UTC"`` and ``"+00:00"`` are different types); its unit is not.

2. **Extract numpy views** into a :class:`Canon` tree, with every representation choice fixed:
   validity as a bool mask (``None`` when there are no nulls), value slots under nulls zeroed,
   ``-0.0`` turned into ``0.0`` and every NaN into the one quiet NaN, variable-length offsets
   starting at 0 with null slots of length 0, list children restricted to the ranges of valid
   lists, struct children carrying their parent's nulls, struct fields sorted by name (a struct
   is a record, like a row), timestamps and durations as ``(seconds, nanoseconds)`` pairs (no
   overflow for any unit), decimals as 32-byte two's-complement words.

A **map** (a ``dict[str, T]`` value) is a mapping, so its entry order is not part of its
identity: ``{"b": 1, "a": 2}`` and ``{"a": 2, "b": 1}`` hash equal, as they compare equal in
Python (and as ``hash_object`` sorts dict keys). After the cast, the entries of every map, at
any depth (maps in lists, structs and other maps' keys or values), are sorted by key: one
stable Arrow sort of all entries by (map index, key) per map column, then a ``take``, no loop
over rows; one comparison pass first finds columns whose maps are in key order already and
leaves them as they are. Keys of scalar types sort in their natural order (strings by code
point, as Python's ``sorted``; numbers by value; NaN last), so a map whose keys are already
sorted is hashed as its entries stand.
Keys that Arrow cannot order (lists, structs, paths, arrays) sort by their 128-bit row hash
(:mod:`orcapod.hashing.row_kernels`): arbitrary but fixed, and a function of the key's
logical value only. Entries with equal keys (possible in Arrow, never in a Python dict) keep
their relative order. A map still differs from a list of key/value structs (its logical type
is ``map``).

A **path value** (``pathlib.Path``) is stored as ``struct<path: large_string>`` — exactly one
field named ``path``. It is identified by the content of the file (or directory) it names, not by
the path string: canonicalisation replaces it by the 16-byte content digest from
:mod:`orcapod.hashing.file_hashing`. That is the one per-row Python loop here (one file read per
distinct file; repeated files come from a memo).

A **numpy array value** (a fixed-shape tensor or ``orcapod.ndarray`` column, see
:mod:`orcapod.hashing.arrow_arrays`) is identified by its dtype, shape and values, not by the
layout that holds it: its logical type is ``["ndarray", <dtype name>]`` (the exact dtype:
a ``float32`` and a ``float64`` array differ, unlike scalar columns whose widths are storage
choices, because the dtype survives the round trip to Python), and each value is canonicalised
as ``struct<data: list<values in C order>, shape: list<int64>>`` with the values canonicalised
like any other column (so ``-0.0``/NaN rules hold inside arrays). A fixed-shape and a
variable-shape column holding the same arrays therefore hash equal, and so do differently
chunked columns. Arrays may also sit inside lists and structs (e.g. a batched array column).

Unsupported types (unions, intervals, list views, run-end encoded, other extension types)
raise ``HashingError`` naming the column and the type.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import xxhash
from numpy.typing import NDArray

from orcapod._arrow_without_pandas import column_numpy
from orcapod._lazy import pc
from orcapod.errors import HashingError, SchemaError
from orcapod.hashing.arrow_arrays import array_parts, array_type_of, is_array_type
from orcapod.hashing.canon import Canon
from orcapod.hashing.file_hashing import path_row_digest
from orcapod.hashing.row_kernels import node_rows

# PATH_STRUCT_TYPE and is_path_struct are defined here (canonicalisation needs them) and
# exported from orcapod.hashing.arrow_hashing, the one place other layers import them from.
__all__ = ["Canon", "canonical_column", "column_descriptor"]

PATH_STRUCT_TYPE: pa.DataType = pa.struct([pa.field("path", pa.large_string())])
"""Arrow representation of a ``pathlib.Path`` value: a struct with exactly one field ``path``."""

Descriptor = str | list[Any]

_TIME_FACTORS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_NS_PER_SECOND = 1_000_000_000


def is_path_struct(arrow_type: pa.DataType) -> bool:
    """True for ``struct<path: string | large_string | string_view>`` (a path value)."""
    if not pa.types.is_struct(arrow_type) or arrow_type.num_fields != 1:
        return False
    field = arrow_type.field(0)
    return bool(field.name == "path" and _is_string_like(field.type))


def _is_string_like(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def _is_binary_like(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_binary_view(t)
        or pa.types.is_fixed_size_binary(t)
    )


def _is_list_like(t: pa.DataType) -> bool:
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t))


def _unsupported(t: pa.DataType, where: str) -> HashingError:
    return HashingError(
        f"cannot hash column {where!r}: Arrow type {t} is not supported by orcapod hashing. "
        "Supported: null, bool, integers, floats, strings, binary, dates, times, timestamps, "
        "durations, decimals, lists, structs, maps and dictionary-encoded columns of those; "
        "cast the column to one of them first."
    )


# --- canonical descriptor (the logical type, part of every hash) ---------------------------


def _array_type(t: pa.DataType, where: str) -> Any:
    try:
        return array_type_of(t)
    except SchemaError as err:
        raise HashingError(f"cannot hash column {where!r}: {err}") from err


def column_descriptor(t: pa.DataType, where: str) -> Descriptor:
    """JSON-able logical type of ``t``; equal for every storage variant of the same type."""
    if is_array_type(t):
        return ["ndarray", _array_type(t, where).dtype]
    if pa.types.is_dictionary(t):
        return column_descriptor(t.value_type, where)
    if pa.types.is_null(t):
        return "null"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_signed_integer(t):
        return "int64"
    if pa.types.is_unsigned_integer(t):
        return "uint64"
    if pa.types.is_floating(t):
        return "float64"
    if _is_string_like(t):
        return "string"
    if _is_binary_like(t):
        return "binary"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_time(t):
        return "time"
    if pa.types.is_timestamp(t):
        return ["timestamp", t.tz]
    if pa.types.is_duration(t):
        return "duration"
    if pa.types.is_decimal(t):
        return ["decimal", t.scale]
    if pa.types.is_map(t):
        return [
            "map",
            column_descriptor(t.key_type, f"{where}.key"),
            column_descriptor(t.item_type, f"{where}.value"),
        ]
    if _is_list_like(t):
        return ["list", column_descriptor(t.value_type, f"{where}[]")]
    if is_path_struct(t):
        return "path"
    if pa.types.is_struct(t):
        fields = [
            [f.name, column_descriptor(f.type, f"{where}.{f.name}")]
            for f in _sorted_fields(t, where)
        ]
        return ["struct", fields]
    raise _unsupported(t, where)


def _sorted_fields(t: pa.DataType, where: str) -> list[pa.Field]:
    fields = [t.field(i) for i in range(t.num_fields)]
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise HashingError(
            f"cannot hash column {where!r}: its struct type {t} has duplicate field names; "
            "rename the fields so each is unique"
        )
    return sorted(fields, key=lambda f: f.name)


# --- step 1: canonical Arrow type ------------------------------------------------------------


def _canonical_type(t: pa.DataType, where: str) -> pa.DataType:
    if pa.types.is_dictionary(t):
        return _canonical_type(t.value_type, where)
    if pa.types.is_null(t) or pa.types.is_boolean(t):
        return t
    if pa.types.is_signed_integer(t):
        return pa.int64()
    if pa.types.is_unsigned_integer(t):
        return pa.uint64()
    if pa.types.is_floating(t):
        return pa.float64()
    if _is_string_like(t):
        return pa.large_string()
    if _is_binary_like(t):
        return pa.large_binary()
    if pa.types.is_date(t):
        return pa.date32()
    if pa.types.is_time(t):
        return pa.time64("ns")
    if pa.types.is_timestamp(t) or pa.types.is_duration(t):
        return t
    if pa.types.is_decimal(t):
        return pa.decimal256(max(t.precision, 1), t.scale)
    if pa.types.is_map(t):
        entry = pa.struct(
            [
                pa.field("key", _canonical_type(t.key_type, f"{where}.key"), nullable=False),
                pa.field("value", _canonical_type(t.item_type, f"{where}.value")),
            ]
        )
        return pa.large_list(pa.field("entries", entry, nullable=False))
    if _is_list_like(t):
        return pa.large_list(_canonical_type(t.value_type, f"{where}[]"))
    if is_path_struct(t):
        return PATH_STRUCT_TYPE
    if pa.types.is_struct(t):
        return pa.struct(
            [
                pa.field(f.name, _canonical_type(f.type, f"{where}.{f.name}"))
                for f in _sorted_fields(t, where)
            ]
        )
    raise _unsupported(t, where)


def _holds_arrays(t: pa.DataType) -> bool:
    if is_array_type(t):
        return True
    if _is_list_like(t):
        return _holds_arrays(t.value_type)
    if pa.types.is_struct(t):
        return any(_holds_arrays(t.field(i).type) for i in range(t.num_fields))
    return False


def _without_arrays(arr: pa.Array, where: str) -> pa.Array:
    """``arr`` with every numpy array value, at any depth of lists and structs, replaced by
    its logical parts (``arrow_arrays.array_parts``)."""
    t = arr.type
    if is_array_type(t):
        _array_type(t, where)  # rejects unsupported tensor variants
        return array_parts(arr)
    if not _holds_arrays(t):
        return arr
    mask = arr.is_null() if arr.null_count else None
    if _is_list_like(t):
        if pa.types.is_fixed_size_list(t):
            size = t.list_size
            offsets = pa.array(np.arange(len(arr) + 1, dtype=np.int64) * size)
            values = arr.values.slice(arr.offset * size, len(arr) * size)
        else:
            # a fresh offsets buffer: Arrow takes no null mask with sliced offsets
            offsets = pa.array(column_numpy(arr.offsets).astype(np.int64))
            values = arr.values
        return pa.LargeListArray.from_arrays(
            offsets, _without_arrays(values, f"{where}[]"), mask=mask
        )
    children = arr.flatten()
    names = [t.field(i).name for i in range(t.num_fields)]
    return pa.StructArray.from_arrays(
        [_without_arrays(c, f"{where}.{n}") for c, n in zip(children, names, strict=True)],
        names=names,
        mask=mask,
    )


def _to_canonical_array(column: pa.Array | pa.ChunkedArray, where: str) -> pa.Array:
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    if _holds_arrays(column.type):
        if not chunks:
            chunks = [pa.array([], type=column.type)]
        chunks = [_without_arrays(chunk, where) for chunk in chunks]
        column = pa.chunked_array(chunks)
    target = _canonical_type(column.type, where)
    try:
        cast = [chunk if chunk.type == target else chunk.cast(target) for chunk in chunks]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise HashingError(
            f"cannot hash column {where!r} of type {column.type}: converting it to its "
            f"canonical type {target} failed ({err}). For date64, store whole days or use a "
            "timestamp column."
        ) from err
    if not cast:
        combined = pa.array([], type=target)
    else:
        combined = cast[0] if len(cast) == 1 else pa.concat_arrays(cast)
    if _holds_maps(column.type):
        combined = _sort_map_entries(combined, column.type, where)
    return combined


# --- step 1b: map entries sorted by key ------------------------------------------------------


def _holds_maps(t: pa.DataType) -> bool:
    """True if a map sits anywhere in ``t`` (a type before the canonical cast)."""
    if pa.types.is_map(t):
        return True
    if pa.types.is_dictionary(t):
        return _holds_maps(t.value_type)
    if _is_list_like(t):
        return _holds_maps(t.value_type)
    if pa.types.is_struct(t) and not is_path_struct(t):
        return any(_holds_maps(t.field(i).type) for i in range(t.num_fields))
    return False


def _list_parts(arr: pa.Array) -> tuple[NDArray[np.int64], pa.Array]:
    """Offsets from 0 (a fresh buffer) and the values they index, of a large_list array."""
    offsets = column_numpy(arr.offsets)
    start, stop = int(offsets[0]), int(offsets[-1])
    return offsets - start, arr.values.slice(start, stop - start)


def _sort_map_entries(arr: pa.Array, t: pa.DataType, where: str) -> pa.Array:
    """``arr`` (already of its canonical type; ``t`` is its type before the cast) with the
    entries of every map, at any depth, sorted by key. Whole-array Arrow/numpy work: one
    stable sort of all entries by (map index, key), no loop over rows."""
    if pa.types.is_dictionary(t):
        return _sort_map_entries(arr, t.value_type, where)
    if not _holds_maps(t):  # (nothing to sort: the array as it is, not a rebuilt copy)
        return arr
    mask = arr.is_null() if arr.null_count else None
    if pa.types.is_map(t):
        offsets, entries = _list_parts(arr)
        key, value = entries.flatten()
        key = _sort_map_entries(key, t.key_type, f"{where}.key")
        value = _sort_map_entries(value, t.item_type, f"{where}.value")
        parent = np.repeat(np.arange(len(arr), dtype=np.int64), np.diff(offsets))
        order = _entry_order(parent, key, f"{where}.key")
        if order is not None:
            key, value = key.take(order), value.take(order)
        entry_type = arr.type.value_type
        entries = pa.StructArray.from_arrays([key, value], fields=list(entry_type))
        return pa.LargeListArray.from_arrays(pa.array(offsets), entries, type=arr.type, mask=mask)
    if _is_list_like(t):
        offsets, values = _list_parts(arr)
        values = _sort_map_entries(values, t.value_type, f"{where}[]")
        return pa.LargeListArray.from_arrays(pa.array(offsets), values, type=arr.type, mask=mask)
    if pa.types.is_struct(t):
        before = {t.field(i).name: t.field(i).type for i in range(t.num_fields)}
        fields = list(arr.type)
        children = [
            _sort_map_entries(child, before[f.name], f"{where}.{f.name}")
            for child, f in zip(arr.flatten(), fields, strict=True)
        ]
        return pa.StructArray.from_arrays(children, fields=fields, mask=mask)
    return arr


def _orderable(t: pa.DataType) -> bool:
    """Canonical scalar types that Arrow sorts in their natural order."""
    return bool(
        pa.types.is_boolean(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_large_string(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_temporal(t)
        or pa.types.is_decimal(t)
    )


_KEY_ORDER_SEED = xxhash.xxh3_128(b"orcapod.map_key_order").digest()


def _entry_order(parent: NDArray[np.int64], key: pa.Array, where: str) -> NDArray[np.int64] | None:
    """Permutation sorting map entries by (map index, key), stable for equal keys; None when
    they are in order already. Scalar keys sort in their natural order; keys Arrow cannot
    order (lists, structs, paths, arrays) by their 128-bit row hash."""
    if len(key) < 2:
        return None
    if _orderable(key.type):
        if _in_key_order(parent, key):
            return None  # one comparison pass, much cheaper than the sort
        table = pa.table({"map": parent, "key": key})
        indices = pc.sort_indices(table, sort_keys=[("map", "ascending"), ("key", "ascending")])
        order: NDArray[np.int64] = column_numpy(indices).astype(np.int64)
    else:
        digests = node_rows(_extract(key, where), _KEY_ORDER_SEED)
        order = np.lexsort((digests[1], digests[0], parent)).astype(np.int64)
        if np.array_equal(order, np.arange(len(order))):
            return None
    return order


def _in_key_order(parent: NDArray[np.int64], key: pa.Array) -> bool:
    """True if, within every map, each key is at least the one before it (Arrow's order:
    for floats, NaN after every number)."""
    previous, following = key.slice(0, len(key) - 1), key.slice(1)
    descending = pc.less(following, previous)
    if pa.types.is_floating(key.type):
        descending = pc.or_(
            descending, pc.and_(pc.is_nan(previous), pc.invert(pc.is_nan(following)))
        )
    down: NDArray[np.bool_] = column_numpy(descending)
    return not bool(np.any(down & (parent[1:] == parent[:-1])))


# --- step 2: numpy views ---------------------------------------------------------------------


def canonical_column(column: pa.Array | pa.ChunkedArray, where: str) -> Canon:
    """Canonical form of one column; ``where`` names it in error messages."""
    return _extract(_to_canonical_array(column, where), where)


def _validity(arr: pa.Array) -> NDArray[np.bool_] | None:
    if arr.null_count == 0:
        return None
    mask: NDArray[np.bool_] = column_numpy(arr.is_valid())
    return mask


def _fixed_view(arr: pa.Array, dtype: type[np.generic], width: int) -> NDArray[Any]:
    """Zero-copy view of a fixed-width buffer as an ``(n, width)`` array of ``dtype``."""
    n = len(arr)
    buf = arr.buffers()[1]
    if n == 0 or buf is None:
        return np.zeros((n, width), dtype=dtype)
    view = np.frombuffer(buf, dtype=dtype, count=n * width, offset=arr.offset * width * 8)
    return view.reshape(n, width)


def _zero_nulls(words: NDArray[np.uint64], valid: NDArray[np.bool_] | None) -> NDArray[np.uint64]:
    if valid is None:
        return words
    out = words.copy()
    out[~valid] = 0
    return out


def _extract(arr: pa.Array, where: str) -> Canon:
    t = arr.type
    n = len(arr)
    valid = _validity(arr)
    if pa.types.is_null(t):
        return Canon("null", n, np.zeros(n, dtype=np.bool_) if n else None)
    if pa.types.is_boolean(t):
        bits = column_numpy(pc.fill_null(arr, False))
        return Canon("fixed", n, valid, words=bits.astype(np.uint64).reshape(n, 1))
    if pa.types.is_int64(t) or pa.types.is_uint64(t) or pa.types.is_time64(t):
        return Canon("fixed", n, valid, words=_zero_nulls(_fixed_view(arr, np.uint64, 1), valid))
    if pa.types.is_date32(t):
        days = column_numpy(pc.fill_null(arr.view(pa.int32()), 0))
        words = days.astype(np.int64).view(np.uint64).reshape(n, 1)
        return Canon("fixed", n, valid, words=words)
    if pa.types.is_float64(t):
        return Canon("fixed", n, valid, words=_float_words(arr, valid))
    if pa.types.is_timestamp(t) or pa.types.is_duration(t):
        return Canon("fixed", n, valid, words=_time_pair_words(arr, t.unit, valid))
    if pa.types.is_decimal(t):
        return Canon("fixed", n, valid, words=_zero_nulls(_fixed_view(arr, np.uint64, 4), valid))
    if pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        return _extract_bytes(arr, valid)
    if pa.types.is_large_list(t):
        lengths = column_numpy(pc.fill_null(pc.list_value_length(arr), 0)).astype(np.int64)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        child = _extract(arr.flatten(), f"{where}[]")
        return Canon("list", n, valid, offsets=offsets, children=(("item", child),))
    if is_path_struct(t):
        return _extract_paths(arr, where)
    if pa.types.is_struct(t):
        flat = arr.flatten()
        children = tuple(
            (t.field(i).name, _extract(flat[i], f"{where}.{t.field(i).name}"))
            for i in range(t.num_fields)
        )
        return Canon("struct", n, valid, children=children)
    raise _unsupported(t, where)  # unreachable after _canonical_type, kept as a guard


def _float_words(arr: pa.Array, valid: NDArray[np.bool_] | None) -> NDArray[np.uint64]:
    values = _fixed_view(arr, np.float64, 1)
    with np.errstate(invalid="ignore"):  # signalling NaNs are fine: they become the quiet NaN
        canon = values + 0.0  # a fresh copy in which -0.0 + 0.0 == +0.0
    nan = np.isnan(canon)
    if nan.any():
        canon[nan] = np.nan
    if valid is not None:
        canon[~valid] = 0.0
    return canon.view(np.uint64)


def _time_pair_words(
    arr: pa.Array, unit: str, valid: NDArray[np.bool_] | None
) -> NDArray[np.uint64]:
    ticks = _fixed_view(arr, np.int64, 1)[:, 0]
    factor = _TIME_FACTORS[unit]
    seconds = np.floor_divide(ticks, factor)
    nanos = (ticks - seconds * factor) * (_NS_PER_SECOND // factor)
    pair = np.stack([seconds, nanos], axis=1)
    if valid is not None:
        pair[~valid] = 0
    return pair.view(np.uint64)


def _extract_bytes(arr: pa.Array, valid: NDArray[np.bool_] | None) -> Canon:
    n = len(arr)
    offsets = _offsets(arr)
    if valid is not None and np.any(np.diff(offsets)[~valid] != 0):
        # Null slots backed by bytes: rebuild so null slots are empty.
        arr = pc.if_else(arr.is_valid(), arr, pa.scalar(b"", type=arr.type))
        offsets = _offsets(arr)
    start, end = int(offsets[0]), int(offsets[-1])
    data_buf = arr.buffers()[2]
    if data_buf is None or end == start:
        data: NDArray[np.uint8] = np.zeros(0, dtype=np.uint8)
    else:
        data = np.frombuffer(data_buf, dtype=np.uint8, count=end - start, offset=start)
    if start:
        offsets = offsets - start
    return Canon("bytes", n, valid, offsets=offsets, data=data)


def _offsets(arr: pa.Array) -> NDArray[np.int64]:
    n = len(arr)
    buf = arr.buffers()[1]
    if buf is None:
        return np.zeros(n + 1, dtype=np.int64)
    return np.frombuffer(buf, dtype=np.int64, count=n + 1, offset=arr.offset * 8)


def _extract_paths(arr: pa.Array, where: str) -> Canon:
    n = len(arr)
    paths = arr.flatten()[0]  # carries the struct's own nulls
    valid = _validity(paths)
    blob = bytearray(16 * n)
    for i, text in enumerate(paths.to_pylist()):
        if text is not None:  # an unreadable path fails only the rows that read it
            blob[16 * i : 16 * i + 16] = path_row_digest(text)
    words = np.frombuffer(bytes(blob), dtype="<u8").astype(np.uint64).reshape(n, 2)
    return Canon("fixed", n, valid, words=words)
