"""``ColumnCache``: whole projected columns of a Delta table on object storage, kept beside it.

The problem. A function node reads whole columns with no filter on every run: the record and
packet ids of its records, the record ids of its results. On object storage a scan costs
about three requests per data file (footer, metadata, column chunk) and each run adds a file
to each table, so every run of a series of small runs costs more than the one before (at the
20th, ~130 of its ~180 requests were these scans).

The approach. Data files are immutable, so the values of a projection in one data file never
change, and they are kept like the lookup sidecars (``column_index``):
``<table>/_orcapod_index/columns-v2/<projection key>/<data file name>.arrow`` holds that file's
projected columns, and ``pack.arrow`` beside them the parts of every data file of a snapshot.
A read of the projection over a snapshot takes each data file's part from this object's
memory, else from the pack, else from the file's sidecar, else from the data file itself
(writing its sidecar), the files not in memory or the pack concurrently
(``TableFiles.map``); a read that had to fetch ``PACK_AFTER`` or more parts one by one
rewrites the pack. So a run reads the pack and the few files added since: a handful of
requests however long the history.

Sidecars written at commit. A writer holds the rows of the data file its commit adds, so it
writes that file's sidecar itself, for every projection this process read from the table
(``want``: each unfiltered whole-column read, also one made before the table existed, and
each filtered read of a small table), and keeps the part in memory. The next run then reads
one small object per new file (or the pack) instead of the data file's footer and column
chunks (at 100k rows in two files of 13 row groups: 2 GETs instead of 54 ranged ones). When
this process holds the parts of every other data file of the table too (it read the
projection over the snapshot it committed on) and they are small (``COMMIT_PACK_BYTES``),
the commit rewrites the pack with the new part instead: the next run reads one object, not
the pack plus a sidecar per file added since it was last rewritten (a successive small run
on S3: 3 requests per projection instead of ~7 when measured, one fewer since sidecars are
read without a HEAD; above the limit a pack PUT per commit costs more than the reads it saves).
Only a commit that added exactly one data file, holding exactly the committed batch (its row
count in the Delta log), gets either; a process killed between the commit and the sidecar
leaves none, and the next reader writes it. Two writers may overwrite each other's pack: a
file that ends up in no pack and with no sidecar is read from the data file once (and its
sidecar written), as after a kill. Writes to a table this
process never read write none (a writer-only process). The projections asked for are kept
per table location for the whole process (a node may read a table through one database
object and write it through another).

Wider packs. A projection's pack written at commit holds the columns of the widest other
projection this process read that includes all of its own, and names it: a node reads its
results' ids and then more columns of the same results, so the next run's first read brings
both (one request instead of two; the wider projection keeps its own pack too, for a
process that reads only it).

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
* Sidecars and packs name the data files they hold, with each file's size and row count, and
  end with a checksum of their content. A part is used only when its file is in the snapshot
  with that size and row count (``DataFile``: from the Delta log, no request) and the part has
  that many rows; one that is damaged, names other files or disagrees with the log is never
  believed: the part is read from the data file again (and its sidecar rewritten). The data
  always wins. Writing is best effort: the cache is not data, deleting it is safe.
* The sidecar format is versioned in the directory name (``columns-v2``): sidecars of an older
  format are not read, and left behind.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import xxhash

from orcapod.databases.column_index import INDEX_DIR
from orcapod.databases.queries import Constraint, filter_records
from orcapod.databases.table_files import TableFiles

if TYPE_CHECKING:
    from deltalake import DeltaTable

__all__ = [
    "COMMIT_PACK_BYTES",
    "PACK_AFTER",
    "SMALL_TABLE_BYTES",
    "ColumnCache",
    "DataFile",
    "add_actions",
    "data_files",
    "small_table",
]

#: a read that fetched this many parts one by one rewrites the pack
PACK_AFTER = 4
#: a commit rewrites the pack (instead of writing its file's sidecar) while the parts of
#: every data file of the table, all in this process's memory, hold at most this many bytes:
#: up to there encoding them (~2 ms per MB, 5x more on a busy machine) and the PUT of the
#: result cost at most the sidecar reads the next run saves on the loopback S3 server, where
#: a request takes ~3 ms (on object storage, 20-50 ms per request, the saving is larger)
COMMIT_PACK_BYTES = 8 << 20
#: filtered reads of a table whose data files hold at most this many bytes use the cache
SMALL_TABLE_BYTES = 4 << 20
#: snapshots whose ``data_files`` are kept (per location, table id and version)
_DATA_FILES_KEPT = 64
_DATA_FILES: dict[tuple[str, str, int], dict[str, DataFile]] = {}


@dataclass(frozen=True)
class DataFile:
    """What the Delta log says of one data file: its size and row count (None: not
    recorded)."""

    size: int
    rows: int | None


def add_actions(table: DeltaTable) -> pa.Table:
    """The add actions of ``table``'s snapshot (``DeltaTable.get_add_actions``) as a pyarrow
    table, through the Arrow stream interface: ``pa.table`` would first check whether the
    object is a pandas DataFrame, which imports pandas (~0.15 s) in a process that has not."""
    return pa.RecordBatchReader.from_stream(table.get_add_actions(flatten=True)).read_all()


def data_files(table: DeltaTable) -> dict[str, DataFile]:
    """The data files of ``table``'s snapshot by path relative to the table (for the files
    directly in its directory: the file name), read from the snapshot in memory: no request.
    Kept per table location, Delta table id and version (a version's files never change)."""
    key = (table.table_uri, str(table.metadata().id), int(table.version()))
    found = _DATA_FILES.get(key)
    if found is None:
        if len(_DATA_FILES) >= _DATA_FILES_KEPT:
            _DATA_FILES.clear()
        found = _DATA_FILES[key] = _data_files(add_actions(table))
    return found


def _data_files(actions: pa.Table) -> dict[str, DataFile]:
    rows = (
        actions.column("num_records").to_pylist()
        if "num_records" in actions.column_names
        else [None] * actions.num_rows
    )
    return {
        str(path): DataFile(int(size), None if count is None else int(count))
        for path, size, count in zip(
            actions.column("path").to_pylist(),
            actions.column("size_bytes").to_pylist(),
            rows,
            strict=True,
        )
    }


def small_table(table: DeltaTable) -> bool:
    """Do the data files of ``table``'s snapshot hold at most ``SMALL_TABLE_BYTES``? (Read
    from the snapshot in memory: no request.)"""
    return sum(f.size for f in data_files(table).values()) <= SMALL_TABLE_BYTES


_FILES_KEY = b"orcapod_files"
_ALSO_KEY = b"orcapod_also"
_CHECKSUM = 8
_SUFFIX = ".arrow"
_PACK_NAME = "pack.arrow"
_DIR = f"{INDEX_DIR}/columns-v2"

#: per table location, the projections this process read (``ColumnCache.want``): a node
#: reads a table through one database object and may write it through another
_WANTED: dict[str, set[tuple[str, ...]]] = {}

#: a part as stored: its rows and the data file (size, row count) it was taken from
_Stored = tuple[pa.Table, DataFile]


class ColumnCache:
    """Projected columns of one table's data files (module docstring)."""

    def __init__(self, files: TableFiles) -> None:
        self._files = files
        self._parts: dict[tuple[str, ...], dict[str, pa.Table]] = {}
        self._wanted = _WANTED.setdefault(files.uri, set())
        self._persist = True

    @property
    def wanted(self) -> frozenset[tuple[str, ...]]:
        """The projections whose sidecars a commit writes (``want``)."""
        return frozenset(self._wanted)

    def want(self, columns: Sequence[str]) -> None:
        """Have commits to this table, by any database object of this process, write the
        sidecars of the projection ``columns`` (module docstring); columns the table lacks at
        commit time are left out, as a read leaves them out."""
        self._wanted.add(tuple(columns))

    def read(
        self,
        columns: Sequence[str],
        snapshot: Sequence[str],
        stored: pa.Schema,
        facts: Mapping[str, DataFile],
    ) -> pa.Table:
        """``columns`` (all in ``stored``, the canonical schema) of every row of the data files
        ``snapshot``, in that order; ``facts``: the snapshot's ``data_files``."""
        names = tuple(columns)
        cache = self._parts.setdefault(names, {})
        directory = f"{_DIR}/{_key(names)}"
        missing = [f for f in snapshot if f not in cache]
        data = self._files.read(f"{directory}/{_PACK_NAME}") if len(missing) > 1 else None
        pack, also = _decode_pack(data) if data is not None else ({}, [])
        singles = []
        for file in missing:
            name = self._files.name_of(file)
            fact = None if name is None else facts.get(name)
            part = None if name is None or fact is None else _valid(pack.get(name), fact)
            if part is None:
                singles.append((file, name, fact))
            else:
                cache[file] = part
                for wider in also:  # (the pack holds their columns too: module docstring)
                    self._parts.setdefault(wider, {}).setdefault(file, part)

        def fetch(single: tuple[str, str | None, DataFile | None]) -> pa.Table:
            """One file's part: from its sidecar, else from the data file (writing the
            sidecar)."""
            file, name, fact = single
            if name is None or fact is None:
                return self._files.read_columns(file, names)
            part = _valid(self._load(f"{directory}/{name}{_SUFFIX}").get(name), fact)
            if part is None:
                part = self._files.read_columns(file, names)
                if _valid((part, fact), fact) is not None:
                    self._put(f"{directory}/{name}{_SUFFIX}", {name: (part, fact)})
            return part

        for (file, _, _), part in zip(singles, self._files.map(fetch, singles), strict=True):
            cache[file] = part
        fetched = sum(1 for _, name, fact in singles if name is not None and fact is not None)
        if fetched >= PACK_AFTER:
            entries: dict[str, _Stored] = {}
            for file in snapshot:
                name = self._files.name_of(file)
                fact = None if name is None else facts.get(name)
                if name is not None and fact is not None:
                    entries[name] = (cache[file], fact)
            self._put(f"{directory}/{_PACK_NAME}", entries)
        schema = pa.schema([stored.field(n) for n in names])
        parts = [_conform(cache[f], schema) for f in snapshot]
        return pa.concat_tables(parts) if parts else schema.empty_table()

    def record_commit(
        self, added: Sequence[str], batch: pa.Table, stored: pa.Schema, table: DeltaTable
    ) -> None:
        """A commit added the data files ``added`` (as deltalake lists them) holding ``batch``;
        ``stored``: the table's canonical schema after it, ``table``: its snapshot. When that
        is one file of ``batch``'s rows, keep and write its part of every wanted projection
        (module docstring)."""
        if len(added) != 1 or not self._wanted:
            return
        file = added[0]
        name = self._files.name_of(file)
        fact = None if name is None else data_files(table).get(name)
        if name is None or fact is None or fact.rows != batch.num_rows:
            return
        facts = data_files(table)
        snapshot = table.file_uris()
        packs: dict[tuple[str, ...], dict[str, _Stored] | None] = {}
        for wanted in self.wanted:  # (a copy: other database objects may add to the set)
            names = tuple(c for c in wanted if stored.get_field_index(c) >= 0)
            part = batch.select([c for c in names if c in batch.column_names])
            cache = self._parts.setdefault(names, {})
            cache[file] = part
            packs[names] = _pack_of(self._files, cache, snapshot, facts)
        writes: list[tuple[str, Mapping[str, _Stored], Sequence[tuple[str, ...]]]] = []
        for names, pack in packs.items():
            directory = f"{_DIR}/{_key(names)}"
            if pack is None:
                part = self._parts[names][file]
                writes.append((f"{directory}/{name}{_SUFFIX}", {name: (part, fact)}, ()))
                continue
            wider = _widest(names, [n for n, p in packs.items() if p is not None])
            also = () if wider is None else (wider,)
            writes.append((f"{directory}/{_PACK_NAME}", packs[wider or names] or pack, also))
        self._files.map(lambda write: self._put(*write), writes)  # (concurrently on S3)

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
        self.want(names)
        snapshot = self.read(names, table.file_uris(), stored, data_files(table))
        found = filter_records(snapshot, tests)
        assert found is not None
        return found

    def _load(self, rel: str) -> dict[str, _Stored]:
        data = self._files.read(rel)
        return {} if data is None else _decode(data)

    def _put(
        self, rel: str, parts: Mapping[str, _Stored], also: Sequence[tuple[str, ...]] = ()
    ) -> None:
        if not self._persist:
            return
        try:
            self._files.write(rel, _encode(parts, also))
        except OSError:
            self._persist = False  # a store we cannot write to: answer from memory only


def _pack_of(
    files: TableFiles,
    cache: Mapping[str, pa.Table],
    snapshot: Sequence[str],
    facts: Mapping[str, DataFile],
) -> dict[str, _Stored] | None:
    """The pack of the data files ``snapshot`` (``facts``: its ``data_files``) from the parts
    in memory ``cache``, when it holds every one of them (two or more) in at most
    ``COMMIT_PACK_BYTES``; None otherwise."""
    if len(snapshot) < 2 or any(f not in cache for f in snapshot):
        return None
    if sum(cache[f].nbytes for f in snapshot) > COMMIT_PACK_BYTES:
        return None
    entries: dict[str, _Stored] = {}
    for file in snapshot:
        name = files.name_of(file)
        fact = None if name is None else facts.get(name)
        if name is None or fact is None or _valid((cache[file], fact), fact) is None:
            return None
        entries[name] = (cache[file], fact)
    return entries


def _widest(
    names: tuple[str, ...], projections: Sequence[tuple[str, ...]]
) -> tuple[str, ...] | None:
    """The projection of ``projections`` with the most columns that holds every one of
    ``names`` and more (None: none does)."""
    wider = [p for p in projections if set(names) < set(p)]
    return max(wider, key=lambda p: (len(p), p)) if wider else None


def _valid(stored: _Stored | None, fact: DataFile) -> pa.Table | None:
    """The part of ``stored`` when it describes the data file the Delta log describes as
    ``fact`` (same size, and as many rows as the log records); None otherwise."""
    if stored is None:
        return None
    part, described = stored
    if described.size != fact.size or described.rows != part.num_rows:
        return None
    if fact.rows is not None and fact.rows != part.num_rows:
        return None
    return part


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


def _encode(parts: Mapping[str, _Stored], also: Sequence[tuple[str, ...]] = ()) -> bytes:
    """One IPC stream of the parts (concatenated; their files, with each file's size and the
    part's row count, and the wider projections ``also`` that the parts hold, in the schema
    metadata), then a checksum of it."""
    tables = [part for part, _ in parts.values()]
    table = pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})
    index = [[name, part.num_rows, fact.size] for name, (part, fact) in parts.items()]
    metadata = {_FILES_KEY: json.dumps(index).encode()}
    if also:
        metadata[_ALSO_KEY] = json.dumps([list(p) for p in also]).encode()
    table = table.replace_schema_metadata(metadata)
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    body = sink.getvalue().to_pybytes()
    return body + xxhash.xxh3_64(body).digest()


