"""The reads of ``DeltaTableDatabase``, as functions of one path's ``PathState``.

Every read refreshes the snapshot first (so it sees rows other processes committed) and
answers committed plus pending rows, cast to the canonical types. Committed rows come from,
in order of preference:

* on object storage, reads of whole projected columns with no filter (a node's recorded ids,
  its stored result ids) and projected reads of small tables with a filter (the claims
  table): ``column_cache.ColumnCache``, instead of a scan of every data file. An unfiltered
  projected read also asks the cache to keep that projection at commit (``ColumnCache.want``),
  even before the table exists, so a run's own commits leave sidecars for the next run;
* a lookup by many values of an indexed string column: the values are first narrowed with
  the per-file hash indexes (``column_index.LookupIndex``), so values that are not stored
  never reach the query, and a lookup of only new values runs none;
* a DataFusion query (``PathState.query``) with the filter and projection in the SQL.

Two opt-in reads go to the data files without a query, for ``lineage`` in a fresh process:
``records_by_ids(..., locate=True)`` (``id_locator``) and ``records_where(...,
statistics=True)`` (``stats_scan``). Both take the table's files and schema from its
snapshot sidecar while it names the newest commit (``snapshot_file``), so they open no
table, and record the sidecar when they had to.

Duplicate checks (``all_ids``, ``stored_ids``) of a small table on object storage read its
record ids through the same column cache instead of a query (``small_table_ids``): a process
that records a function's identity in a one-row table would otherwise start DataFusion and
read the file twice (the index, then the confirmation of the hit), about five requests and
~50 ms per run.

An add with ``skip_duplicates`` of a few rows to a table on object storage that the database
object has not read yet first asks the table's ids sidecar (``snapshot_file.known_ids``,
two requests): when every row is stored already, the add is done without opening the table
(``known_stored``). A process records its function's identity, one row, in every run, and
opening that table and reading its ids costs six requests. When the sidecar did not answer,
the add opens the table as usual, and one that finds every row stored writes the sidecar
(``remember_ids``), so the next process finds it; so does the commit that creates a small
table (``remember_created_ids``).

The caller holds the database's lock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from orcapod.databases.column_cache import data_files, small_table
from orcapod.databases.delta_state import PathState
from orcapod.databases.id_locator import locate_ids
from orcapod.databases.queries import (
    Constraint,
    filter_records,
    normalize_constraints,
    resolve_columns,
    stored_result,
)
from orcapod.databases.records import merge_schemas
from orcapod.databases.snapshot_file import (
    KNOWN_IDS_ROWS,
    current_of,
    known_ids,
    record_ids,
    record_of,
)
from orcapod.databases.sql import in_predicate, select_list, where_clause
from orcapod.databases.sql_types import quote_identifier
from orcapod.databases.stats_scan import read_where
from orcapod.types.columns import RECORD_ID

__all__ = [
    "all_ids",
    "all_records",
    "known_stored",
    "records_by_ids",
    "records_where",
    "remember_created_ids",
    "remember_ids",
    "small_table_ids",
    "snapshot",
    "stored_ids",
]

_ID = quote_identifier(RECORD_ID)


def snapshot(state: PathState) -> pa.Schema | None:
    """Refresh ``state`` (``refresh_for_read``); the schema of its committed plus pending
    rows (None: neither)."""
    state.refresh_for_read()
    stored = state.stored_schema()
    if state.pending_schema is not None:
        return merge_schemas(stored, state.pending_schema, state.key)
    return stored


def records_by_ids(
    state: PathState, wanted: pa.Array, record_id_column: str | None, locate: bool
) -> pa.Table | None:
    """The rows whose ids are in ``wanted`` (``get_records_by_ids``)."""
    current = current_of(state) if locate else None
    if current is not None and len(wanted):
        found = locate_ids(state, state.files, wanted, build=True, snapshot=current)
        if found is not None:
            return stored_result([found], current.schema, record_id_column, None)
    schema = snapshot(state)
    if locate:
        record_of(state)
    if schema is None or len(wanted) == 0:
        return None
    parts = [t.filter(pc.is_in(t.column(RECORD_ID), value_set=wanted)) for t in state.pending]
    if state.table is not None:
        located = locate_ids(state, state.files, wanted, build=locate)
        if located is None:
            located = state.query(f"SELECT * FROM t WHERE {in_predicate(RECORD_ID, wanted)}")
        parts.insert(0, located)
    return stored_result(parts, schema, record_id_column, None)


def all_records(state: PathState, record_id_column: str | None) -> pa.Table | None:
    """Every row (``get_all_records``)."""
    schema = snapshot(state)
    if schema is None:
        return None
    parts = list(state.pending)
    if state.table is not None:
        parts.insert(0, state.read_all())
    return stored_result(parts, schema, record_id_column, None)


def records_where(
    state: PathState,
    constraints: Mapping[str, object],
    record_id_column: str | None,
    columns: Sequence[str] | None,
    statistics: bool,
) -> pa.Table | None:
    """The rows matching ``constraints``, projected (``get_records_with_column_value``)."""
    key = state.key
    current = current_of(state) if statistics else None
    if current is not None:
        assert state.files is not None  # (``current_of`` found the sidecar through them)
        tests = normalize_constraints(constraints, current.schema, record_id_column, key)
        found = read_where(state.files, current.uris, current.schema, tests)
        if found is not None:
            selected = resolve_columns(columns, current.schema, record_id_column, key)
            return stored_result([found], current.schema, record_id_column, selected)
    schema = snapshot(state)
    if statistics:
        record_of(state)
    files = state.files if statistics else None
    if files is not None and schema is not None and state.table is not None:
        tests = normalize_constraints(constraints, schema, record_id_column, key)
        stored = state.stored_schema()
        assert stored is not None  # (a table has a stored schema)
        found = read_where(files, state.table.file_uris(), stored, tests)
        if found is not None:
            parts = [found, *(filter_records(t, tests) for t in state.pending)]
            selected = resolve_columns(columns, schema, record_id_column, key)
            return stored_result(parts, schema, record_id_column, selected)
    lookups = state.lookup_index()
    if lookups is not None and isinstance(constraints, Mapping):
        lookups.note_lookup(constraints, record_id_column)
    cache = state.column_cache()
    if cache is not None and columns is not None and not constraints:
        cache.want(_projection(columns, record_id_column))  # (also before a table exists)
    if schema is None:
        return None
    tests = normalize_constraints(constraints, schema, record_id_column, key)
    selected = resolve_columns(columns, schema, record_id_column, key)
    parts = [filter_records(t, tests) for t in state.pending]
    stored = state.stored_schema()
    cached = cache and cache.read_where(state.table, stored, selected, tests)
    if cached is not None:  # a small table on object storage (column_cache)
        parts.insert(0, cached)
        return stored_result(parts, schema, record_id_column, selected)
    narrowed: list[Constraint] | None = tests
    if stored is not None and lookups is not None and state.table is not None:
        narrowed = lookups.narrow_constraints(tests, stored, state.table.file_uris)
    if stored is not None and narrowed is not None:
        where = where_clause(narrowed, stored)
        if where == "TRUE" and selected is not None and cache is not None:
            assert state.table is not None  # (a table has a stored schema)
            present = [c for c in selected if stored.get_field_index(c) >= 0]
            uris = state.table.file_uris()
            parts.insert(0, cache.read(present, uris, stored, data_files(state.table)))
        elif where is not None:
            sql = f"SELECT {select_list(selected, stored)} FROM t WHERE {where}"
            parts.insert(0, state.query(sql))
    return stored_result(parts, schema, record_id_column, selected)


def _projection(columns: Sequence[str], record_id_column: str | None) -> list[str]:
    """The stored columns a read of ``columns`` projects onto (as ``resolve_columns`` names
    them), known without the table's schema."""
    if isinstance(columns, str):
        return [RECORD_ID]  # (rejected by ``resolve_columns`` once there is a schema)
    names = [RECORD_ID, *(RECORD_ID if c == record_id_column else c for c in columns)]
    return list(dict.fromkeys(names))


