"""``ColumnCache``: whole projected columns of a Delta table on object storage, kept beside it.

The problem. A function node reads whole columns with no filter on every run: the record and
packet ids of its records, the record ids of its results. On object storage a scan costs
about three requests per data file (footer, metadata, column chunk) and each run adds a file
to each table, so every run of a series of small runs costs more than the one before (at the
20th, ~130 of its ~180 requests were these scans).

The approach. Data files are immutable, so the values of a projection in one data file never
change, and they are kept like the lookup sidecars (``column_index``):
``<table>/_orcapod_index/columns/<projection key>/<data file name>.arrow`` holds that file's
projected columns, and ``pack.arrow`` beside them the parts of every data file of a snapshot.
A read of the projection over a snapshot takes each data file's part from this object's
memory, else from the pack, else from the file's sidecar, else from the data file itself
(writing its sidecar); a read that had to fetch ``PACK_AFTER`` or more parts one by one
rewrites the pack. So a run reads the pack and the few files added since: a handful of
requests however long the history.

Filtered reads of small tables. A read with a filter (``bucket IN (...)``) of a table whose
data files are small in total (at most ``SMALL_TABLE_BYTES``, e.g. the claims table processes
poll while they share work) is answered from the same cached columns - the projection plus
the filtered columns - filtered in memory: a query would read every data file's footer and
pages again on every read (two or three requests per file), the cache only the files added
since the last read. Larger tables keep the pushed-down query (their lookup indexes and
bloom filters skip most files, and their columns would cost memory).

Decisions:

* Object storage only: locally a scan of a data file is a few page-cache reads.
* The projection key is a hash of the column names (in order); each distinct projection has
  its own cache (the nodes use a few fixed ones).
* Parts are stored as read from the data file (Arrow IPC, zstd-compressed) and cast to the
  table's canonical schema on use; a column a data file lacks (written before the column
  existed) reads as nulls, as in a query.
* Sidecars and packs name the data files they hold and end with a checksum of their content;
  one that is damaged, or names other files, is never believed: the part is read from the
  data file again. Writing is best effort: the cache is not data, deleting it is safe.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pyarrow as pa
import xxhash

from orcapod.databases.column_index import INDEX_DIR
from orcapod.databases.queries import Constraint, filter_records
from orcapod.databases.table_files import TableFiles

if TYPE_CHECKING:
    from deltalake import DeltaTable

__all__ = ["PACK_AFTER", "SMALL_TABLE_BYTES", "ColumnCache", "small_table"]

#: a read that fetched this many parts one by one rewrites the pack
PACK_AFTER = 4
#: filtered reads of a table whose data files hold at most this many bytes use the cache
SMALL_TABLE_BYTES = 4 << 20


def small_table(table: DeltaTable) -> bool:
    """Do the data files of ``table``'s snapshot hold at most ``SMALL_TABLE_BYTES``? (Read
    from the snapshot in memory: no request.)"""
    sizes = pa.table(table.get_add_actions(flatten=True)).column("size_bytes")
    return sum(sizes.to_pylist()) <= SMALL_TABLE_BYTES


_FILES_KEY = b"orcapod_files"
_CHECKSUM = 8
_SUFFIX = ".arrow"
_PACK_NAME = "pack.arrow"


class ColumnCache:
    """Projected columns of one table's data files (module docstring)."""

    def __init__(self, files: TableFiles) -> None:
        self._files = files
        self._parts: dict[tuple[str, ...], dict[str, pa.Table]] = {}
        self._persist = True

    def read(self, columns: Sequence[str], snapshot: Sequence[str], stored: pa.Schema) -> pa.Table:
        """``columns`` (all in ``stored``, the canonical schema) of every row of the data files
        ``snapshot``, in that order."""
        names = tuple(columns)
        cache = self._parts.setdefault(names, {})
        directory = f"{INDEX_DIR}/columns/{_key(names)}"
        missing = [f for f in snapshot if f not in cache]
        pack = self._load(f"{directory}/{_PACK_NAME}") if len(missing) > 1 else {}
        fetched = 0
        for file in missing:
            name = self._files.name_of(file)
            part = None if name is None else pack.get(name)
            if part is None and name is not None:
                fetched += 1
                part = self._load(f"{directory}/{name}{_SUFFIX}").get(name)
            if part is None:
                part = self._files.read_columns(file, names)
                if name is not None:
                    self._put(f"{directory}/{name}{_SUFFIX}", {name: part})
            cache[file] = part
        if fetched >= PACK_AFTER:
            entries = {self._files.name_of(f): cache[f] for f in snapshot}
            self._put(
                f"{directory}/{_PACK_NAME}",
                {name: part for name, part in entries.items() if name is not None},
            )
        schema = pa.schema([stored.field(n) for n in names])
        parts = [_conform(cache[f], schema) for f in snapshot]
        return pa.concat_tables(parts) if parts else schema.empty_table()

    def read_where(
        self,
        table: DeltaTable | None,
        stored: pa.Schema | None,
        columns: Sequence[str] | None,
        tests: Sequence[Constraint],
    ) -> pa.Table | None:
        """The rows of ``table``'s snapshot that pass every test (``filter_records``), with
        ``columns`` and the tested columns, when ``table`` (its canonical schema ``stored``) is
        small (module docstring); None
        when the read is not served here (no table, all columns asked, a large table, a tested
        column that no data file has)."""
        if table is None or stored is None or columns is None or not small_table(table):
            return None
        if any(stored.get_field_index(t.column) < 0 for t in tests):
            return None
        present = [c for c in columns if stored.get_field_index(c) >= 0]
        names = list(dict.fromkeys([*present, *(t.column for t in tests)]))
        found = filter_records(self.read(names, table.file_uris(), stored), tests)
        assert found is not None
        return found

    def _load(self, rel: str) -> dict[str, pa.Table]:
        data = self._files.read(rel)
        return {} if data is None else _decode(data)

    def _put(self, rel: str, parts: Mapping[str, pa.Table]) -> None:
        if not self._persist:
            return
        try:
            self._files.write(rel, _encode(parts))
        except OSError:
            self._persist = False  # a store we cannot write to: answer from memory only


