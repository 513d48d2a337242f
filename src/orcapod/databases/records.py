"""Arrow-side record handling shared by every backend, so all of them behave the same.

* **Canonical storage types.** Every backend stores and returns the same Arrow types: the
  types Delta Lake can hold exactly. Incoming tables are cast to them on write:
  ``large_string``/``string_view`` become ``string``, ``large_binary``/``binary_view``/
  fixed-size binary become ``binary``, all list flavours become ``list<item>``, dictionary
  columns are decoded, timestamps in ``s``/``ms`` become ``us``; every field is nullable.
  Types Delta cannot hold exactly (unsigned integers, ``ns`` timestamps, non-UTC time zones,
  ``null``-typed columns, float16, time, duration, ...) are refused with ``SchemaError``
  naming the column and the cast to apply.
* **Numpy array columns** (fixed-shape tensors and ``orcapod.ndarray``) are stored in the
  Delta-safe layout of ``orcapod.hashing.arrow_arrays`` (lists of values and shapes, with the
  array type in the field metadata ``orcapod.array``) and turned back into their in-memory
  extension types by ``finalize``, so every backend returns them exactly as they were added.
  A column stored with one array type refuses rows of another (``SchemaError``).
* **The record id** is stored in the first column, named ``__record_id`` (``RECORD_ID``); it
  must be a non-null string. On reads ``record_id_column=None`` drops it and a name renames it.
* **Schema evolution.** A new column may appear in a later batch (older rows read back as
  null) and a batch may omit an existing column (its rows read back as null); a column whose
  type differs from the stored one raises ``SchemaError`` naming the column.
* **Reads** (constraints, projections, the returned table) are shared too, in
  ``orcapod.databases.queries``.
* **Arrays of values.** Record ids (``get_records_by_ids``) and constraint values may also be
  a ``pyarrow.Array``/``ChunkedArray`` or a numpy array; these are converted with Arrow casts,
  never through Python objects. Their type must be of the column's kind (strings for ids and
  string columns, integers for integer columns, integers or floats for float columns, ...):
  an integer array is refused for a string column rather than silently cast to text, as a
  Python list of ints would be. Null entries mean ``None`` (match null).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod._lazy import pc
from orcapod.databases.id_index import hash_ids
from orcapod.errors import DuplicateRecordError, FlushError, InputValidationError, SchemaError
from orcapod.hashing.arrow_arrays import (
    ARRAY_METADATA_KEY,
    from_storage,
    holds_arrays,
    storage_field,
    stored_array_type,
    to_storage,
)
from orcapod.types.columns import RECORD_ID

__all__ = [
    "WIDENING",
    "as_arrow",
    "canonical_schema",
    "canonical_table",
    "canonical_type",
    "check_compatible",
    "concat_records",
    "dedupe_batch",
    "drop_clashes",
    "duplicate_message",
    "first_occurrences",
    "is_array",
    "merge_schemas",
    "normalize_ids",
    "prepare_record",
    "prepare_records",
    "raise_flush_outcome",
    "repeated_ids",
    "restore_arrays",
    "value_kind",
]

_MAX_NAMED = 10
_UTC_NAMES = frozenset({"UTC", "utc", "Etc/UTC", "+00:00", "Z"})


def _unsupported(column: str, dtype: pa.DataType, hint: str) -> SchemaError:
    return SchemaError(
        f"Column {column!r} has Arrow type {dtype}, which the databases cannot store exactly; "
        f"{hint}."
    )


def canonical_type(dtype: pa.DataType, column: str) -> pa.DataType:
    """The storage type of ``dtype`` (see the module docstring), or ``SchemaError``."""
    t = pa.types
    if t.is_string(dtype) or t.is_large_string(dtype) or t.is_string_view(dtype):
        return pa.string()
    if (
        t.is_binary(dtype)
        or t.is_large_binary(dtype)
        or t.is_binary_view(dtype)
        or t.is_fixed_size_binary(dtype)
    ):
        return pa.binary()
    if t.is_boolean(dtype) or t.is_signed_integer(dtype) or t.is_date32(dtype):
        return dtype
    if t.is_float32(dtype) or t.is_float64(dtype) or t.is_decimal128(dtype):
        return dtype
    if t.is_timestamp(dtype):
        if dtype.unit == "ns":
            raise _unsupported(column, dtype, "cast it to pa.timestamp('us') first")
        if dtype.tz is not None and dtype.tz not in _UTC_NAMES:
            raise _unsupported(column, dtype, "convert it to UTC (pa.timestamp('us', tz='UTC'))")
        return pa.timestamp("us", tz=None if dtype.tz is None else "UTC")
    if t.is_dictionary(dtype):
        return canonical_type(dtype.value_type, column)
    if t.is_list(dtype) or t.is_large_list(dtype) or t.is_fixed_size_list(dtype):
        return pa.list_(pa.field("item", canonical_type(dtype.value_type, column)))
    if t.is_list_view(dtype) or t.is_large_list_view(dtype):
        return pa.list_(pa.field("item", canonical_type(dtype.value_type, column)))
    if t.is_struct(dtype):
        if dtype.num_fields == 0:
            raise _unsupported(column, dtype, "give the struct at least one field")
        fields = [dtype.field(i) for i in range(dtype.num_fields)]
        return pa.struct([pa.field(f.name, canonical_type(f.type, column)) for f in fields])
    if t.is_map(dtype):
        return pa.map_(
            canonical_type(dtype.key_type, column), canonical_type(dtype.item_type, column)
        )
    if t.is_null(dtype):
        raise _unsupported(column, dtype, "cast the all-null column to the type it should hold")
    if t.is_unsigned_integer(dtype):
        raise _unsupported(column, dtype, "cast it to a signed integer type such as int64")
    raise _unsupported(
        column,
        dtype,
        "cast it to a bool, integer, float, decimal, string, "
        "binary, date32, timestamp('us'), list, struct or map type",
    )


def _canonical_field(field: pa.Field) -> pa.Field:
    if holds_arrays(field.type):
        return storage_field(field.name, field.type)
    array_meta = (field.metadata or {}).get(ARRAY_METADATA_KEY)
    metadata = None if array_meta is None else {ARRAY_METADATA_KEY: array_meta}
    return pa.field(field.name, canonical_type(field.type, field.name), metadata=metadata)


def canonical_schema(schema: pa.Schema) -> pa.Schema:
    """The storage schema of ``schema``: canonical types, every field nullable, no metadata
    but the ``orcapod.array`` type of array columns."""
    names = schema.names
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise SchemaError(f"Column names {dupes} appear more than once; rename them.")
    if "" in names:
        raise SchemaError("A column has an empty name; give every column a name.")
    return pa.schema([_canonical_field(f) for f in schema])


def canonical_table(table: pa.Table) -> pa.Table:
    """``table`` cast to its canonical schema (a no-op when it already has it)."""
    target = canonical_schema(table.schema)
    if table.schema.equals(target, check_metadata=True):
        return table
    for index, field in enumerate(table.schema):
        if holds_arrays(field.type):
            column = pa.chunked_array(
                [to_storage(chunk) for chunk in table.column(index).chunks],
                type=target.field(index).type,
            )
            table = table.set_column(index, target.field(index), column)
    return table.cast(target)


def restore_arrays(table: pa.Table) -> pa.Table:
    """Array columns of a stored table (``orcapod.array`` metadata) in their in-memory types."""
    for index, field in enumerate(table.schema):
        stored = stored_array_type(field)
        if stored is None:
            continue
        array_type, depth = stored
        chunks = [from_storage(chunk, array_type, depth) for chunk in table.column(index).chunks]
        if not chunks:
            continue
        column = pa.chunked_array(chunks)
        table = table.set_column(index, pa.field(field.name, column.type), column)
    return table


def prepare_records(table: pa.Table, record_id_column: str | None) -> pa.Table:
    """Validate a batch for ``add_records``: the id column (None: the first column) becomes
    the leading ``__record_id`` (non-null strings) and every column gets its canonical type."""
    if not isinstance(table, pa.Table):
        raise InputValidationError(
            f"Records must be a pyarrow.Table, got {type(table).__name__}; convert it with "
            "pa.table(...) or pa.Table.from_batches(...)."
        )
    if record_id_column is None:
        if not table.num_columns:
            raise InputValidationError(
                "The table has no columns; add a string column of record ids and pass its "
                "name as record_id_column."
            )
        record_id_column = table.column_names[0]
    if not isinstance(record_id_column, str) or record_id_column not in table.column_names:
        raise InputValidationError(
            f"Record id column {record_id_column!r} is not in the table (columns: "
            f"{table.column_names}); pass the name of the column holding the record ids."
        )
    if record_id_column != RECORD_ID and RECORD_ID in table.column_names:
        raise InputValidationError(
            f"The table has both {record_id_column!r} and the reserved column {RECORD_ID!r}; "
            f"drop or rename {RECORD_ID!r}."
        )
    ids = table.column(record_id_column)
    if not (
        pa.types.is_string(ids.type)
        or pa.types.is_large_string(ids.type)
        or pa.types.is_string_view(ids.type)
    ):
        raise InputValidationError(
            f"Record id column {record_id_column!r} has type {ids.type}; record ids must be "
            "strings - cast the column with pc.cast(column, pa.string())."
        )
    if ids.null_count:
        raise InputValidationError(
            f"Record id column {record_id_column!r} has {ids.null_count} null value(s); every "
            "record needs an id."
        )
    rest = table.drop_columns([record_id_column])
    out = rest.add_column(0, pa.field(RECORD_ID, ids.type), ids)
    return canonical_table(out)


def prepare_record(record_id: str, table: pa.Table) -> pa.Table:
    """Validate a one-row table for ``add_record`` and attach its id."""
    if not isinstance(record_id, str) or record_id == "":
        raise InputValidationError(f"Record id must be a non-empty string, got {record_id!r}.")
    if not isinstance(table, pa.Table) or table.num_rows != 1:
        got = f"{table.num_rows} rows" if isinstance(table, pa.Table) else type(table).__name__
        raise InputValidationError(
            f"add_record takes a one-row pyarrow.Table, got {got}; use add_records for "
            "several rows."
        )
    if RECORD_ID in table.column_names:
        raise InputValidationError(
            f"The record table already has the reserved column {RECORD_ID!r}; drop it."
        )
    ids = pa.array([record_id], type=pa.string())
    return prepare_records(table.add_column(0, RECORD_ID, ids), RECORD_ID)


def value_kind(dtype: pa.DataType) -> str:
    """The family of ``dtype`` for deciding whether an array of values may be cast to it."""
    t = pa.types
    if t.is_dictionary(dtype):
        return value_kind(dtype.value_type)
    if t.is_string(dtype) or t.is_large_string(dtype) or t.is_string_view(dtype):
        return "string"
    if (
        t.is_binary(dtype)
        or t.is_large_binary(dtype)
        or t.is_binary_view(dtype)
        or t.is_fixed_size_binary(dtype)
    ):
        return "binary"
    if t.is_integer(dtype):
        return "integer"
    if t.is_floating(dtype):
        return "float"
    if t.is_decimal(dtype):
        return "decimal"
    if t.is_timestamp(dtype):
        return "timestamp"
    if t.is_date(dtype):
        return "date"
    if t.is_boolean(dtype):
        return "bool"
    return str(dtype)


WIDENING = {"integer": {"float", "decimal"}}


def as_arrow(values: pa.Array | pa.ChunkedArray | np.ndarray[Any, Any]) -> pa.Array:
    """A numpy array or (chunked) Arrow array as one Arrow array."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise InputValidationError(
                f"Arrays of values must be one-dimensional, got shape {values.shape}; "
                "flatten it with .ravel()."
            )
        return pa.array(values)
    return values


