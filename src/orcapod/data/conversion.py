"""Python <-> Arrow conversion of types, schemas and values.

Type mapping (one way, and back the other way without loss):

============================  ==========================================
Python                        Arrow
============================  ==========================================
``int``                       ``int64`` (any integer width reads back as ``int``)
``float``                     ``float64`` (float16/32 read back as ``float``)
``bool``                      ``bool``
``str``                       ``large_string`` (string / string_view read back as ``str``)
``bytes``                     ``large_binary`` (binary / fixed-size read back as ``bytes``)
``datetime``                  ``timestamp[us, tz=UTC]`` (``orcapod.data.timestamps``)
``date``                      ``date32``
``time``                      ``time64[us]``
``timedelta``                 ``duration[us]``
``Decimal``                   ``decimal128(38, 18)``
``pathlib.Path``              ``struct<path: large_string>``; hashed by file content
``ArrayType`` (numpy arrays)  ``fixed_shape_tensor`` or ``orcapod.ndarray`` (see
                              ``orcapod.hashing.arrow_arrays`` for the layouts)
``list[T]``                   ``large_list<T>``
``dict[str, T]``              ``map<large_string, T>``
``T | None``                  ``T`` in a nullable field
============================  ==========================================

Decisions where the design is silent:

* Nullability is a property of the data, not of Arrow's field flag: reading an Arrow schema
  gives ``T | None`` only for fields that actually hold nulls (``table_schema``) — Arrow marks
  nearly every field nullable, and treating that as ``T | None`` would make ordinary columns
  incompatible with ``x: int`` parameters. The same holds one level down, by the rule function
  outputs follow (a ``list[int]`` holds no ``None``): a table's list column is
  ``list[int | None]`` iff it holds a ``None`` item (``table_schema``), and a value of a
  ``list[int]`` or ``dict[str, int]`` column holding ``None`` is refused, as it would be
  from a function declared ``-> list[int]``. A schema read without the data
  (``arrow_schema_to_schema``) takes list items and dict values as not optional.
* Inference from Python values: ``None`` values make the column ``T | None``; a mix of ``int``
  and ``float`` is ``float``; any other mix (e.g. ``int`` and ``str``) is a ``SchemaError``
  naming the column; a column of only ``None`` cannot be inferred and needs a schema.
* Numpy arrays: a column of arrays of one dtype is an ``ArrayType`` of that dtype; a dimension
  is fixed where every array has the same size there and ``None`` elsewhere, and the number
  of dimensions is free (shape ``None``) when the arrays differ in it. A size of 0 is never
  fixed (arrays of shape ``(0, 2)`` only give ``(None, 2)``): a column whose arrays happen to
  be all empty ("no detections in any image") gets the type it has once some are not, so its
  schema does not change with the data. Array values must be
  numpy arrays of exactly the declared dtype and shape (no silent casts). Arrays may sit in
  lists (``list[NDArray[...]]``, e.g. a batched array column), not in dict values. Values read
  back are read-only numpy arrays.
* Values against a schema are checked before conversion (``orcapod.data.value_types``):
  never a silent conversion.
* NumPy scalars (``np.int64(5)``, ``np.float32``, ``np.bool_``, e.g. from ``arr.sum()``) are
  taken as the matching ``int``, ``float`` or ``bool``, as function outputs are; other numpy
  scalars (``np.datetime64``, complex) are refused: convert them with ``v.item()``.
* Type expressions are normalised first (``orcapod.types.arrays.normalize_type``), so
  ``NDArray[np.float32]`` and ``Annotated[...]`` declarations work wherever a type is taken.
"""

from __future__ import annotations

import datetime as dt
import typing
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod._arrow_without_pandas import column_numpy
from orcapod.data.timestamps import UTC_TIMESTAMP, check_time_zones
from orcapod.data.value_types import check_values, is_optional, strip_optional
from orcapod.errors import SchemaError
from orcapod.hashing.arrow_arrays import (
    array_type_of,
    arrays_to_arrow,
    arrow_to_arrays,
    arrow_type_for,
)
from orcapod.hashing.arrow_hashing import PATH_STRUCT_TYPE, is_path_struct
from orcapod.types import ArrayType, Schema
from orcapod.types.arrays import normalize_type

