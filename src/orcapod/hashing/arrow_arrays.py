"""Arrow layouts of numpy array columns (``orcapod.types.ArrayType``), and conversions.

In memory (streams, packets, the tables databases return)
    * a **fixed** array type (dtype known, every dimension fixed) holding at least one value is
      Arrow's canonical fixed-shape tensor extension type,
      ``pa.fixed_shape_tensor(value_type, shape)``: storage
      ``fixed_size_list<value_type>[prod(shape)]``, each value in C (row-major) order;
    * any other array type with a dtype is the extension type ``orcapod.ndarray``
      (``NDArrayType``): storage ``struct<data: large_list<value_type>, shape:
      large_list<int64>>`` - the values in C order and the value's shape - with the declared
      shape (a list of ints and nulls, or null for any number of dimensions) as the extension
      metadata, JSON ``{"shape": [null, null, 3]}``. A fixed shape with a dimension of size 0
      (``(0, 2)``: every array empty) takes this layout too, with its shape as declared:
      Arrow has no fixed-size list of size 0.

    The value type is the dtype's Arrow type (``uint8`` -> ``uint8``, ``float16`` ->
    ``halffloat``, ...). A null array is a null slot of the column.

In Delta Lake and the other databases (``to_storage`` / ``from_storage``)
    Delta has neither extension types, fixed-size lists nor unsigned or 16-bit float numbers,
    so a database stores the storage layout with ``list`` for the lists and the values
    reinterpreted bit for bit as the signed integer of the same width where Delta lacks the
    type (``uint8`` as ``int8``, ``uint16``/``float16`` as ``int16``, ``uint32`` as ``int32``,
    ``uint64`` as ``int64``), and records the array type in the field metadata under
    ``orcapod.array``: JSON ``{"dtype": "uint8", "shape": [64], "layout": "fixed"}``
    (``"layout": "variable"`` for ``orcapod.ndarray``). Reads turn such columns back into the
    in-memory layout, so values, dtype and shape round-trip exactly.

Reading values back (``arrow_to_arrays``) gives numpy arrays of the declared dtype and each
value's shape. They are read-only (views of the Arrow buffers where possible); ``.copy()``
one to modify it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from orcapod._arrow_without_pandas import column_numpy
from orcapod.errors import SchemaError
from orcapod.types.arrays import ArrayType

__all__ = [
    "ARRAY_METADATA_KEY",
    "NDArrayType",
    "array_parts",
    "array_type_of",
    "arrays_to_arrow",
    "arrow_to_arrays",
    "arrow_type_for",
    "from_storage",
    "holds_arrays",
    "is_array_type",
    "storage_field",
    "stored_array_type",
    "to_storage",
]

ARRAY_METADATA_KEY = b"orcapod.array"
NDARRAY_EXTENSION_NAME = "orcapod.ndarray"
_FIXED_TENSOR_NAME = "arrow.fixed_shape_tensor"

_VALUE_TYPES: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint8": pa.uint8(),
    "uint16": pa.uint16(),
    "uint32": pa.uint32(),
    "uint64": pa.uint64(),
    "float16": pa.float16(),
    "float32": pa.float32(),
    "float64": pa.float64(),
}
_DTYPE_OF_VALUE_TYPE = {str(t): name for name, t in _VALUE_TYPES.items()}
# value types Delta cannot hold, stored as the signed integer of the same width (bit for bit)
_CARRIERS: dict[str, pa.DataType] = {
    "uint8": pa.int8(),
    "uint16": pa.int16(),
    "uint32": pa.int32(),
    "uint64": pa.int64(),
    "float16": pa.int16(),
}


class NDArrayType(pa.ExtensionType):  # type: ignore[misc]
    """``orcapod.ndarray``: arrays of one dtype whose shape varies (see the module docstring)."""

    def __init__(self, value_type: pa.DataType, shape: tuple[int | None, ...] | None) -> None:
        self._declared_shape = None if shape is None else tuple(shape)
        storage = pa.struct(
            [
                pa.field("data", pa.large_list(value_type)),
                pa.field("shape", pa.large_list(pa.int64())),
            ]
        )
        super().__init__(storage, NDARRAY_EXTENSION_NAME)

    @property
    def declared_shape(self) -> tuple[int | None, ...] | None:
        return self._declared_shape

    @property
    def value_type(self) -> pa.DataType:
        return self.storage_type.field("data").type.value_type

    def __arrow_ext_serialize__(self) -> bytes:
        shape = None if self._declared_shape is None else list(self._declared_shape)
        return json.dumps({"shape": shape}, separators=(",", ":")).encode()

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type: pa.DataType, serialized: bytes) -> Any:
        shape = json.loads(serialized.decode())["shape"]
        value_type = storage_type.field("data").type.value_type
        return cls(value_type, None if shape is None else tuple(shape))

    def __reduce__(self) -> Any:
        return NDArrayType, (self.value_type, self._declared_shape)


pa.register_extension_type(NDArrayType(pa.float64(), None))


def _dtype_of(value_type: pa.DataType) -> str:
    try:
        return _DTYPE_OF_VALUE_TYPE[str(value_type)]
    except KeyError as err:
        raise SchemaError(f"Arrow value type {value_type} is not a supported array dtype") from err


def _is_fixed_tensor(t: pa.DataType) -> bool:
    return isinstance(t, pa.FixedShapeTensorType)


def _fixed_layout(array_type: ArrayType) -> bool:
    """Whether ``array_type`` is held as a fixed-shape tensor (see the module docstring)."""
    return array_type.is_fixed and array_type.size > 0


def is_array_type(t: pa.DataType) -> bool:
    """A fixed-shape tensor or ``orcapod.ndarray`` column type."""
    return _is_fixed_tensor(t) or isinstance(t, NDArrayType)


def arrow_type_for(array_type: ArrayType) -> pa.DataType:
    """The in-memory Arrow type of ``array_type`` (which must have a dtype)."""
    if array_type.dtype is None:
        raise SchemaError(
            f"{array_type!r} has no dtype, so it cannot be stored; declare one, e.g. "
            "NDArray[np.float32]"
        )
    value_type = _VALUE_TYPES[array_type.dtype]
    if _fixed_layout(array_type):
        return pa.fixed_shape_tensor(value_type, list(array_type.fixed_shape))
    return NDArrayType(value_type, array_type.shape)


def array_type_of(t: pa.DataType) -> ArrayType | None:
    """The ``ArrayType`` of an in-memory array column type (``None`` for other types)."""
    if _is_fixed_tensor(t):
        if t.permutation is not None and list(t.permutation) != list(range(len(t.shape))):
            raise SchemaError(
                f"fixed-shape tensors with a permutation ({t}) are not supported; store the "
                "arrays in C order"
            )
        return ArrayType(_dtype_of(t.value_type), tuple(t.shape))
    if isinstance(t, NDArrayType):
        return ArrayType(_dtype_of(t.value_type), t.declared_shape)
    return None


# --- Python values <-> Arrow -------------------------------------------------------------


def _checked(value: Any, array_type: ArrayType, where: str) -> NDArray[Any]:
    if not isinstance(value, np.ndarray):
        raise SchemaError(
            f"{where}: expected a numpy array ({array_type!r}), got {type(value).__name__} "
            f"{value!r:.60}; convert it with np.asarray(value, dtype=...)"
        )
    problem = array_type.check(value)
    if problem is not None:
        raise SchemaError(
            f"{where}: the array does not fit {array_type!r} ({problem}); convert it with "
            ".astype()/.reshape() or change the declared type"
        )
    return value


def _flat_values(flat: NDArray[Any], dtype: str) -> pa.Array:
    native = flat.astype(flat.dtype.newbyteorder("="), copy=False)
    return pa.array(native, type=_VALUE_TYPES[dtype])


def arrays_to_arrow(
    values: Sequence[Any], array_type: ArrayType, where: str = "column"
) -> pa.Array:
    """An Arrow array of ``array_type``'s layout from numpy arrays (``None`` = null)."""
    arrow_type = arrow_type_for(array_type)
    assert array_type.dtype is not None
    n = len(values)
    valid = [i for i, v in enumerate(values) if v is not None]
    checked = [_checked(values[i], array_type, f"{where}, row {i}") for i in valid]
    mask = None if len(valid) == n else pa.array([v is None for v in values], pa.bool_())
    if _fixed_layout(array_type):
        size = array_type.size
        dtype = np.dtype(array_type.dtype)
        block = (
            np.stack(checked).reshape(len(checked), size)
            if checked
            else np.empty((0, size), dtype=dtype)
        )
        if mask is not None:
            full = np.zeros((n, size), dtype=dtype)
            full[valid] = block
            block = full
        storage = pa.FixedSizeListArray.from_arrays(
            _flat_values(block.reshape(-1), array_type.dtype), size, mask=mask
        )
        return pa.ExtensionArray.from_storage(arrow_type, storage)
    flats = [np.ravel(v) for v in checked]
    lengths = np.zeros(n, dtype=np.int64)
    ndims = np.zeros(n, dtype=np.int64)
    lengths[valid] = [f.size for f in flats]
    ndims[valid] = [v.ndim for v in checked]
    data_values = np.concatenate(flats) if flats else np.empty(0, dtype=np.dtype(array_type.dtype))
    shape_values = np.fromiter(
        (d for v in checked for d in v.shape), dtype=np.int64, count=int(ndims.sum())
    )
    data = pa.LargeListArray.from_arrays(
        _offsets(lengths), _flat_values(data_values, array_type.dtype)
    )
    shape = pa.LargeListArray.from_arrays(_offsets(ndims), pa.array(shape_values))
    storage = pa.StructArray.from_arrays([data, shape], names=["data", "shape"], mask=mask)
    return pa.ExtensionArray.from_storage(arrow_type, storage)