def is_array(values: object) -> bool:
    return isinstance(values, pa.Array | pa.ChunkedArray | np.ndarray)


def normalize_ids(
    ids: Iterable[str] | pa.Array | pa.ChunkedArray | np.ndarray[Any, Any],
) -> pa.Array:
    """Record ids for a lookup, as a string array without nulls or repeats. Arrow and numpy
    arrays are converted without going through Python objects."""
    if isinstance(ids, str):
        raise InputValidationError(
            f"Record ids must be a collection of strings, got the string {ids!r}; write [{ids!r}]."
        )
    try:
        if is_array(ids):
            array = as_arrow(ids)
            if len(array) == 0:
                return pa.array([], type=pa.string())
            if value_kind(array.type) != "string":
                raise InputValidationError(
                    f"Record ids must be strings, got an array of type {array.type}; cast it "
                    "with pc.cast(ids, pa.string())."
                )
        else:
            array = pa.array(list(ids), type=pa.string())
        array = array.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise InputValidationError(f"Record ids must be strings: {err}") from err
    if array.null_count:
        array = array.drop_null()
    return pc.unique(array)


def first_occurrences(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A boolean mask that is True at the first occurrence of each id."""
    indices = pa.array(range(len(ids)), type=pa.int64())
    table = pa.table({"id": ids, "i": indices})
    firsts = table.group_by("id", use_threads=False).aggregate([("i", "min")])
    return pc.is_in(indices, value_set=firsts.column("i_min"))


def repeated_ids(ids: pa.Array | pa.ChunkedArray) -> list[str]:
    """The ids that occur more than once, sorted."""
    counts = pc.value_counts(ids)
    more_than_once = pc.greater(counts.field("counts"), pa.scalar(1, pa.int64()))
    repeated = counts.filter(more_than_once).field("values")
    return sorted(repeated.to_pylist())


def duplicate_message(path: Sequence[str], ids: Collection[str], where: str) -> str:
    shown = sorted(ids)[:_MAX_NAMED]
    more = f" (and {len(ids) - len(shown)} more)" if len(ids) > len(shown) else ""
    return (
        f"Record id(s) {shown}{more} {where} at path {tuple(path)!r}; record ids must be "
        "unique - pass skip_duplicates=True to keep the stored rows and drop the new ones."
    )


def drop_clashes(
    records: pa.Table,
    incoming: list[str],
    clashes: Collection[str],
    key: Sequence[str],
    skip_duplicates: bool,
) -> tuple[pa.Table, list[str]]:
    """``records`` and their ids without the ids that ``clashes`` with stored ones:
    ``DuplicateRecordError`` unless ``skip_duplicates`` (then the stored rows stay)."""
    if not clashes:
        return records, incoming
    if not skip_duplicates:
        raise DuplicateRecordError(duplicate_message(key, clashes, "are already stored"))
    ids = records.column(RECORD_ID)
    keep = pc.invert(pc.is_in(ids, pa.array(list(clashes), ids.type)))
    return records.filter(keep), [i for i in incoming if i not in clashes]


def raise_flush_outcome(
    failures: Mapping[tuple[str, ...], Exception],
    rejected: Mapping[tuple[str, ...], Collection[str]],
) -> None:
    """End a flush: raise ``FlushError`` naming the paths that failed (their rows stay
    pending), else ``DuplicateRecordError`` naming the ids another writer committed first;
    return when neither happened."""
    messages = [
        duplicate_message(k, ids, "were committed first by another writer")
        for k, ids in rejected.items()
    ]
    if failures:
        detail = "; ".join(f"{k!r}: {err}" for k, err in failures.items())
        raise FlushError(
            f"Could not commit the pending rows of path(s) {list(failures)} ({detail}). "
            "The rows stay pending; fix the cause and call flush() again."
            + (" Also: " + " ".join(messages) if messages else "")
        ) from next(iter(failures.values()))
    if messages:
        raise DuplicateRecordError(" ".join(messages))


#: from this many ids a batch's duplicate check first compares their 64-bit hashes (numpy),
#: much cheaper than counting distinct strings; smaller batches count them directly
_HASHED_CHECK_ROWS = 8192


def dedupe_batch(records: pa.Table, path: Sequence[str], skip_duplicates: bool) -> pa.Table:
    """Handle ids repeated inside one batch: error, or keep the first occurrence."""
    ids = records.column(RECORD_ID)
    if len(ids) < 2:
        return records
    if len(ids) >= _HASHED_CHECK_ROWS:  # distinct 64-bit hashes: distinct ids (the usual case)
        hashes = np.sort(hash_ids(ids))
        if bool(np.all(hashes[1:] != hashes[:-1])):
            return records
    # ``unique`` rather than ``count_distinct``: the same answer in half the time (a whole-
    # column hash either way, but the aggregate kernel costs ~0.25 us per id)
    if len(pc.unique(ids)) == len(ids):
        return records
    if not skip_duplicates:
        raise DuplicateRecordError(
            duplicate_message(path, repeated_ids(ids), "appear more than once in the batch")
        )
    return records.filter(first_occurrences(ids))


def merge_schemas(base: pa.Schema | None, incoming: pa.Schema, path: Sequence[str]) -> pa.Schema:
    """``base`` extended with the new columns of ``incoming``; ``SchemaError`` when a column
    present in both has different types."""
    if base is None:
        return incoming
    check_compatible(base, incoming, path)
    extra = [f for f in incoming if base.get_field_index(f.name) < 0]
    return pa.schema(list(base) + extra) if extra else base


def _describe(array: tuple[Any, int] | None, dtype: pa.DataType) -> str:
    if array is None:
        return str(dtype)
    array_type, depth = array
    return "list of " * depth + repr(array_type)


def check_compatible(stored: pa.Schema, incoming: pa.Schema, path: Sequence[str]) -> None:
    for field in incoming:
        index = stored.get_field_index(field.name)
        if index < 0:
            continue
        old_array, new_array = stored_array_type(stored.field(index)), stored_array_type(field)
        if old_array != new_array:
            raise SchemaError(
                f"Column {field.name!r} at path {tuple(path)!r} is stored as "
                f"{_describe(old_array, stored.field(index).type)} but the new rows have "
                f"{_describe(new_array, field.type)}; convert the values or store the rows "
                "under another path."
            )
        if not stored.field(index).type.equals(field.type):
            raise SchemaError(
                f"Column {field.name!r} at path {tuple(path)!r} is stored as "
                f"{stored.field(index).type} but the new rows have {field.type}; cast the "
                f"column to {stored.field(index).type} or store the rows under another path."
            )


def concat_records(tables: Sequence[pa.Table]) -> pa.Table | None:
    """Concatenate batches whose schemas may differ by missing columns (filled with null)."""
    tables = [t for t in tables if t is not None]
    if not tables:
        return None
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="default")
