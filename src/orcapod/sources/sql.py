"""Sources over SQL databases: a SQLite table (or query) and a PostgreSQL table (or query),
read through the ADBC drivers straight into Arrow.

Both read the rows at construction, so a missing table or a bad query fails early with a clear
error, and their content hash is the hash of the rows read, so changed data always changes the
identity. The default ``source_id`` is the table name (stable when rows are added, so the old
rows keep their entry ids), or ``query-<12 hex digits of the query's hash>`` for a query. The
default ``tag_columns`` (``None``) are the table's primary-key columns; a query has none.

Column types come from the database and map to the project's Python types (and so to their
Arrow types, see ``orcapod.data.conversion``):

=================================================  ===========================================
PostgreSQL column type                             Python type
=================================================  ===========================================
``boolean``                                        ``bool``
``smallint``, ``integer``, ``bigint``              ``int``
``real``, ``double precision``                     ``float``
``numeric``                                        ``Decimal`` (at most 38 digits)
``text``, ``varchar``, ``char``, ``json(b)``,      ``str`` (``uuid`` as its canonical text)
``uuid``
``bytea``                                          ``bytes``
``date``                                           ``date``
``timestamp``, ``timestamptz``                     ``datetime`` (UTC; naive values taken as UTC)
``time``                                           ``time``
arrays of the above                                ``list[T]``
=================================================  ===========================================

SQLite stores values by *declared type affinity*, so its map follows SQLite's own affinity
rules on the declared type (case-insensitive): ``BOOL...`` -> ``bool``; containing ``INT`` ->
``int``; ``CHAR``, ``CLOB`` or ``TEXT`` -> ``str``; ``BLOB`` -> ``bytes``; ``REAL``, ``FLOA``
or ``DOUB`` -> ``float``; ``DATE`` -> ``date`` and ``DATETIME`` / ``TIMESTAMP`` ->
``datetime`` (ISO-8601 text); any other declared type (``NUMERIC``, ``DECIMAL``) -> ``float``.
A column without a declared type (e.g. an expression in a query) takes the type of its values;
one holding only NULLs cannot be typed and is refused (cast it in the query). Other types
(``interval``, geometric types, ...) are refused naming the column: cast them in a query.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import uuid
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from orcapod.data.conversion import python_to_arrow_type
from orcapod.databases.sql_drivers import (
    SQLITE_ONE_BATCH,
    connect_postgresql,
    connect_sqlite,
    driver_error,
)
from orcapod.databases.sql_types import column_list, quote_identifier
from orcapod.errors import InputValidationError
from orcapod.sources.base import RootSource

__all__ = ["PostgreSQLTableSource", "SQLiteTableSource"]


def _choose(table_name: str | None, query: str | None, kind: str) -> None:
    if (table_name is None) == (query is None):
        raise InputValidationError(
            f"{kind} needs either a table_name or a query (not both, not neither)."
        )


def _default_id(table_name: str | None, query: str | None) -> str:
    if table_name is not None:
        return table_name
    assert query is not None
    return "query-" + hashlib.sha256(query.encode("utf-8")).hexdigest()[:12]


def _arrow_python_type(column: str, dtype: pa.DataType) -> Any:
    """The Python type of a column the driver returned as ``dtype`` (module docstring)."""
    t = pa.types
    if isinstance(dtype, pa.BaseExtensionType):
        name = dtype.extension_name
        if name in ("arrow.json", "arrow.uuid"):
            return str
        if name == "arrow.opaque" and getattr(dtype, "type_name", "") == "numeric":
            return Decimal
        return _refuse(column, f"the database type {getattr(dtype, 'type_name', name)}")
    if t.is_boolean(dtype):
        return bool
    if t.is_integer(dtype):
        return int
    if t.is_floating(dtype):
        return float
    if t.is_decimal(dtype):
        return Decimal
    if t.is_string(dtype) or t.is_large_string(dtype) or t.is_string_view(dtype):
        return str
    if t.is_binary(dtype) or t.is_large_binary(dtype) or t.is_fixed_size_binary(dtype):
        return bytes
    if t.is_date(dtype):
        return datetime.date
    if t.is_timestamp(dtype):
        return datetime.datetime
    if t.is_time(dtype):
        return datetime.time
    if t.is_list(dtype) or t.is_large_list(dtype):
        return list[_arrow_python_type(column, dtype.value_type)]  # type: ignore[misc]
    return _refuse(column, f"Arrow type {dtype}")


def _refuse(column: str, what: str) -> Any:
    raise InputValidationError(
        f"Column {column!r} has {what}, which has no orcapod type; cast it in a query "
        "(query='SELECT CAST(... AS TEXT) ...')."
    )


def _convert(column: str, values: pa.ChunkedArray, python_type: Any) -> pa.Array:
    """``values`` as the Arrow type of ``python_type``."""
    target = python_to_arrow_type(python_type)
    array = values.combine_chunks()
    if isinstance(array.type, pa.BaseExtensionType):
        if array.type.extension_name == "arrow.uuid":
            texts = [
                None if v is None else str(uuid.UUID(bytes=v)) for v in array.storage.to_pylist()
            ]
            return pa.array(texts, type=target)
        array = array.storage
    if len(array) == array.null_count:
        return pa.nulls(len(array), target)
    try:
        if pa.types.is_timestamp(target) and pa.types.is_timestamp(array.type) and array.type.tz:
            return array.cast(pa.timestamp("us", tz=array.type.tz)).cast(target)
        if pa.types.is_timestamp(target) and pa.types.is_string(array.type):
            return array.cast(pa.timestamp("us")).cast(target)
        return array.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as err:
        raise InputValidationError(
            f"Column {column!r} cannot be read as {python_type}: {err}; cast it in a query."
        ) from err


def _typed(raw: pa.Table, declared: dict[str, Any]) -> pa.Table:
    """``raw`` with every column converted to its Python type's Arrow type; ``declared``
    gives the type of columns whose type is not the one the driver returned."""
    arrays, names = [], []
    for name in raw.column_names:
        column = raw.column(name)
        python_type = declared.get(name)
        if python_type is None:
            python_type = _arrow_python_type(name, column.type)
        arrays.append(_convert(name, column, python_type))
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names)


# ------------------------------------------------------------------ SQLite


def _sqlite_affinity(declared: str) -> Any:
    """The Python type of a SQLite column declared as ``declared`` (None: not declared)."""
    text = declared.upper()
    if not text:
        return None
    if text.startswith("BOOL"):
        return bool
    if "INT" in text:
        return int
    if any(k in text for k in ("CHAR", "CLOB", "TEXT")):
        return str
    if "BLOB" in text:
        return bytes
    if any(k in text for k in ("REAL", "FLOA", "DOUB")):
        return float
    if "DATETIME" in text or "TIMESTAMP" in text:
        return datetime.datetime
    if "DATE" in text:
        return datetime.date
    return float


class SQLiteTableSource(RootSource):
    """A source over a table (or a query) of the SQLite file ``db_path``."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        table_name: str | None = None,
        tag_columns: Iterable[str] | None = None,
        *,
        query: str | None = None,
        source_id: str | None = None,
        record_id_column: str | None = None,
        label: str | None = None,
    ) -> None:
        _choose(table_name, query, "SQLiteTableSource")
        path = Path(db_path).expanduser()
        if not path.is_file():
            raise InputValidationError(f"SQLiteTableSource: no such database file {str(path)!r}")
        conn = connect_sqlite(path)
        try:
            cursor = conn.cursor()
            try:
                cursor.adbc_statement.set_options(**SQLITE_ONE_BATCH)
                raw, declared, keys = _read_sqlite(cursor, table_name, query)
            finally:
                cursor.close()
        except driver_error("sqlite") as err:
            raise InputValidationError(
                f"SQLiteTableSource: cannot read {table_name or query!r} from {str(path)!r}: {err}"
            ) from err
        finally:
            conn.close()
        self.db_path = path
        self.table_name = table_name
        self.query = query
        super().__init__(
            _typed(raw, declared),
            keys if tag_columns is None else tag_columns,
            source_id=source_id if source_id is not None else _default_id(table_name, query),
            record_id_column=record_id_column,
            label=label,
        )