__all__ = [
    "arrow_schema_to_schema",
    "arrow_to_python_type",
    "column_to_pylist",
    "columns_to_table",
    "infer_schema",
    "needs_python_values",
    "python_to_arrow_type",
    "rows_to_table",
    "schema_to_arrow",
    "table_to_pylist",
    "with_large_types",
]

_SCALARS: dict[Any, pa.DataType] = {
    bool: pa.bool_(),
    int: pa.int64(),
    float: pa.float64(),
    str: pa.large_string(),
    bytes: pa.large_binary(),
    dt.datetime: UTC_TIMESTAMP,
    dt.date: pa.date32(),
    dt.time: pa.time64("us"),
    dt.timedelta: pa.duration("us"),
    Decimal: pa.decimal128(38, 18),
}


def python_to_arrow_type(tp: Any) -> pa.DataType:
    """Arrow type of a Python type expression (optional-ness is the field's, not the type's)."""
    return _arrow_type(normalize_type(tp), in_dict=False)


def _arrow_type(tp: Any, in_dict: bool) -> pa.DataType:
    tp = strip_optional(tp)
    if tp in _SCALARS:
        return _SCALARS[tp]
    if isinstance(tp, type) and issubclass(tp, Path):
        return PATH_STRUCT_TYPE
    if isinstance(tp, ArrayType):
        if in_dict:
            raise SchemaError(
                f"arrays as dict values ({tp!r}) are not supported; give each array its own "
                "column or use a list of arrays"
            )
        return arrow_type_for(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (list, Sequence, tuple) and args:
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise SchemaError(f"{tp!r}: only homogeneous tuple[T, ...] is supported; use list[T]")
        item = args[0]
        return pa.large_list(pa.field("item", _arrow_type(item, in_dict), is_optional(item)))
    if origin in (dict, Mapping) and len(args) == 2:
        key, value = args
        if strip_optional(key) is not str:
            raise SchemaError(f"{tp!r}: dict keys must be str")
        return pa.map_(pa.large_string(), pa.field("value", _arrow_type(value, True), True))
    raise SchemaError(
        f"type {tp!r} is not supported; use int, float, bool, str, bytes, datetime, date, time, "
        "timedelta, Decimal, Path, numpy arrays (NDArray[...]), list[T], dict[str, T] or "
        "T | None"
    )


def arrow_to_python_type(arrow_type: pa.DataType) -> Any:
    """Python type of an Arrow type (without the ``| None``; see module docstring)."""
    array_type = array_type_of(arrow_type)
    if array_type is not None:
        return array_type
    t = pa.types
    if t.is_boolean(arrow_type):
        return bool
    if t.is_integer(arrow_type):
        return int
    if t.is_floating(arrow_type):
        return float
    if t.is_string(arrow_type) or t.is_large_string(arrow_type) or t.is_string_view(arrow_type):
        return str
    if (
        t.is_binary(arrow_type)
        or t.is_large_binary(arrow_type)
        or t.is_fixed_size_binary(arrow_type)
        or t.is_binary_view(arrow_type)
    ):
        return bytes
    if t.is_timestamp(arrow_type) or t.is_date64(arrow_type):
        return dt.datetime if t.is_timestamp(arrow_type) else dt.date
    if t.is_date32(arrow_type):
        return dt.date
    if t.is_time(arrow_type):
        return dt.time
    if t.is_duration(arrow_type):
        return dt.timedelta
    if t.is_decimal(arrow_type):
        return Decimal
    if t.is_dictionary(arrow_type):
        return arrow_to_python_type(arrow_type.value_type)
    if is_path_struct(arrow_type):
        return Path
    if t.is_list(arrow_type) or t.is_large_list(arrow_type) or t.is_fixed_size_list(arrow_type):
        item = arrow_to_python_type(arrow_type.value_type)
        return list[item]  # type: ignore[valid-type]
    if t.is_map(arrow_type):
        value = arrow_to_python_type(arrow_type.item_type)
        return dict[str, value]  # type: ignore[valid-type]
    raise SchemaError(f"Arrow type {arrow_type} has no orcapod Python type")


def schema_to_arrow(schema: Mapping[str, Any]) -> pa.Schema:
    """Arrow schema of a Python schema; ``T | None`` fields are nullable, others not."""
    fields = []
    for name, tp in schema.items():
        try:
            fields.append(pa.field(name, python_to_arrow_type(tp), nullable=is_optional(tp)))
        except SchemaError as err:
            raise SchemaError(f"column {name!r}: {err}") from err
    return pa.schema(fields)


def arrow_schema_to_schema(arrow_schema: pa.Schema) -> Schema:
    """Python schema of an Arrow schema, without the data: a field is ``T | None`` iff the
    Arrow field is nullable (``table_schema`` reads it from the data)."""
    fields: dict[str, Any] = {}
    for field in arrow_schema:
        try:
            tp = arrow_to_python_type(field.type)
        except SchemaError as err:
            raise SchemaError(f"column {field.name!r}: {err}") from err
        fields[field.name] = tp | None if field.nullable else tp
    return Schema(fields)


def _large_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_string(t) or pa.types.is_string_view(t):
        return pa.large_string()
    if pa.types.is_binary(t) or pa.types.is_binary_view(t):
        return pa.large_binary()
    return t


def with_large_types(table: pa.Table) -> pa.Table:
    """The table with its string and binary columns cast to their large forms, the types
    orcapod builds; other columns (lists, arrays, structs) are unchanged."""
    schema = pa.schema([f.with_type(_large_type(f.type)) for f in table.schema])
    return table if schema.equals(table.schema) else table.cast(schema)


def table_schema(table: pa.Table, infer_nullable: bool = True) -> Schema:
    """Python schema of a table: a column is ``T | None`` iff it holds nulls (with
    ``infer_nullable=False``: iff its Arrow field is nullable); list items and dict values are
    ``T | None`` iff the column holds a null one, whatever ``infer_nullable`` says."""
    fields: dict[str, Any] = {}
    for field in table.schema:
        column = table.column(field.name)
        try:
            tp = _type_of_data(field.type, column.chunks)
        except SchemaError as err:
            raise SchemaError(f"column {field.name!r}: {err}") from err
        nullable = column.null_count > 0 if infer_nullable else field.nullable
        fields[field.name] = tp | None if nullable else tp
    return Schema(fields)


def _type_of_data(arrow_type: pa.DataType, chunks: Sequence[pa.Array]) -> Any:
    """``arrow_to_python_type``, with list items and dict values made ``T | None`` where
    ``chunks`` hold a null one (Arrow marks item fields nullable whatever they hold)."""
    t = pa.types
    array_type = array_type_of(arrow_type)
    if array_type is not None:
        return array_type
    if t.is_map(arrow_type):
        entries = pa.list_(pa.struct([arrow_type.key_field, arrow_type.item_field]))
        values = [_list_items(chunk.cast(entries)).flatten()[1] for chunk in chunks]
        value = _type_of_data(arrow_type.item_type, values)
        return dict[str, _optional_if_null(value, values)]  # type: ignore[misc]
    if t.is_list(arrow_type) or t.is_large_list(arrow_type) or t.is_fixed_size_list(arrow_type):
        items = [_list_items(chunk) for chunk in chunks]
        item = _type_of_data(arrow_type.value_type, items)
        return list[_optional_if_null(item, items)]  # type: ignore[misc]
    return arrow_to_python_type(arrow_type)


def _list_items(chunk: pa.Array) -> pa.Array:
    """The items of the valid lists of a list chunk. ``flatten`` alone is fast unless null
    lists cover values (it then goes value by value), so those lists are dropped first."""
    if chunk.null_count:
        covered = True
        if not pa.types.is_fixed_size_list(chunk.type):
            lengths = np.diff(column_numpy(chunk.offsets))
            covered = bool(lengths[column_numpy(chunk.is_null())].any())
        if covered:
            chunk = chunk.filter(chunk.is_valid())
    return chunk.flatten()


def _optional_if_null(tp: Any, chunks: Sequence[pa.Array]) -> Any:
    return tp | None if any(chunk.null_count for chunk in chunks) else tp


# Inference ------------------------------------------------------------------------------


def _infer_value_type(values: Iterable[Any], column: str) -> Any:
    kinds: set[Any] = set()
    has_none = False
    items: list[Any] = []
    dict_values: list[Any] = []
    arrays: list[np.ndarray[Any, Any]] = []
    stamps: list[dt.datetime] = []
    for v in values:
        if v is None:
            has_none = True
            continue
        kind = _scalar_kind(v, column)
        kinds.add(kind)
        if kind is np.ndarray:
            arrays.append(v)
        elif kind is dt.datetime:
            stamps.append(v)
        elif kind is list:
            items.extend(v)
        elif kind is dict:
            if not all(isinstance(k, str) for k in v):
                raise SchemaError(f"column {column!r}: dict keys must be str, got {v!r}")
            dict_values.extend(v.values())
    if kinds == {int, float}:
        kinds = {float}
    if not kinds:
        raise SchemaError(
            f"column {column!r} has only None values, so its type cannot be inferred; "
            "pass a schema for it"
        )
    if len(kinds) > 1:
        names = sorted(getattr(k, "__name__", str(k)) for k in kinds)
        raise SchemaError(
            f"column {column!r} mixes value types {names}; make the values one type "
            "or pass a schema"
        )
    (kind,) = kinds
    check_time_zones(stamps, column)
    if kind is np.ndarray:
        result: Any = _infer_array_type(arrays, column)
    elif kind is list:
        if not items:
            raise SchemaError(
                f"column {column!r} holds only empty lists, so the item type cannot be inferred;"
                " pass a schema for it"
            )
        result = list[_infer_value_type(items, f"{column}[]")]  # type: ignore[misc]
    elif kind is dict:
        if not dict_values:
            raise SchemaError(f"column {column!r} holds only empty dicts; pass a schema for it")
        result = dict[str, _infer_value_type(dict_values, f"{column}{{}}")]  # type: ignore[misc]
    else:
        result = kind
    return result | None if has_none else result


def _infer_array_type(arrays: Sequence[np.ndarray[Any, Any]], column: str) -> ArrayType:
    dtypes = sorted({a.dtype.newbyteorder("=").name for a in arrays})
    if len(dtypes) > 1:
        raise SchemaError(
            f"column {column!r} holds arrays of dtypes {dtypes}; convert them to one dtype "
            "(.astype) or pass a schema"
        )
    try:
        shapes = {a.shape for a in arrays}
        if len({len(s) for s in shapes}) > 1:
            return ArrayType(dtypes[0])
        dims = tuple(
            dim[0] if len(set(dim)) == 1 and dim[0] > 0 else None
            for dim in zip(*shapes, strict=True)
        )
        return ArrayType(dtypes[0], dims)
    except SchemaError as err:
        raise SchemaError(f"column {column!r}: {err}") from err


def _scalar_kind(v: Any, column: str) -> Any:
    if isinstance(v, np.ndarray):
        return np.ndarray
    if isinstance(v, bool):
        return bool
    if isinstance(v, int):
        return int
    if isinstance(v, float):
        return float
    if isinstance(v, str):
        return str
    if isinstance(v, (bytes, bytearray)):
        return bytes
    if isinstance(v, dt.datetime):
        return dt.datetime
    if isinstance(v, dt.date):
        return dt.date
    if isinstance(v, dt.time):
        return dt.time
    if isinstance(v, dt.timedelta):
        return dt.timedelta
    if isinstance(v, Decimal):
        return Decimal
    if isinstance(v, Path):
        return Path
    if isinstance(v, (list, tuple)):
        return list
    if isinstance(v, Mapping):
        return dict
    if isinstance(v, np.generic):  # np.float64 and np.str_ are float and str, seen above
        for numpy_kind, kind in ((np.bool_, bool), (np.integer, int), (np.floating, float)):
            if isinstance(v, numpy_kind):
                return kind
        raise SchemaError(
            f"column {column!r}: numpy scalars of type {type(v).__name__} are not supported; "
            "convert them with v.item() (numpy ints, floats and bools are taken as they are)"
        )
    raise SchemaError(
        f"column {column!r}: values of type {type(v).__name__} are not supported; use int, "
        "float, bool, str, bytes, datetime, date, time, timedelta, Decimal, Path, numpy "
        "arrays, lists or dicts of those"
    )


def infer_schema(
    rows: Sequence[Mapping[str, Any]], overrides: Mapping[str, Any] | None = None
) -> Schema:
    """Schema of a list of row dicts; ``overrides`` fixes the type of some columns."""
    overrides = dict(overrides or {})
    names: dict[str, None] = {}
    for row in rows:
        for k in row:
            names.setdefault(k, None)
    for k in overrides:
        names.setdefault(k, None)
    fields: dict[str, Any] = {}
    for name in names:
        if name in overrides:
            fields[name] = normalize_type(overrides[name])  # (values: ``check_values``)
        else:
            fields[name] = _infer_value_type((row.get(name) for row in rows), name)
    return Schema(fields)


# Values -----------------------------------------------------------------------------------


def _needs_conversion(tp: Any) -> bool:
    tp = strip_optional(tp)
    if isinstance(tp, ArrayType):
        return True
    if isinstance(tp, type):
        return issubclass(tp, Path)
    args = typing.get_args(tp)
    return typing.get_origin(tp) in (dict, Mapping) or any(_needs_conversion(a) for a in args)


def _to_arrow_value(value: Any, tp: Any) -> Any:
    """Convert a Python value to what ``pa.array`` accepts for ``tp`` (only Paths/dicts differ)."""
    if value is None:
        return None
    tp = strip_optional(tp)
    if isinstance(tp, type) and issubclass(tp, Path):
        return {"path": str(value)}
    origin = typing.get_origin(tp)
    if origin in (list, Sequence, tuple):
        (item,) = typing.get_args(tp)[:1]
        return [_to_arrow_value(v, item) for v in value]
    if origin in (dict, Mapping):
        vt = typing.get_args(tp)[1]
        return [(k, _to_arrow_value(v, vt)) for k, v in value.items()]
    return value


def _holds_arrays(tp: Any) -> bool:
    tp = strip_optional(tp)
    if isinstance(tp, ArrayType):
        return True
    return typing.get_origin(tp) in (list, Sequence, tuple) and _holds_arrays(
        typing.get_args(tp)[0]
    )


def _arrays_to_arrow(
    values: Sequence[Any], tp: Any, arrow_type: pa.DataType, where: str
) -> pa.Array:
    """An Arrow array of ``tp`` (an array type, or lists of them) from Python values."""
    inner = strip_optional(tp)
    if isinstance(inner, ArrayType):
        return arrays_to_arrow(values, inner, where)
    item_tp = typing.get_args(inner)[0]
    lengths = np.zeros(len(values), dtype=np.int64)
    items: list[Any] = []
    for i, value in enumerate(values):
        if value is None:
            continue
        if not isinstance(value, (list, tuple)):
            raise SchemaError(f"{where}, row {i}: expected a list of arrays, got {value!r:.60}")
        lengths[i] = len(value)
        items.extend(value)
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    child = _arrays_to_arrow(items, item_tp, arrow_type.value_type, f"{where}[]")
    mask = pa.array([v is None for v in values], pa.bool_()) if None in values else None
    return pa.LargeListArray.from_arrays(pa.array(offsets), child, type=arrow_type, mask=mask)


def _arrow_arrays_to_python(arr: pa.Array) -> list[Any]:
    """Python values of an array column or of lists of arrays (one chunk)."""
    if array_type_of(arr.type) is not None:
        return arrow_to_arrays(arr)
    offsets = column_numpy(arr.offsets)
    items = _arrow_arrays_to_python(arr.values)
    valid = column_numpy(arr.is_valid())
    return [items[offsets[i] : offsets[i + 1]] if valid[i] else None for i in range(len(arr))]


def rows_to_table(rows: Sequence[Mapping[str, Any]], schema: Mapping[str, Any]) -> pa.Table:
    """Arrow table of row dicts with the given Python schema (missing keys become null)."""
    return columns_to_table({n: [row.get(n) for row in rows] for n in schema}, schema)


def columns_to_table(columns: Mapping[str, Sequence[Any]], schema: Mapping[str, Any]) -> pa.Table:
    """Arrow table of per-column Python values with the given Python schema (the same
    conversion as ``rows_to_table``; every column of ``schema`` must be given)."""
    arrow_schema = schema_to_arrow(schema)
    arrays = []
    for field in arrow_schema:
        tp = normalize_type(schema[field.name])
        values = columns[field.name]
        if _holds_arrays(tp):
            arrays.append(_arrays_to_arrow(values, tp, field.type, f"column {field.name!r}"))
        else:
            check_values(values, tp, field.name)
            if _needs_conversion(tp):
                values = [_to_arrow_value(v, tp) for v in values]
            try:
                arrays.append(pa.array(values, type=field.type))
            except (
                pa.ArrowInvalid,
                pa.ArrowTypeError,
                TypeError,
                ValueError,
                OverflowError,
            ) as err:
                raise SchemaError(
                    f"column {field.name!r}: values do not fit type {tp!r} ({err}); fix the "
                    "values or the schema"
                ) from err
        if not field.nullable and arrays[-1].null_count:
            raise SchemaError(
                f"column {field.name!r} holds None but its type {tp!r} is not optional; "
                f"declare it as {tp!r} | None or fill the missing values"
            )
    return pa.Table.from_arrays(arrays, schema=arrow_schema)


def _from_arrow_value(value: Any, tp: Any) -> Any:
    if value is None:
        return None
    tp = strip_optional(tp)
    if isinstance(tp, type) and issubclass(tp, Path):
        return Path(value["path"])
    origin = typing.get_origin(tp)
    if origin is list:
        (item,) = typing.get_args(tp)
        if _needs_conversion(item):
            return [_from_arrow_value(v, item) for v in value]
        return value
    if origin is dict:
        vt = typing.get_args(tp)[1]
        return {k: _from_arrow_value(v, vt) for k, v in value}
    return value


def _arrow_holds_arrays(t: pa.DataType) -> bool:
    if array_type_of(t) is not None:
        return True
    return (pa.types.is_list(t) or pa.types.is_large_list(t)) and _arrow_holds_arrays(t.value_type)


def needs_python_values(arrow_type: pa.DataType) -> bool:
    """Whether a column of ``arrow_type`` holds values that Arrow's own ``to_pylist`` /
    ``to_pandas`` do not give as orcapod's Python values (arrays, Paths, dicts)."""
    if array_type_of(arrow_type) is not None:
        return True
    try:
        return _needs_conversion(arrow_to_python_type(arrow_type))
    except SchemaError:
        return False


def column_to_pylist(column: pa.Array | pa.ChunkedArray, tp: Any | None = None) -> list[Any]:
    """Python values of an Arrow column, Paths, dicts and numpy arrays restored."""
    if _arrow_holds_arrays(column.type):
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        return [v for chunk in chunks for v in _arrow_arrays_to_python(chunk)]
    if tp is None:
        tp = arrow_to_python_type(column.type)
    values: list[Any] = column.to_pylist()
    if _needs_conversion(tp):
        return [_from_arrow_value(v, tp) for v in values]
    return values


def table_to_pylist(
    table: pa.Table, schema: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Row dicts of a table, Paths and dicts restored (vectorised per column, not per cell)."""
    names = table.column_names
    cols = [
        column_to_pylist(table.column(n), None if schema is None else schema.get(n)) for n in names
    ]
    return [dict(zip(names, vals, strict=True)) for vals in zip(*cols, strict=True)]