def _offsets(lengths: NDArray[np.int64]) -> pa.Array:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pa.array(offsets)


def _numpy(values: pa.Array, dtype: str) -> NDArray[Any]:
    if values.null_count:
        raise SchemaError("an array column holds null values inside an array; arrays have none")
    out: NDArray[Any] = column_numpy(values)
    return out.astype(np.dtype(dtype), copy=False)


def _valid_rows(arr: pa.Array) -> NDArray[np.bool_]:
    if arr.null_count == 0:
        return np.ones(len(arr), dtype=np.bool_)
    mask: NDArray[np.bool_] = column_numpy(arr.is_valid())
    return mask


def _chunk_to_arrays(arr: pa.Array) -> list[Any]:
    array_type = array_type_of(arr.type)
    assert array_type is not None and array_type.dtype is not None
    storage = arr.storage
    n = len(arr)
    valid = _valid_rows(arr)
    if _is_fixed_tensor(arr.type):
        size = array_type.size
        flat = storage.values.slice(storage.offset * size, n * size)
        block = _numpy(flat, array_type.dtype).reshape(n, *array_type.fixed_shape)
        block.flags.writeable = False
        rows: list[Any] = list(block)
        if not valid.all():
            rows = [row if ok else None for row, ok in zip(rows, valid, strict=True)]
        return rows
    data, shape = storage.flatten()
    d_offsets = column_numpy(data.offsets)
    s_offsets = column_numpy(shape.offsets)
    values = _numpy(data.values, array_type.dtype)
    dims = column_numpy(shape.values)
    values.flags.writeable = False
    out: list[Any] = []
    for i in range(n):
        if not valid[i]:
            out.append(None)
            continue
        value_shape = tuple(int(d) for d in dims[s_offsets[i] : s_offsets[i + 1]])
        out.append(values[d_offsets[i] : d_offsets[i + 1]].reshape(value_shape))
    return out


