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
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import xxhash

from orcapod.databases.column_index import INDEX_DIR
from orcapod.databases.table_files import TableFiles
from orcapod.errors import DatabaseError

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from orcapod.databases.delta_state import PathState

__all__ = ["SIDECAR", "Snapshot", "current", "current_of", "record", "record_of"]

SIDECAR = f"{INDEX_DIR}/snapshot-v1.json"
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
        data = files.read(SIDECAR)
        if latest is None or data is None or len(data) <= _CHECKSUM:
            return None
        body, digest = data[:-_CHECKSUM], data[-_CHECKSUM:]
        if xxhash.xxh3_64(body).digest() != digest:
            return None
        doc = json.loads(body)
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
        body = json.dumps(
            {
                "version": version,
                "commit": commit,
                "files": names,
                "schema": schema.serialize().to_pybytes().hex(),
            }
        ).encode()
        files.write(SIDECAR, body + xxhash.xxh3_64(body).digest())
    except (OSError, DatabaseError):
        return  # (a cache that cannot be written: the table is opened next time too)


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