def _decode(data: bytes) -> dict[str, _Stored]:
    """The parts of a sidecar or pack by data file name; empty when it is damaged."""
    return _decode_pack(data)[0]


def _decode_pack(data: bytes) -> tuple[dict[str, _Stored], list[tuple[str, ...]]]:
    """``_decode``, and the wider projections whose columns the parts hold (``_encode``)."""
    body, digest = data[:-_CHECKSUM], data[-_CHECKSUM:]
    if len(data) <= _CHECKSUM or xxhash.xxh3_64(body).digest() != digest:
        return {}, []
    try:
        table = pa.ipc.open_stream(body).read_all()
        metadata = table.schema.metadata or {}
        index = [
            (str(name), int(rows), int(size))
            for name, rows, size in json.loads(metadata[_FILES_KEY])
        ]
        also = [tuple(str(c) for c in p) for p in json.loads(metadata.get(_ALSO_KEY, b"[]"))]
    except (pa.ArrowException, KeyError, ValueError, TypeError):
        return {}, []
    if sum(rows for _, rows, _ in index) != table.num_rows:
        return {}, []
    also = [p for p in also if all(c in table.column_names for c in p)]
    table = table.replace_schema_metadata(None)
    out, offset = {}, 0
    for name, rows, size in index:
        out[name] = (table.slice(offset, rows), DataFile(size, rows))
        offset += rows
    return out, also