def _read_sqlite(
    cursor: Any, table_name: str | None, query: str | None
) -> tuple[pa.Table, dict[str, Any], list[str]]:
    if table_name is not None:
        cursor.execute(
            "SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view') AND name = "
            + "'"
            + table_name.replace("'", "''")
            + "'"
        )
        if not cursor.fetchone()[0]:
            raise InputValidationError(
                f"SQLiteTableSource: the database has no table {table_name!r}."
            )
        relation = quote_identifier(table_name)
    else:
        cursor.execute(f"CREATE TEMP VIEW orcapod_source AS {query}")
        relation = "orcapod_source"
    cursor.execute(f"PRAGMA table_info({relation})")
    info = cursor.fetch_arrow_table().to_pylist()
    declared = {r["name"]: _sqlite_affinity(r["type"] or "") for r in info}
    keys = [r["name"] for r in sorted(info, key=lambda r: r["pk"]) if r["pk"]]
    cursor.execute(f"SELECT {column_list([r['name'] for r in info])} FROM {relation}")
    raw = cursor.fetch_arrow_table()
    for name, python_type in declared.items():
        column = raw.column(name)
        if python_type is None and column.null_count == len(column):
            raise InputValidationError(
                f"Column {name!r} has no declared type and holds only NULLs, so its type "
                "cannot be known; cast it in the query (CAST(... AS TEXT))."
            )
    return raw, {k: v for k, v in declared.items() if v is not None}, keys