def arrow_to_arrays(column: pa.Array | pa.ChunkedArray) -> list[Any]:
    """The numpy arrays (``None`` for nulls) of an array column; read-only."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    out: list[Any] = []
    for chunk in chunks:
        out.extend(_chunk_to_arrays(chunk))
    return out


# --- the logical parts, for hashing ---------------------------------------------------------


def array_parts(arr: pa.Array) -> pa.StructArray:
    """``struct<data: large_list<value_type>, shape: large_list<int64>>`` of an array column
    chunk, whatever its layout: each value's C-order values and shape, null where it is null.
    Two columns holding the same arrays give equal parts (up to where nulls point)."""
    t = arr.type
    if isinstance(t, NDArrayType):
        storage: pa.StructArray = arr.storage
        return storage
    array_type = array_type_of(t)
    assert array_type is not None
    storage = arr.storage
    n = len(arr)
    size = array_type.size
    ndim = len(array_type.fixed_shape)
    flat = storage.values.slice(storage.offset * size, n * size)
    data = pa.LargeListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int64) * size), flat)
    shape = pa.LargeListArray.from_arrays(
        pa.array(np.arange(n + 1, dtype=np.int64) * ndim),
        pa.array(np.tile(np.asarray(array_type.fixed_shape, dtype=np.int64), n)),
    )
    mask = None if arr.null_count == 0 else arr.is_null()
    return pa.StructArray.from_arrays([data, shape], names=["data", "shape"], mask=mask)


# --- database storage ------------------------------------------------------------------------


def _metadata(array_type: ArrayType, depth: int) -> dict[bytes, bytes]:
    payload: dict[str, Any] = {
        "dtype": array_type.dtype,
        "shape": None if array_type.shape is None else list(array_type.shape),
        "layout": "fixed" if _fixed_layout(array_type) else "variable",
    }
    if depth:
        payload["lists"] = depth
    return {ARRAY_METADATA_KEY: json.dumps(payload, separators=(",", ":")).encode()}


def _carrier(dtype: str) -> pa.DataType:
    return _CARRIERS.get(dtype, _VALUE_TYPES[dtype])


def _innermost(t: pa.DataType) -> tuple[pa.DataType, int]:
    """The type inside ``t``'s (large) lists, and how many list levels wrap it."""
    depth = 0
    while not is_array_type(t) and (pa.types.is_list(t) or pa.types.is_large_list(t)):
        t, depth = t.value_type, depth + 1
    return t, depth


