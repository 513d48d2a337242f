"""``SQLArrowDatabase``: the record store over a SQL database (SQLite or PostgreSQL), through
ADBC drivers, so rows travel as Arrow both ways.

Layout. Each record path is one SQL table. A catalog table, ``orcapod_catalog``, maps the
path (stored as the JSON list of its segments, its primary key) to the table's name, its
canonical Arrow schema (Arrow IPC bytes) and its version. Table names are
``orcapod_<last segment, letters and digits only>_<24 hex digits of a SHA-256 of the path>``:
readable, within PostgreSQL's 63-byte limit, and never shared by two paths (the catalog
declares them unique, so even a hash collision fails loudly instead of mixing tables). Column
types are described in ``orcapod.databases.sql_types``; SQL column names are the Arrow names,
except names too long for PostgreSQL (``sql_types.sql_name``).

Writes. Rows are validated and duplicate-checked when added (against pending rows and, by
primary key, against committed ones), buffered per path and committed by ``flush()`` or when a
path holds ``batch_size`` pending rows. One path's rows commit in ONE transaction:

1. the first statement writes the path's catalog row, which takes the path's write lock (a row
   lock on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` takes the database's), so writers of one
   path commit one at a time;
2. new columns are added (``ALTER TABLE ... ADD COLUMN``, nullable);
3. when the path's version shows that nothing was committed since the pending ids were
   checked, the rows are copied straight into the table; otherwise they go through a
   temporary staging table, from which rows whose ids another writer committed meanwhile are
   dropped (and reported when they were added without ``skip_duplicates``: ``flush()``
   commits the rest, then raises ``DuplicateRecordError`` naming them);
4. the catalog's schema and version are updated.

Any failure rolls the whole transaction back, so no half-written batch is ever visible - also
when the process is killed - and the rows stay pending: ``flush()`` raises ``FlushError``
naming the paths. The record id is the table's primary key, so even a bug could not store one
id twice.

Versions. ``committed_version(path)`` is the catalog's per-path counter, bumped by every
commit (-1: no table). ``add_records(..., absent_at=V)`` skips the check against committed rows
when the version is still ``V`` (nothing was committed since the caller's read); otherwise the
ids are checked as usual.

Reads see pending plus committed rows. Lookups by id select by primary key; lookups by column
values put the values in the ``WHERE`` clause (``IN`` lists of literals rendered in the stored
form; beyond ``INLINE_LIMIT`` values, a temporary table the query joins), and the first lookup
by a column creates an index on it (``orcapod_ix_...``), kept for every later process. Columns
are selected by name, never with ``SELECT *``.

Thread safety: one lock per database serialises all work on its connection (views share it).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orcapod.databases.backend import StoringBackend
from orcapod.databases.paths import RecordPath, validate_path
from orcapod.databases.queries import (
    Constraint,
    filter_records,
    normalize_constraints,
    resolve_columns,
    stored_result,
    with_columns,
)
from orcapod.databases.records import (
    concat_records,
    dedupe_batch,
    drop_clashes,
    merge_schemas,
    normalize_ids,
    raise_flush_outcome,
)
from orcapod.databases.sql_drivers import driver_error
from orcapod.databases.sql_types import (
    Dialect,
    column_list,
    from_wire,
    literal_list,
    quote_identifier,
    sql_name,
    to_wire,
)
from orcapod.errors import DatabaseError, InputValidationError
from orcapod.types.columns import RECORD_ID

__all__ = ["CATALOG", "INLINE_LIMIT", "SQLArrowDatabase"]

CATALOG = "orcapod_catalog"
#: value lists longer than this are joined from a temporary table instead of inlined
INLINE_LIMIT = 1000
_ID = quote_identifier(RECORD_ID)
_STAGE = "orcapod_stage"


@dataclass
class _Pending:
    """Rows added to one path and not yet committed."""

    tables: list[pa.Table] = field(default_factory=list)
    rows: int = 0
    ids: set[str] = field(default_factory=set)
    strict_ids: set[str] = field(default_factory=set)
    schema: pa.Schema | None = None
    #: the committed version every pending id was checked against (None: not one version)
    checked_version: int | None = None


@dataclass(frozen=True)
class _Entry:
    """A path's catalog row."""

    table: str
    schema: pa.Schema | None
    version: int


