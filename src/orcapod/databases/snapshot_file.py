"""``Snapshot``: a Delta table's current data files and schema, known without opening it.

The problem. Reading one row of a table that a process has not opened yet costs deltalake's
import (~25 ms) and the table's construction (~5 ms of CPU per table, replaying its log): a
``lineage`` five functions deep opens ten tables, most of its budget in a fresh process
(``orcapod lineage``), for only the list of data files and the schema.

The approach: a *snapshot sidecar* per table, ``<table>/_orcapod_index/snapshot-v1.json``,
recording a version V of the table, the checksum of V's commit file, the names of V's data
files and the table's canonical Arrow schema. A reader lists ``_delta_log``; when the newest
commit file there is V's and its content has that checksum, the table is still at V (Delta
versions are immutable and numbered in order, and a commit is the atomic creation of the next
file), so V's files and schema are the current ones. Otherwise the caller opens the table as
usual and records the new snapshot (``record``).

Correctness rules:

* Only tables whose protocol needs no reader features (no deletion vectors, no column
  mapping) and that have no partition columns are recorded: for them the data files are the
  rows, each read whole. orcapod writes such tables.
* The sidecar ends with a checksum (xxh3) of its content; one that fails it, or is for
  another version, is not used. It is a cache, never an error: a sidecar that cannot be read
  or written leaves the caller opening the table.
* Only local tables: on object storage the listing is a request, as is opening the table's
  newest log file, so the saving is small there (``current`` answers ``None``).

Known ids on object storage. A table of at most ``KNOWN_IDS_ROWS`` rows there can keep its
record ids and canonical schema in ``<table>/_orcapod_index/ids-v1.json``, with the version V
they are of and the size and modification time of V's commit file (``record_ids``).
``known_ids`` reads it and lists ``_delta_log`` at once (two requests, about one's time,
where opening the table costs four or more and reading its ids two more): the ids are
current when V's commit file is the newest and is the one recorded (a table whose log was
created again has other commit files). A process that adds a function's identity to a
one-row table in every run, when the row is stored already, uses it to do nothing
(``delta_reads``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import xxhash

from orcapod.databases.column_index import INDEX_DIR
from orcapod.databases.table_files import TableFiles
from orcapod.errors import DatabaseError

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from orcapod.databases.delta_state import PathState

__all__ = [
    "IDS_SIDECAR",
    "KNOWN_IDS_ROWS",
    "SIDECAR",
    "Snapshot",
    "current",
    "current_of",
    "known_ids",
    "record",
    "record_ids",
    "record_of",
]

SIDECAR = f"{INDEX_DIR}/snapshot-v1.json"
IDS_SIDECAR = f"{INDEX_DIR}/ids-v1.json"
#: tables on object storage of at most this many rows keep their record ids in a sidecar
KNOWN_IDS_ROWS = 256
_LOG = "_delta_log"
_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKSUM = 8


@dataclass(frozen=True)
class Snapshot:
    """The data files (as paths under the table's location) and schema of version
    ``version``."""

    version: int
    uris: tuple[str, ...]
    schema: pa.Schema


def current(files: TableFiles, uri: str) -> Snapshot | None:
    """The table's current snapshot from its sidecar (``uri``: the table's location), or
    ``None`` when the sidecar is missing, damaged or for an older version."""
    if files.remote:
        return None
    try:
        latest = _latest(files)
        doc = _document(files.read(SIDECAR))
        if latest is None or doc is None:
            return None
        if doc["version"] != latest or doc["commit"] != _commit_hash(files, latest):
            return None
        schema = pa.ipc.read_schema(pa.py_buffer(bytes.fromhex(doc["schema"])))
        base = uri.rstrip("/")
        return Snapshot(latest, tuple(f"{base}/{n}" for n in doc["files"]), schema)
    except (DatabaseError, ValueError, KeyError, TypeError, pa.ArrowException):
        return None


def current_of(state: PathState) -> Snapshot | None:
    """``current`` for the table of a database's path ``state``; ``None`` also while rows are
    pending there (the caller reads them with the opened table)."""
    if state.files is None or state.pending or state.pending_schema is not None:
        return None
    return current(state.files, state.uri)


def record_of(state: PathState) -> None:
    """``record`` for the table of ``state`` just refreshed (nothing when there is none)."""
    stored = state.stored_schema()
    if state.files is not None and state.table is not None and stored is not None:
        record(state.files, state.table, stored)


def record(files: TableFiles, table: DeltaTable, schema: pa.Schema) -> None:
    """Write the sidecar of ``table``'s loaded version (``schema``: its canonical schema),
    unless it is already current or the table is not one the sidecar can describe."""
    if files.remote:
        return
    try:
        version = int(table.version())
        protocol = table.protocol()
        if protocol.min_reader_version > 1 or protocol.reader_features:
            return
        if table.metadata().partition_columns:
            return
        names = _names(files, table.file_uris())
        commit = _commit_hash(files, version)
        if names is None or commit is None:
            return
        if _recorded(files.read(SIDECAR)) == (version, commit):
            return
        doc = {
            "version": version,
            "commit": commit,
            "files": names,
            "schema": schema.serialize().to_pybytes().hex(),
        }
        _write_document(files, SIDECAR, doc)
    except (OSError, DatabaseError):
        return  # (a cache that cannot be written: the table is opened next time too)


def known_ids(files: TableFiles) -> tuple[frozenset[str], pa.Schema] | None:
    """On object storage, the record ids and canonical schema of the table's newest version
    from its ids sidecar (module docstring); None when there is none, or it is damaged or not
    of the newest version."""
    if not files.remote:
        return None
    try:
        reads: list[Callable[[], Any]] = [
            lambda: files.read(IDS_SIDECAR),
            lambda: files.list_stamps(_LOG),
        ]
        data, stamps = files.map(lambda read: read(), reads)  # (concurrently)
        doc, newest = _document(data), _newest(stamps)
        if doc is None or newest is None or [doc["version"], doc["commit"]] != newest:
            return None
        schema = pa.ipc.read_schema(pa.py_buffer(bytes.fromhex(doc["schema"])))
        return frozenset(str(i) for i in doc["ids"]), schema
    except (DatabaseError, ValueError, KeyError, TypeError, pa.ArrowException):
        return None


def record_ids(files: TableFiles, table: DeltaTable, ids: Sequence[str], schema: pa.Schema) -> None:
    """On object storage, write the ids sidecar of ``table``'s loaded version, whose record
    ids are exactly ``ids`` (at most ``KNOWN_IDS_ROWS``; otherwise nothing is written) and
    canonical schema ``schema``, unless a newer version was committed since."""
    if not files.remote or len(ids) > KNOWN_IDS_ROWS:
        return
    try:
        newest = _newest(files.list_stamps(_LOG))
        if newest is None or newest[0] != int(table.version()):
            return
        doc = {
            "version": newest[0],
            "commit": newest[1],
            "ids": sorted(ids),
            "schema": schema.serialize().to_pybytes().hex(),
        }
        _write_document(files, IDS_SIDECAR, doc)
    except (OSError, DatabaseError):
        return  # (a cache that cannot be written: the table is opened next time too)


def _newest(stamps: Any) -> list[Any] | None:
    """``[version, [size, mtime]]`` of the newest commit file among the log's files
    ``stamps`` (``TableFiles.list_stamps``; None: no commit)."""
    commits = {int(m.group(1)): stamp for n, stamp in stamps.items() if (m := _COMMIT.match(n))}
    if not commits:
        return None
    version = max(commits)
    return [version, list(commits[version])]


def _write_document(files: TableFiles, rel: str, doc: dict[str, Any]) -> None:
    """Write ``doc`` as a checksummed sidecar (JSON, then the xxh3 of it) at ``rel``."""
    body = json.dumps(doc).encode()
    files.write(rel, body + xxhash.xxh3_64(body).digest())


def _document(data: bytes | None) -> dict[str, Any] | None:
    """The JSON document of a checksummed sidecar (None: missing or damaged)."""
    if data is None or len(data) <= _CHECKSUM:
        return None
    body, digest = data[:-_CHECKSUM], data[-_CHECKSUM:]
    if xxhash.xxh3_64(body).digest() != digest:
        return None
    doc = json.loads(body)
    return doc if isinstance(doc, dict) else None


def _recorded(data: bytes | None) -> tuple[object, object] | None:
    """The version and commit checksum an existing sidecar names (None: unreadable)."""
    if data is None or len(data) <= _CHECKSUM:
        return None
    try:
        doc = json.loads(data[:-_CHECKSUM])
        return doc["version"], doc["commit"]
    except (ValueError, KeyError, TypeError):
        return None


def _names(files: TableFiles, uris: Sequence[str]) -> list[str] | None:
    names = []
    for uri in uris:
        name = files.name_of(uri)
        if name is None:
            return None  # (a file outside the table's directory)
        names.append(name)
    return names


def _latest(files: TableFiles) -> int | None:
    """The newest commit's version in the table's log (None: no commit)."""
    versions = [int(m.group(1)) for n in files.list_files(_LOG) if (m := _COMMIT.match(n))]
    return max(versions) if versions else None


def _commit_hash(files: TableFiles, version: int) -> str | None:
    data = files.read(f"{_LOG}/{version:020d}.json")
    return None if data is None else xxhash.xxh3_64(data).hexdigest()