def holds_arrays(t: pa.DataType) -> bool:
    """An array column type, or (large) lists of one (e.g. a batched array column)."""
    return is_array_type(_innermost(t)[0])


def storage_field(name: str, t: pa.DataType) -> pa.Field:
    """The database field (type and ``orcapod.array`` metadata) of an array column type, or
    of lists of one."""
    inner, depth = _innermost(t)
    array_type = array_type_of(inner)
    assert array_type is not None and array_type.dtype is not None
    carrier = _carrier(array_type.dtype)
    if _fixed_layout(array_type):
        storage: pa.DataType = pa.list_(pa.field("item", carrier))
    else:
        storage = pa.struct(
            [
                pa.field("data", pa.list_(pa.field("item", carrier))),
                pa.field("shape", pa.list_(pa.field("item", pa.int64()))),
            ]
        )
    for _ in range(depth):
        storage = pa.list_(pa.field("item", storage))
    return pa.field(name, storage, metadata=_metadata(array_type, depth))


def _reinterpret(values: pa.Array, target: pa.DataType) -> pa.Array:
    """``values`` as ``target`` bit for bit (same width), or unchanged."""
    if values.type.equals(target):
        return values
    return pa.Array.from_buffers(
        target, len(values), values.buffers(), values.null_count, values.offset
    )


def _list_of(values: pa.Array, offsets: pa.Array, mask: pa.Array | None) -> pa.ListArray:
    return pa.ListArray.from_arrays(offsets, values, mask=mask)


def _offsets_of(arr: pa.Array, dtype: type[np.integer[Any]]) -> pa.Array:
    """A fresh copy of a list array's offsets (Arrow takes no null mask with sliced offsets)."""
    return pa.array(column_numpy(arr.offsets).astype(dtype))