def small_table_ids(state: PathState) -> pa.ChunkedArray | None:
    """Every committed record id of ``state``'s table when it is small and on object storage
    (``column_cache.small_table``), from the column cache; None otherwise."""
    cache = state.column_cache()
    if cache is None or state.table is None or not small_table(state.table):
        return None
    stored = state.stored_schema()
    assert stored is not None  # (a table has a stored schema)
    uris = state.table.file_uris()
    return cache.read([RECORD_ID], uris, stored, data_files(state.table)).column(RECORD_ID)


def all_ids(state: PathState) -> pa.Array | pa.ChunkedArray:
    """Every committed record id of ``state``'s table (which exists)."""
    cached = small_table_ids(state)
    return state.query(f"SELECT {_ID} FROM t").column(0) if cached is None else cached


def stored_ids(state: PathState, candidates: pa.Array) -> set[str]:
    """Those of the record ids ``candidates`` that ``state``'s table (which exists) holds."""
    cached = small_table_ids(state)
    if cached is not None:
        found = pc.is_in(candidates, value_set=cached.cast(candidates.type))
        return set(candidates.filter(found).to_pylist())
    sql = f"SELECT {_ID} FROM t WHERE {in_predicate(RECORD_ID, candidates)}"
    return set(state.query(sql).column(0).to_pylist())


def known_stored(state: PathState, records: pa.Table) -> bool:
    """Are all the rows ``records`` (at most ``KNOWN_IDS_ROWS``) of an add stored, by the ids
    sidecar of ``state``'s table on object storage, which this object has not read yet?
    (Module docstring; False when that cannot be told without opening the table.)"""
    untouched = state.table is None and not state.pending and state.refreshed_at == -math.inf
    if not (state.remote and untouched and 0 < records.num_rows <= KNOWN_IDS_ROWS):
        return False
    assert state.files is not None  # (``remote``)
    known = known_ids(state.files)
    state.ids_unknown = known is None
    if known is None:
        return False
    ids, schema = known
    merge_schemas(schema, records.schema, state.key)  # (raises as the add would)
    return ids.issuperset(records.column(RECORD_ID).to_pylist())


def remember_ids(state: PathState) -> None:
    """After an add that found every row stored: write the ids sidecar of ``state``'s table
    when ``known_stored`` found none current and the table is small (module docstring)."""
    if not state.ids_unknown or state.table is None or state.files is None:
        return
    state.ids_unknown = False
    rows = [f.rows for f in data_files(state.table).values()]
    if any(n is None for n in rows) or sum(n or 0 for n in rows) > KNOWN_IDS_ROWS:
        return
    ids = small_table_ids(state)
    stored = state.stored_schema()
    if ids is not None and stored is not None and len(ids) <= KNOWN_IDS_ROWS:
        record_ids(state.files, state.table, ids.to_pylist(), stored)


def remember_created_ids(state: PathState, ids: pa.ChunkedArray | pa.Array) -> None:
    """``state``'s table was just created by a commit of the record ids ``ids``: write its ids
    sidecar when it is on object storage and that small (module docstring)."""
    if not state.remote or state.table is None or len(ids) > KNOWN_IDS_ROWS:
        return
    stored = state.stored_schema()
    if stored is not None and state.version == 0:
        assert state.files is not None  # (``remote``)
        record_ids(state.files, state.table, ids.to_pylist(), stored)
