"""How the SQL record stores hold canonical Arrow columns, per SQL dialect.

Every column keeps its canonical Arrow type (``orcapod.databases.records``) in the store's
catalog, so reads give back exactly the types the other backends return; the SQL column holds
the values in the closest native type:

=========================  ====================  ==============================================
canonical Arrow type       PostgreSQL            SQLite
=========================  ====================  ==============================================
``bool``                   ``BOOLEAN``           ``INTEGER`` (0 / 1)
``int8`` / ``int16``       ``SMALLINT``          ``INTEGER``
``int32``                  ``INTEGER``           ``INTEGER``
``int64``                  ``BIGINT``            ``INTEGER``
``float32``                ``REAL``              ``REAL`` (the float32 value, widened exactly)
``float64``                ``DOUBLE PRECISION``  ``REAL``
``decimal128(p, s)``       ``NUMERIC(p, s)``     ``TEXT`` (the value with exactly ``s`` decimals)
``string``                 ``TEXT``              ``TEXT``
``binary``                 ``BYTEA``             ``BLOB``
``date32``                 ``DATE``              ``INTEGER`` (days since 1970-01-01)
``timestamp[us]``          ``TIMESTAMP``         ``INTEGER`` (microseconds since the epoch)
``timestamp[us, UTC]``     ``TIMESTAMPTZ``       ``INTEGER`` (microseconds since the epoch, UTC)
lists, structs, maps       ``BYTEA``             ``BLOB``
=========================  ====================  ==============================================

Decision for nested values (lists, structs, maps): SQL has no type that holds them exactly in
both databases (JSON loses binary, decimal and timestamp values and the difference between
``int32`` and ``int64``), so each value is stored as the Arrow IPC message of a one-row record
batch of the column's canonical type, and decoded with that type from the catalog. It is exact
for every canonical type; it costs a few microseconds per nested value, and such columns cannot
be constrained in lookups (the same rule as on every backend). SQLite cannot store NaN
(it becomes NULL); a float column holding NaN reads back null there.

``Dialect`` carries the per-database differences (SQL types, literals, how a transaction
starts); ``to_wire`` / ``from_wire`` convert whole Arrow columns with vectorised casts.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from orcapod.errors import InputValidationError

__all__ = [
    "POSTGRESQL",
    "SQLITE",
    "Dialect",
    "column_list",
    "from_wire",
    "literal_list",
    "quote_identifier",
    "quoted_texts",
    "sql_name",
    "to_wire",
]


@dataclass(frozen=True)
class Dialect:
    """What differs between the SQL databases the record stores speak to."""

    name: str
    #: the statement that opens a write transaction (takes the write lock at once on SQLite)
    begin_write: str
    #: a parameter placeholder in a statement with one parameter
    placeholder: str
    binary_type: str
    #: the longest identifier in bytes (None: no limit)
    max_identifier: int | None = None

    @property
    def is_postgresql(self) -> bool:
        return self.name == "postgresql"

    def sql_type(self, dtype: pa.DataType) -> str:
        """The SQL column type that holds values of the canonical type ``dtype``."""
        t = pa.types
        if t.is_nested(dtype):
            return self.binary_type
        if self.is_postgresql:
            if t.is_boolean(dtype):
                return "BOOLEAN"
            if t.is_int8(dtype) or t.is_int16(dtype):
                return "SMALLINT"
            if t.is_int32(dtype):
                return "INTEGER"
            if t.is_int64(dtype):
                return "BIGINT"
            if t.is_float32(dtype):
                return "REAL"
            if t.is_float64(dtype):
                return "DOUBLE PRECISION"
            if t.is_decimal(dtype):
                return f"NUMERIC({dtype.precision}, {dtype.scale})"
            if t.is_string(dtype):
                return "TEXT"
            if t.is_binary(dtype):
                return "BYTEA"
            if t.is_date32(dtype):
                return "DATE"
            if t.is_timestamp(dtype):
                return "TIMESTAMPTZ" if dtype.tz else "TIMESTAMP"
        else:
            if t.is_floating(dtype):
                return "REAL"
            if t.is_string(dtype) or t.is_decimal(dtype):
                return "TEXT"
            if t.is_binary(dtype):
                return "BLOB"
            if t.is_boolean(dtype) or t.is_integer(dtype) or t.is_temporal(dtype):
                return "INTEGER"
        raise InputValidationError(f"No {self.name} column type for Arrow type {dtype}.")

    def wire_type(self, dtype: pa.DataType) -> pa.DataType:
        """The Arrow type the driver reads and writes for a column of canonical ``dtype``."""
        t = pa.types
        if t.is_nested(dtype):
            return pa.binary()
        if self.is_postgresql:
            return pa.int16() if t.is_int8(dtype) else dtype
        if t.is_boolean(dtype) or t.is_integer(dtype) or t.is_temporal(dtype):
            return pa.int64()
        if t.is_floating(dtype):
            return pa.float64()
        if t.is_decimal(dtype):
            return pa.string()
        return dtype


SQLITE = Dialect("sqlite", begin_write="BEGIN IMMEDIATE", placeholder="?", binary_type="BLOB")
POSTGRESQL = Dialect(
    "postgresql", begin_write="BEGIN", placeholder="$1", binary_type="BYTEA", max_identifier=63
)


def quote_identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier (any text, quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def sql_name(name: str, dialect: Dialect) -> str:
    """The SQL column name of the Arrow column ``name``: the name itself, or - when it is longer
    than the database allows (PostgreSQL: 63 bytes, which it would silently truncate, so two
    long names could meet) - its first 40 bytes, ``_`` and 16 hex digits of its SHA-256."""
    limit = dialect.max_identifier
    encoded = name.encode("utf-8")
    if limit is None or len(encoded) <= limit:
        return name
    head = encoded[:40].decode("utf-8", errors="ignore")
    return f"{head}_{hashlib.sha256(encoded).hexdigest()[:16]}"


# ------------------------------------------------------------------ column conversion


def _encode_nested(column: pa.Array) -> pa.Array:
    """Each value as the IPC message of a one-row record batch (null stays null)."""
    out: list[bytes | None] = []
    valid = column.is_valid().to_pylist()
    for index, ok in enumerate(valid):
        if not ok:
            out.append(None)
            continue
        one = pa.RecordBatch.from_arrays([column.slice(index, 1)], ["v"])
        out.append(one.serialize().to_pybytes())
    return pa.array(out, type=pa.binary())


def _decode_nested(column: pa.Array, dtype: pa.DataType) -> pa.Array:
    schema = pa.schema([pa.field("v", dtype)])
    empty = pa.nulls(1, dtype)
    parts: list[pa.Array] = []
    for value in column.to_pylist():
        if value is None:
            parts.append(empty)
        else:
            parts.append(pa.ipc.read_record_batch(pa.py_buffer(value), schema).column(0))
    if not parts:
        return pa.array([], type=dtype)
    return pa.concat_arrays(parts)


def _encode(column: pa.Array, dtype: pa.DataType, dialect: Dialect) -> pa.Array:
    t = pa.types
    if t.is_nested(dtype):
        return _encode_nested(column)
    wire = dialect.wire_type(dtype)
    if wire.equals(dtype):
        return column
    if t.is_date32(dtype):
        return column.cast(pa.int32()).cast(pa.int64())
    if t.is_timestamp(dtype):
        return column.cast(pa.int64())
    return column.cast(wire)


def to_wire(table: pa.Table, dialect: Dialect) -> pa.Table:
    """``table`` (canonical types) with every column in the type its SQL column takes."""
    arrays = []
    for field in table.schema:
        column = table.column(field.name).combine_chunks()
        arrays.append(_encode(column, field.type, dialect))
    return pa.Table.from_arrays(arrays, names=table.column_names)


def _decode(column: pa.Array, dtype: pa.DataType, dialect: Dialect) -> pa.Array:
    t = pa.types
    if len(column) == column.null_count:
        return pa.nulls(len(column), dtype)
    if isinstance(column.type, pa.BaseExtensionType):  # PostgreSQL NUMERIC arrives as text
        column = column.storage
    if t.is_nested(dtype):
        return _decode_nested(column.cast(pa.binary()), dtype)
    if t.is_date32(dtype) and not dialect.is_postgresql:
        return column.cast(pa.int64()).cast(pa.int32()).cast(pa.date32())
    if t.is_timestamp(dtype) and not dialect.is_postgresql:
        return column.cast(pa.int64()).cast(dtype)
    if t.is_timestamp(dtype) and not column.type.equals(dtype):
        return column.cast(pa.timestamp("us", tz=column.type.tz)).cast(dtype)
    return column.cast(dtype)


def from_wire(table: pa.Table, schema: pa.Schema, dialect: Dialect) -> pa.Table:
    """Rows read from SQL back in their canonical types (``schema`` holds every column of
    ``table``)."""
    arrays = []
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        arrays.append(_decode(column, schema.field(name).type, dialect))
    return pa.Table.from_arrays(
        arrays, schema=pa.schema([schema.field(n) for n in table.column_names])
    )


# ------------------------------------------------------------------ literals


def quoted_texts(texts: pa.Array) -> pa.Array:
    """``texts`` as SQL string literals: each in single quotes, its quotes doubled."""
    escaped = pc.replace_substring(texts.cast(pa.string()), "'", "''")
    quote = pa.scalar("'", pa.string())  # typed: inferring a type would load pandas
    return pc.binary_join_element_wise(quote, escaped, quote, pa.scalar("", pa.string()))


def _literals(values: pa.Array, dtype: pa.DataType, dialect: Dialect) -> list[str]:
    """SQL literals of ``values`` (non-null, canonical ``dtype``) matching the stored form."""
    t = pa.types
    if t.is_nested(dtype):
        raise InputValidationError(f"Values of nested type {dtype} cannot be looked up.")
    wire = _encode(values, dtype, dialect)
    pg = dialect.is_postgresql
    if t.is_string(dtype) or (t.is_decimal(dtype) and not pg):
        return list(quoted_texts(wire).to_pylist())
    if t.is_binary(dtype):
        hexes = [bytes(v).hex() for v in wire.to_pylist()]
        if pg:
            return [f"'\\x{h}'::bytea" for h in hexes]
        return [f"X'{h}'" for h in hexes]
    if t.is_boolean(dtype) and pg:
        return ["TRUE" if v else "FALSE" for v in wire.to_pylist()]
    if t.is_integer(wire.type):
        return list(pc.cast(wire, pa.string()).to_pylist())
    if t.is_floating(dtype):
        sql = "REAL" if t.is_float32(dtype) and pg else "DOUBLE PRECISION"
        texts = [repr(float(v)) for v in wire.cast(pa.float64()).to_pylist()]
        if pg:
            return [f"CAST('{text}' AS {sql})" for text in texts]
        # SQLite has no literal for infinities (9e999 overflows to one) and stores NaN as NULL
        special = {"inf": "9e999", "-inf": "-9e999", "nan": "NULL"}
        return [special.get(text, text) for text in texts]
    if t.is_decimal(dtype):
        return [f"CAST('{v}' AS NUMERIC)" for v in wire.to_pylist()]
    if t.is_date32(dtype):
        return [f"DATE '{v.isoformat()}'" for v in wire.to_pylist()]
    if t.is_timestamp(dtype):
        out = []
        for v in wire.to_pylist():
            assert isinstance(v, datetime.datetime)
            if dtype.tz:
                out.append(f"TIMESTAMPTZ '{v.astimezone(datetime.UTC).isoformat()}'")
            else:
                out.append(f"TIMESTAMP '{v.isoformat()}'")
        return out
    raise InputValidationError(f"Values of type {dtype} cannot be looked up.")


def literal_list(values: pa.Array, dtype: pa.DataType, dialect: Dialect) -> str:
    """A comma-separated list of the SQL literals of ``values``."""
    return ", ".join(_literals(values, dtype, dialect))


def column_list(names: Sequence[str], dialect: Dialect | None = None) -> str:
    """The quoted SQL names of the Arrow columns ``names``, comma-separated."""
    if dialect is None:
        return ", ".join(quote_identifier(n) for n in names)
    return ", ".join(quote_identifier(sql_name(n, dialect)) for n in names)