def to_storage(arr: pa.Array) -> pa.Array:
    """An array column chunk (or lists of arrays) in its database layout (module docstring)."""
    if not is_array_type(arr.type):
        mask = None if arr.null_count == 0 else arr.is_null()
        return pa.ListArray.from_arrays(
            _offsets_of(arr, np.int32), to_storage(arr.values), mask=mask
        )
    array_type = array_type_of(arr.type)
    assert array_type is not None and array_type.dtype is not None
    carrier = _carrier(array_type.dtype)
    parts = array_parts(arr)
    data, shape = parts.field("data"), parts.field("shape")
    mask = None if parts.null_count == 0 else parts.is_null()
    data_offsets = data.offsets.cast(pa.int32())
    stored_data = _list_of(_reinterpret(data.values, carrier), data_offsets, None)
    if _is_fixed_tensor(arr.type):
        return _list_of(stored_data.values, data_offsets, mask)
    stored_shape = _list_of(shape.values, shape.offsets.cast(pa.int32()), None)
    return pa.StructArray.from_arrays(
        [stored_data, stored_shape], names=["data", "shape"], mask=mask
    )


def stored_array_type(field: pa.Field) -> tuple[ArrayType, int] | None:
    """The ``ArrayType`` a database field holds and the number of list levels around it (from
    its ``orcapod.array`` metadata), or ``None`` for other fields."""
    raw = (field.metadata or {}).get(ARRAY_METADATA_KEY)
    if raw is None:
        return None
    payload = json.loads(raw.decode())
    shape = payload["shape"]
    return ArrayType(payload["dtype"], None if shape is None else tuple(shape)), payload.get(
        "lists", 0
    )


def from_storage(arr: pa.Array, array_type: ArrayType, depth: int = 0) -> pa.Array:
    """A database array column chunk (``to_storage``'s layout) in its in-memory layout."""
    if depth:
        mask = None if arr.null_count == 0 else arr.is_null()
        return pa.LargeListArray.from_arrays(
            _offsets_of(arr, np.int64), from_storage(arr.values, array_type, depth - 1), mask=mask
        )
    assert array_type.dtype is not None
    value_type = _VALUE_TYPES[array_type.dtype]
    arrow_type = arrow_type_for(array_type)
    mask = None if arr.null_count == 0 else arr.is_null()
    if _fixed_layout(array_type):
        size = array_type.size
        lengths = np.diff(column_numpy(arr.offsets).astype(np.int64))
        if np.any(lengths[_valid_rows(arr)] != size):
            raise SchemaError(
                f"stored arrays do not all have {size} values, the size of {array_type!r}"
            )
        values = _dense_values(arr, size, value_type)
        storage = pa.FixedSizeListArray.from_arrays(values, size, mask=mask)
        return pa.ExtensionArray.from_storage(arrow_type, storage)
    data, shape = arr.flatten()
    new_data = pa.LargeListArray.from_arrays(
        data.offsets.cast(pa.int64()), _reinterpret(data.values, value_type)
    )
    new_shape = pa.LargeListArray.from_arrays(shape.offsets.cast(pa.int64()), shape.values)
    storage = pa.StructArray.from_arrays([new_data, new_shape], names=["data", "shape"], mask=mask)
    return pa.ExtensionArray.from_storage(arrow_type, storage)


def _dense_values(arr: pa.ListArray, size: int, value_type: pa.DataType) -> pa.Array:
    """The values of a list array whose valid rows hold ``size`` values each, with ``size``
    zeros for each null row, as ``value_type``."""
    valid = _valid_rows(arr)
    offsets = column_numpy(arr.offsets).astype(np.int64)
    values = _reinterpret(arr.values, value_type)
    if valid.all() and offsets[0] == 0 and offsets[-1] == len(values):
        return values
    raw = column_numpy(values)
    out = np.zeros((len(arr), size), dtype=raw.dtype)
    rows = np.flatnonzero(valid)
    out[rows] = raw[offsets[rows][:, None] + np.arange(size)]
    return pa.array(out.reshape(-1), type=value_type)