# ------------------------------------------------------------------ PostgreSQL


class PostgreSQLTableSource(RootSource):
    """A source over a table (or a query) of the PostgreSQL database at ``dsn``
    (``postgresql://user:password@host:port/dbname``). ``table_name`` may be
    ``schema.table``."""

    def __init__(
        self,
        dsn: str,
        table_name: str | None = None,
        tag_columns: Iterable[str] | None = None,
        *,
        query: str | None = None,
        source_id: str | None = None,
        record_id_column: str | None = None,
        label: str | None = None,
    ) -> None:
        _choose(table_name, query, "PostgreSQLTableSource")
        conn = connect_postgresql(dsn)
        try:
            cursor = conn.cursor()
            try:
                raw, keys = _read_postgresql(cursor, table_name, query)
            finally:
                cursor.close()
        except driver_error("postgresql") as err:
            raise InputValidationError(
                f"PostgreSQLTableSource: cannot read {table_name or query!r}: {err}"
            ) from err
        finally:
            conn.close()
        self.table_name = table_name
        self.query = query
        super().__init__(
            _typed(raw, {}),
            keys if tag_columns is None else tag_columns,
            source_id=source_id if source_id is not None else _default_id(table_name, query),
            record_id_column=record_id_column,
            label=label,
        )


def _read_postgresql(
    cursor: Any, table_name: str | None, query: str | None
) -> tuple[pa.Table, list[str]]:
    if query is not None:
        cursor.execute(query)
        return cursor.fetch_arrow_table(), []
    assert table_name is not None
    relation = ".".join(quote_identifier(part) for part in table_name.split("."))
    literal = "'" + relation.replace("'", "''") + "'"
    cursor.execute(f"SELECT to_regclass({literal})::oid AS oid")
    oid = cursor.fetchone()[0]
    if oid is None:
        raise InputValidationError(
            f"PostgreSQLTableSource: the database has no table {table_name!r}."
        )
    cursor.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        f"AND a.attnum = ANY(i.indkey) WHERE i.indrelid = {int(oid)} AND i.indisprimary "
        "ORDER BY array_position(i.indkey, a.attnum)"
    )
    keys = [str(row[0]) for row in cursor.fetchall()]
    cursor.execute(f"SELECT * FROM {relation}")
    return cursor.fetch_arrow_table(), keys