def table_name(key: RecordPath) -> str:
    """The SQL table name of a path (module docstring)."""
    digest = hashlib.sha256(_path_text(key).encode("utf-8")).hexdigest()[:24]
    readable = re.sub(r"[^a-z0-9]", "", key[-1].lower())[:20]
    return f"orcapod_{readable}_{digest}" if readable else f"orcapod_{digest}"


def _path_text(key: RecordPath) -> str:
    return json.dumps(list(key), ensure_ascii=False)


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class SQLArrowDatabase(StoringBackend):
    """Records stored as SQL tables, one per path; see the module docstring."""

    def __init__(self, connect: Callable[[], Any], dialect: Dialect, batch_size: int) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputValidationError(
                f"batch_size must be an int of at least 1, got {batch_size!r}."
            )
        self._dialect = dialect
        self._batch_size = batch_size
        self._lock = threading.RLock()
        self._pending: dict[RecordPath, _Pending] = {}
        self._indexed: set[tuple[str, str]] = set()
        self._error = driver_error(dialect.name)
        self._conn = connect()
        self._cursor = self._conn.cursor()
        self._finalizer = weakref.finalize(self, _close, self._conn, self._cursor)
        self._prepare_cursor(self._cursor)
        self._create_catalog()

    # ------------------------------------------------------------------ connection

    def _prepare_cursor(self, cursor: Any) -> None:
        """Dialect-specific cursor settings (overridden by the SQLite store)."""

    def close(self) -> None:
        """Close the connection (pending rows not flushed are lost)."""
        self._finalizer()

    @property
    def batch_size(self) -> int:
        """Pending rows per path that trigger a commit."""
        return self._batch_size

    def _column(self, name: str) -> str:
        """The quoted SQL name of the Arrow column ``name`` (``sql_types.sql_name``)."""
        return quote_identifier(sql_name(name, self._dialect))

    def _sql_named(self, table: pa.Table) -> pa.Table:
        return table.rename_columns([sql_name(n, self._dialect) for n in table.column_names])

    def _execute(self, sql: str) -> None:
        self._cursor.execute(sql)

    def _query(self, sql: str) -> pa.Table:
        self._cursor.execute(sql)
        table: pa.Table = self._cursor.fetch_arrow_table()
        return table

    def _create_catalog(self) -> None:
        blob = self._dialect.binary_type
        sql = (
            f"CREATE TABLE IF NOT EXISTS {CATALOG} (path TEXT PRIMARY KEY, "
            f"table_name TEXT NOT NULL UNIQUE, arrow_schema {blob}, version BIGINT NOT NULL)"
        )
        with self._lock:
            try:
                self._execute(sql)
            except self._error as err:
                # two processes creating the catalog at once: the loser fails; it exists now
                if not self._has_table(CATALOG):
                    raise DatabaseError(
                        f"Cannot create the catalog table {CATALOG}: {err}; check that the "
                        "database is writable."
                    ) from err

    def _has_table(self, name: str) -> bool:
        if self._dialect.is_postgresql:
            found = self._query(f"SELECT to_regclass({_text(name)}) IS NOT NULL AS found")
        else:
            found = self._query(
                f"SELECT count(*) > 0 AS found FROM sqlite_master WHERE name = {_text(name)}"
            )
        return bool(found.column(0)[0].as_py())

    # ------------------------------------------------------------------ catalog

    def _entry(self, key: RecordPath, lock: bool = False) -> _Entry | None:
        suffix = " FOR UPDATE" if lock and self._dialect.is_postgresql else ""
        found = self._query(
            f"SELECT table_name, arrow_schema, version FROM {CATALOG} "
            f"WHERE path = {_text(_path_text(key))}{suffix}"
        )
        if found.num_rows == 0:
            return None
        name, raw, version = (found.column(i)[0].as_py() for i in range(3))
        schema = None if raw is None else pa.ipc.read_schema(pa.py_buffer(raw))
        return _Entry(str(name), schema, int(version))

    def committed_version(self, path: Sequence[str]) -> int:
        """The number of commits to ``path`` minus one (-1: no table yet); see the module
        docstring for ``absent_at``."""
        key = validate_path(path)
        with self._lock:
            entry = self._guarded(lambda: self._entry(key), key)
            return -1 if entry is None or entry.schema is None else entry.version

    def count_records(self, path: Sequence[str]) -> int | None:
        """``COUNT(*)`` of the committed rows (0: no table); None while rows are pending (some
        may yet be dropped as duplicates at the commit)."""
        key = validate_path(path)
        with self._lock:
            pending = self._pending.get(key)
            if pending is not None and pending.rows:
                return None
            entry = self._guarded(lambda: self._entry(key), key)
            if entry is None or entry.schema is None:
                return 0
            sql = f"SELECT COUNT(*) FROM {quote_identifier(entry.table)}"
            found = self._guarded(lambda: self._query(sql), key)
            return int(found.column(0)[0].as_py())

    def _guarded(self, work: Callable[[], Any], key: RecordPath) -> Any:
        try:
            return work()
        except self._error as err:
            raise DatabaseError(f"A query on path {key!r} failed: {err}") from err

    # ------------------------------------------------------------------ writes

    def _add(
        self, key: RecordPath, records: pa.Table, skip_duplicates: bool, absent_at: int | None
    ) -> None:
        records = dedupe_batch(records, key, skip_duplicates)
        with self._lock:
            entry = self._guarded(lambda: self._entry(key), key)
            stored = None if entry is None else entry.schema
            pending = self._pending.get(key) or _Pending()
            merged = merge_schemas(stored, records.schema, key)
            pending_schema = merge_schemas(pending.schema, records.schema, key)
            merge_schemas(merged, pending_schema, key)
            ids = records.column(RECORD_ID).combine_chunks()
            incoming = ids.to_pylist()
            clashes = pending.ids.intersection(incoming)
            version = -1 if entry is None or entry.schema is None else entry.version
            if version >= 0 and version != absent_at:
                clashes |= self._guarded(lambda: self._committed_ids(entry.table, ids), key)
            records, incoming = drop_clashes(records, incoming, clashes, key, skip_duplicates)
            if records.num_rows == 0:
                return
            if not pending.rows:
                pending.checked_version = version
            elif pending.checked_version != version:
                pending.checked_version = None
            pending.tables.append(records)
            pending.rows += records.num_rows
            pending.ids.update(incoming)
            if not skip_duplicates:
                pending.strict_ids.update(incoming)
            pending.schema = pending_schema
            self._pending[key] = pending
            if pending.rows >= self._batch_size:
                self._flush_paths([key])

    def _committed_ids(self, table: str, ids: pa.Array) -> set[str]:
        """Those of ``ids`` committed in ``table`` (a primary-key lookup)."""
        if len(ids) == 0:
            return set()
        where = self._in_clause(RECORD_ID, ids, pa.string(), "orcapod_ids")
        found = self._query(f"SELECT {_ID} FROM {quote_identifier(table)} WHERE {where}")
        return set(found.column(0).to_pylist())

    def flush(self) -> None:
        with self._lock:
            self._flush_paths([key for key, p in self._pending.items() if p.rows])

    def _flush_paths(self, keys: Sequence[RecordPath]) -> None:
        failures: dict[RecordPath, Exception] = {}
        rejected: dict[RecordPath, set[str]] = {}
        for key in keys:
            try:
                dropped = self._flush_path(key, self._pending[key])
            except (self._error, DatabaseError, InputValidationError) as err:
                failures[key] = err
                continue
            del self._pending[key]
            if dropped:
                rejected[key] = dropped
        raise_flush_outcome(failures, rejected)

    def _flush_path(self, key: RecordPath, pending: _Pending) -> set[str]:
        """Commit ``pending`` in one transaction; return the ids dropped because another
        writer committed them first although they were added without ``skip_duplicates``."""
        batch = concat_records(pending.tables)
        assert batch is not None and pending.schema is not None
        batch = with_columns(batch, pending.schema, pending.schema.names)
        self._execute(self._dialect.begin_write)
        try:
            rejected = self._commit(key, batch, pending)
        except BaseException:
            self._execute("ROLLBACK")
            raise
        self._execute("COMMIT")
        return rejected

    def _commit(self, key: RecordPath, batch: pa.Table, pending: _Pending) -> set[str]:
        path = _text(_path_text(key))
        self._execute(
            f"INSERT INTO {CATALOG} (path, table_name, arrow_schema, version) "
            f"VALUES ({path}, {_text(table_name(key))}, NULL, -1) ON CONFLICT DO NOTHING"
        )
        entry = self._entry(key, lock=True)
        if entry is None:  # the insert hit the unique table name, not the path
            raise DatabaseError(
                f"The table name {table_name(key)!r} of path {key!r} is taken by another path "
                f"in {CATALOG}; store the rows under another path."
            )
        table = quote_identifier(entry.table)
        schema = merge_schemas(entry.schema, batch.schema, key)
        if entry.schema is None:
            columns = ", ".join(
                f"{self._column(f.name)} {self._dialect.sql_type(f.type)}"
                + (" PRIMARY KEY" if f.name == RECORD_ID else "")
                for f in schema
            )
            self._execute(f"CREATE TABLE {table} ({columns})")
        else:
            for f in schema:
                if entry.schema.get_field_index(f.name) < 0:
                    sql_type = self._dialect.sql_type(f.type)
                    self._execute(
                        f"ALTER TABLE {table} ADD COLUMN {self._column(f.name)} {sql_type}"
                    )
        current = -1 if entry.schema is None else entry.version
        rejected: set[str] = set()
        if pending.checked_version == current:
            # nothing was committed since every pending id was checked (and the path is locked
            # now): copy the rows straight into the table, in its column order
            full = with_columns(batch, schema, schema.names).select(schema.names)
            wire = self._sql_named(to_wire(full, self._dialect))
            self._cursor.adbc_ingest(entry.table, wire, mode="append")
        else:
            rejected = self._insert_new(table, batch, pending)
        raw = schema.serialize().to_pybytes()
        blob = f"'\\x{raw.hex()}'::bytea" if self._dialect.is_postgresql else f"X'{raw.hex()}'"
        self._execute(
            f"UPDATE {CATALOG} SET arrow_schema = {blob}, version = version + 1 WHERE path = {path}"
        )
        return rejected

    def _insert_new(self, table: str, batch: pa.Table, pending: _Pending) -> set[str]:
        """Insert the rows of ``batch`` whose ids ``table`` does not hold yet (through a staging
        table); return those of the others that were added without ``skip_duplicates``."""
        wire = self._sql_named(to_wire(batch, self._dialect))
        self._cursor.adbc_ingest(_STAGE, wire, mode="replace", temporary=True)
        found = self._query(f"SELECT s.{_ID} FROM {_STAGE} s JOIN {table} t ON t.{_ID} = s.{_ID}")
        taken = set(found.column(0).to_pylist())
        if taken:
            self._execute(f"DELETE FROM {_STAGE} WHERE {_ID} IN (SELECT {_ID} FROM {table})")
        names = column_list(batch.column_names, self._dialect)
        self._execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {_STAGE}")
        return taken & pending.strict_ids

    # ------------------------------------------------------------------ reads

    def _snapshot(self, key: RecordPath) -> tuple[_Entry | None, _Pending | None, pa.Schema | None]:
        entry = self._guarded(lambda: self._entry(key), key)
        if entry is not None and entry.schema is None:
            entry = None
        pending = self._pending.get(key)
        schema = None if entry is None else entry.schema
        if pending is not None and pending.schema is not None:
            schema = merge_schemas(schema, pending.schema, key)
        return entry, pending, schema

    def _select(self, key: RecordPath, entry: _Entry, names: Sequence[str], where: str) -> pa.Table:
        assert entry.schema is not None
        sql = f"SELECT {column_list(names, self._dialect)} FROM {quote_identifier(entry.table)}"
        if where:
            sql += f" WHERE {where}"
        wire = self._guarded(lambda: self._query(sql), key).rename_columns(list(names))
        return from_wire(wire, entry.schema, self._dialect)

    def get_records_by_ids(
        self,
        path: Sequence[str],
        ids: Collection[str] | pa.Array | pa.ChunkedArray | np.ndarray[Any, Any],
        record_id_column: str | None = None,
    ) -> pa.Table | None:
        key = validate_path(path)
        wanted = normalize_ids(ids)
        with self._lock:
            entry, pending, schema = self._snapshot(key)
            if schema is None or len(wanted) == 0:
                return None
            parts = (
                []
                if pending is None
                else [
                    t.filter(pc.is_in(t.column(RECORD_ID), value_set=wanted))
                    for t in pending.tables
                ]
            )
            if entry is not None:
                assert entry.schema is not None
                where = self._in_clause(RECORD_ID, wanted, pa.string(), "orcapod_ids")
                parts.insert(0, self._select(key, entry, entry.schema.names, where))
        return stored_result(parts, schema, record_id_column, None)

    def get_all_records(
        self, path: Sequence[str], record_id_column: str | None = None
    ) -> pa.Table | None:
        key = validate_path(path)
        with self._lock:
            entry, pending, schema = self._snapshot(key)
            if schema is None:
                return None
            parts = [] if pending is None else list(pending.tables)
            if entry is not None:
                assert entry.schema is not None
                parts.insert(0, self._select(key, entry, entry.schema.names, ""))
        return stored_result(parts, schema, record_id_column, None)

    def get_records_with_column_value(
        self,
        path: Sequence[str],
        constraints: Mapping[str, object],
        record_id_column: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table | None:
        key = validate_path(path)
        with self._lock:
            entry, pending, schema = self._snapshot(key)
            if schema is None:
                return None
            tests = normalize_constraints(constraints, schema, record_id_column, key)
            selected = resolve_columns(columns, schema, record_id_column, key)
            parts = [] if pending is None else [filter_records(t, tests) for t in pending.tables]
            if entry is not None:
                assert entry.schema is not None
                where = self._where(key, entry, tests)
                if where is not None:
                    names = entry.schema.names
                    if selected is not None:
                        names = [n for n in selected if entry.schema.get_field_index(n) >= 0]
                    parts.insert(0, self._select(key, entry, names, where))
        return stored_result(parts, schema, record_id_column, selected)

    def _where(self, key: RecordPath, entry: _Entry, tests: Sequence[Constraint]) -> str | None:
        """The SQL condition of ``tests`` on the committed table (None: nothing can match);
        creates the index of each constrained column on its first use."""
        assert entry.schema is not None
        clauses = []
        for index, test in enumerate(tests):
            if entry.schema.get_field_index(test.column) < 0:  # a missing column is null
                if not test.match_null:
                    return None
                continue
            dtype = entry.schema.field(test.column).type
            options = []
            if len(test.values):
                name = f"orcapod_values_{index}"
                options.append(self._in_clause(test.column, test.values, dtype, name))
            if test.match_null:
                options.append(f"{self._column(test.column)} IS NULL")
            if not options:
                return None
            clauses.append("(" + " OR ".join(options) + ")")
            if test.column != RECORD_ID:
                self._guarded(partial(self._ensure_index, entry.table, test.column), key)
        return " AND ".join(clauses)

    def _in_clause(self, column: str, values: pa.Array, dtype: pa.DataType, temp: str) -> str:
        """``column IN (...)``: literals, or a temporary table of the values when there are
        more than ``INLINE_LIMIT``."""
        quoted = self._column(column)
        if len(values) <= INLINE_LIMIT:
            return f"{quoted} IN ({literal_list(values, dtype, self._dialect)})"
        wire = to_wire(pa.table({"v": pc.unique(values)}), self._dialect)
        self._cursor.adbc_ingest(temp, wire, mode="replace", temporary=True)
        return f"{quoted} IN (SELECT v FROM {temp})"

    def _ensure_index(self, table: str, column: str) -> None:
        if (table, column) in self._indexed:
            return
        digest = hashlib.sha256(f"{table}\x00{column}".encode()).hexdigest()[:16]
        name = f"orcapod_ix_{digest}"
        if not self._has_table(name):
            target = f"{quote_identifier(table)} ({self._column(column)})"
            sql = f"CREATE INDEX IF NOT EXISTS {name} ON {target}"
            try:
                self._execute(sql)
            except self._error:
                if not self._has_table(name):  # else: another process created it meanwhile
                    raise
        self._indexed.add((table, column))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_size={self._batch_size})"


def _close(conn: Any, cursor: Any) -> None:
    cursor.close()
    conn.close()