def _key(names: Sequence[str]) -> str:
    return xxhash.xxh3_64("\0".join(names).encode()).hexdigest()


def _conform(part: pa.Table, schema: pa.Schema) -> pa.Table:
    """``part`` with exactly ``schema``'s columns and types (missing ones as nulls)."""
    columns = []
    for field in schema:
        if field.name in part.column_names:
            columns.append(part.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(part.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _encode(parts: Mapping[str, pa.Table]) -> bytes:
    """One IPC stream of the parts (concatenated, their files and row counts in the schema
    metadata), then a checksum of it."""
    tables = list(parts.values())
    table = pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})
    index = [[name, part.num_rows] for name, part in parts.items()]
    table = table.replace_schema_metadata({_FILES_KEY: json.dumps(index).encode()})
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    body = sink.getvalue().to_pybytes()
    return body + xxhash.xxh3_64(body).digest()


def _decode(data: bytes) -> dict[str, pa.Table]:
    """The parts of a sidecar or pack by data file name; empty when it is damaged."""
    body, digest = data[:-_CHECKSUM], data[-_CHECKSUM:]
    if len(data) <= _CHECKSUM or xxhash.xxh3_64(body).digest() != digest:
        return {}
    try:
        table = pa.ipc.open_stream(body).read_all()
        index = json.loads((table.schema.metadata or {})[_FILES_KEY])
    except (pa.ArrowException, KeyError, ValueError):
        return {}
    if sum(rows for _, rows in index) != table.num_rows:
        return {}
    table = table.replace_schema_metadata(None)
    out, offset = {}, 0
    for name, rows in index:
        out[str(name)] = table.slice(offset, rows)
        offset += rows
    return out
