"""``LookupIndex``: persistent per-file hash indexes of lookup columns of a Delta table.

The problem. A result-cache lookup asks a results table for the rows whose
``__input_packet_hash`` is one of, say, 10k new hashes. The values are random, so file
statistics cannot prune and DataFusion scans the whole column on every lookup: ~0.1 s at 1M
rows, in every run, mostly to learn that none of the new hashes is stored. An in-process index
would not help: every run is a fresh process and would have to read the column first.

The approach: a sidecar per data file and indexed column. For each data file of the table,
``<table>/_orcapod_index/<scheme>/<column dir>/<file name>.h64`` holds the sorted 64-bit
hashes of that column's values in that file (8 bytes per row). Data files are immutable, so a
sidecar never goes stale, and a process keeps the ones it loaded by file name. A lookup:

1. lists the data files of the snapshot it reads;
2. loads each file's run of hashes: from the process cache, else from the sidecar, else by
   reading that one column of that one file, hashing it and writing the sidecar (the files
   not in memory or the pack concurrently on object storage: ``TableFiles.map``);
3. hashes the wanted values the same way and keeps those found in some run
   (``np.searchsorted``).

A miss is definite, so the values the index rules out never reach the query. A hit only means
"possibly stored": the surviving values go to the normal pushed-down query. A hash collision
therefore costs a query, never a wrong answer. When nothing survives, there is no query at all.

Packs. A table that grew by many small commits has many files, and reading one sidecar per
file would make every lookup cost more as the history grows. So a lookup that had to read at
least ``PACK_AFTER`` single sidecars writes the column's *pack* (``pack.h64p`` beside them): the
runs of every data file of its snapshot in one file. A lookup that misses more than one file
reads the pack first and only the files it lacks one by one. Packs are rewritten whole
(atomically); one that names files no longer in the snapshot is still correct for the files it
has, and a damaged one is ignored.

Which columns are indexed. A column is indexed on a table once a lookup of at least
``MIN_INDEXED_VALUES`` values is made on it (``want``), or when its sidecar directory exists
(``discover``: another process indexed it). A writer that commits to a table with indexed
columns writes the sidecar of the file its commit added, so the next process finds it. On
object storage there is no discovery: the listing would be a request in every run of every
writer, and most writers are the processes that look their tables up (which index their
own columns); the files of a writer that never looks up are indexed by the next lookup, as
below. The
hashes come from the committed batch (a commit that added one file holds exactly that batch;
the files of one that added several are left to the next lookup). A file without a sidecar is
indexed when first needed: written by another writer, by older code, or left behind by a
process killed between commit and sidecar.

Hashes come from ``id_index.hash_ids(stable=True)``: a value ending in 16 hex digits (every
hash and id orcapod writes) hashes to the value of those digits, decoded with numpy; any other
value to its xxh3 hash. Both are the same in every process, version and machine. Still,
``<scheme>`` is a fingerprint of the hashes of fixed probe values (``scheme()``), so a process
that ever hashed differently would use (and write) another scheme directory and never read
sidecars it cannot interpret.

Decisions:

* Local tables and tables on S3 are indexed, through ``table_files.TableFiles`` (on object
  storage a sidecar saves the requests of a query over every data file: one GET of the pack
  instead of a few ranged GETs per file; there a lookup that read ``REMOTE_PACK_AFTER``
  sidecars one by one rewrites the pack). Tables elsewhere (``gs://``, ...) are not indexed:
  every lookup is a query.
* Sidecars are written atomically (temporary file and rename; one PUT on S3) and end with a
  checksum of their content and of the name of the data file they index; on load the magic,
  scheme, row count, size and checksum are checked, and a sidecar that fails any of them
  (damaged, copied from another file, written by other code) is never believed: it is
  rebuilt from the data file. A lookup that trusts a sidecar skips rows, and a write of ids
  verified absent by such a lookup skips the duplicate check, so a wrong sidecar must never
  be used. If a sidecar cannot be
  written (e.g. a read-only store) the index still answers from memory and stops trying to
  persist for that table: the sidecar is a cache, not data, so that is not an error.
* Sidecars of data files that leave the snapshot (compaction, vacuum) are ignored and left
  behind, like the data files themselves.
* Nulls are never in a run; a lookup that also matches null skips the index.
* Only string columns are indexed (``indexable``): lookup keys are hashes and ids, and other
  types would need their widths normalised first (an int32 and an int64 of one value would
  hash differently).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence, Sized
from dataclasses import replace

import numpy as np
import pyarrow as pa
import xxhash
from numpy.typing import NDArray

from orcapod.databases.id_index import IdHashIndex, hash_ids, in_sorted_runs
from orcapod.databases.paths import segment_dirname
from orcapod.databases.queries import Constraint
from orcapod.databases.table_files import TableFiles
from orcapod.types.columns import RECORD_ID

__all__ = [
    "INDEX_DIR",
    "MERGED_SPILL_ROWS",
    "MIN_INDEXED_VALUES",
    "PACK_AFTER",
    "REMOTE_PACK_AFTER",
    "LookupIndex",
    "indexable",
    "scheme",
    "value_hashes",
]

INDEX_DIR = "_orcapod_index"
#: a lookup of at least this many values makes its column indexed on that table
MIN_INDEXED_VALUES = 16

_MAGIC = b"OIDX"
_FORMAT = 2
_HEADER = 4 + 4 + 8 + 8  # magic, format, scheme (8 bytes), row count
_CHECKSUM = 8  # trailing xxh3_64 of the data file's name and everything before it
_SUFFIX = ".h64"
_PACK_MAGIC = b"OIDP"
_PACK_NAME = "pack.h64p"
#: a lookup that had to read this many single sidecars writes the column's pack
PACK_AFTER = 8
#: the same on object storage, where every sidecar read is a request
REMOTE_PACK_AFTER = 2
#: merged runs of the files added after a lookup index's first lookup spill to temporary
#: files from this many hashes (``IdHashIndex(spill_rows=...)``)
MERGED_SPILL_ROWS = 1 << 19


def indexable(dtype: pa.DataType) -> bool:
    """Only string columns are indexed: lookup keys are hashes and ids; other types would need
    their widths normalised before hashing (int32 and int64 hash differently)."""
    checks = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)
    return any(check(dtype) for check in checks)


def value_hashes(values: pa.Array | pa.ChunkedArray) -> NDArray[np.uint64]:
    """The 64-bit index hash of each non-null string value (nulls are dropped)."""
    if values.null_count:
        values = values.drop_null()
    if len(values) == 0:
        return np.empty(0, dtype=np.uint64)
    if not pa.types.is_large_string(values.type):
        values = values.cast(pa.large_string())
    return hash_ids(values, stable=True)


@functools.cache
def scheme() -> bytes:
    """This process's hash scheme (see the module docstring)."""
    probes = pa.array(
        ["", "a", "orcapod", "x" * 7, "y" * 8, "z" * 9, "arrow_row_v1:" + "0f" * 16, "é✓"],
        type=pa.large_string(),
    )
    fingerprint = xxhash.xxh3_64(value_hashes(probes).astype("<u8").tobytes()).digest()
    return fingerprint


def _sorted_run(hashes: NDArray[np.uint64]) -> NDArray[np.uint64]:
    run: NDArray[np.uint64] = np.sort(hashes)
    return run


class LookupIndex:
    """The lookup indexes of one Delta table (see the module docstring)."""

    def __init__(self, files: TableFiles, pack_after: int = PACK_AFTER) -> None:
        self._files = files
        self._pack_after = pack_after
        self._root = f"{INDEX_DIR}/{scheme().hex()}"
        self._columns: set[str] = set()
        self._runs: dict[str, dict[str, NDArray[np.uint64]]] = {}
        # per column, the runs of the files last narrowed against, merged into a few sorted
        # runs (so a lookup costs a few searchsorted, not one per data file)
        self._merged: dict[
            str, tuple[frozenset[str] | None, list[NDArray[np.uint64]], IdHashIndex]
        ] = {}
        self._persist = True
        self._discovered = False

    @property
    def columns(self) -> frozenset[str]:
        """The indexed columns (after ``discover``)."""
        self.discover()
        return frozenset(self._columns)

    def discover(self) -> None:
        """Pick up the columns some process indexed (once per instance; locally only, see
        the module docstring)."""
        if self._discovered or self._files.remote:
            return
        self._discovered = True
        self._columns.update(_column_of_dir(name) for name in self._files.list_dirs(self._root))

    def note_lookup(self, constraints: Mapping[str, object], record_id_column: str | None) -> None:
        """Index the columns that ``constraints`` look up by at least ``MIN_INDEXED_VALUES``
        values from now on (also before the table exists, so its first commits write the
        sidecars; the first lookup on an existing table builds the missing ones). Record ids
        are not indexed here: their column has a bloom filter and an id index of its own."""
        for column, value in constraints.items():
            if column in (record_id_column, RECORD_ID):
                continue
            if isinstance(value, str | bytes) or not isinstance(value, Sized):
                continue
            if len(value) >= MIN_INDEXED_VALUES and column not in self._columns:
                self.discover()
                self._columns.add(column)

    def narrow_constraints(
        self, tests: Sequence[Constraint], stored: pa.Schema, files: Callable[[], list[str]]
    ) -> list[Constraint] | None:
        """``tests`` with the values of IN tests on indexed columns cut down to those that may
        be committed in ``files()`` (the snapshot's data files); ``None`` when some test can
        match no committed row."""
        out = []
        snapshot: list[str] | None = None
        for test in tests:
            position = stored.get_field_index(test.column)
            if (
                test.match_null
                or position < 0
                or test.column not in self.columns
                or not indexable(stored.field(position).type)
            ):
                out.append(test)
                continue
            snapshot = files() if snapshot is None else snapshot
            values = self.narrow(test.column, test.values, snapshot)
            if len(values) == 0:
                return None
            out.append(replace(test, values=values))
        return out

    def narrow(self, column: str, values: pa.Array, files: Sequence[str]) -> pa.Array:
        """Those of ``values`` (non-null, of the column's type) that may be stored in
        ``files``, the data files of the snapshot read."""
        first, merged = self._merged_runs(column, files)
        if (not first and not len(merged)) or len(values) == 0:
            return values.slice(0, 0)
        hashes = value_hashes(values)
        found = in_sorted_runs(first, hashes)
        if len(merged):
            found |= merged.maybe_contains(hashes)
        return values.filter(pa.array(found, pa.bool_()))

    def record_commit(self, added: Sequence[str], batch: pa.Table) -> None:
        """Write the sidecars of the file one commit added (``batch``: what it committed).
        A commit that added several files leaves them to the next lookup, which reads them."""
        if len(added) != 1:
            return
        for column in self.columns:
            position = batch.schema.get_field_index(column)
            if position < 0 or not indexable(batch.schema.field(position).type):
                continue
            run = _sorted_run(value_hashes(batch.column(column)))
            self._runs.setdefault(column, {})[added[0]] = run
            self._write(column, added[0], run)

    # ------------------------------------------------------------------ internals

    def _merged_runs(
        self, column: str, files: Sequence[str]
    ) -> tuple[list[NDArray[np.uint64]], IdHashIndex]:
        """The hashes of ``column`` in ``files``: the per-file runs of the files of this
        instance's first lookup as they are (merging them would cost more than one lookup
        saves), and the files added since merged into a few runs (an ``IdHashIndex``), so a
        run that commits file after file and looks up between commits searches a few runs,
        not one per file. A merged file's own run is dropped (8 bytes a row held once, not
        twice), and the merged runs spill to temporary files once they reach
        ``MERGED_SPILL_ROWS`` hashes, so a long run's own commits cost 2 bytes a row in
        memory. Rebuilt, reading every file's run again, when a file left the snapshot (e.g.
        after compaction)."""
        wanted = frozenset(files)
        known, first, index = self._merged.get(column, (None, [], IdHashIndex()))
        if known is None or not known <= wanted:
            self._load(column, files)  # reads the missing runs (and writes a pack)
            cache = self._runs[column]
            first = [cache[f] for f in files if len(cache[f])]
            index = IdHashIndex(spill_rows=MERGED_SPILL_ROWS)
            self._merged[column] = (wanted, first, index)
            return first, index
        if known != wanted:
            added = [file for file in files if file not in known]
            self._load(column, added, pack=False)
            cache = self._runs[column]
            for file in added:  # merged: its run is not also kept on its own
                index.add(cache.pop(file))
            self._merged[column] = (wanted, first, index)
        return first, index

    def _load(
        self, column: str, files: Sequence[str], pack: bool = True
    ) -> list[NDArray[np.uint64]]:
        """The runs of ``files`` (read when not held), writing the column's pack when it read
        at least ``pack_after`` single sidecars and ``pack``."""
        cache = self._runs.setdefault(column, {})
        packed: dict[str, NDArray[np.uint64]] = {}
        if sum(1 for file in files if file not in cache) > 1:
            packed = self._read_pack(column)
        singles = []
        for file in files:
            if file not in cache:
                name = self._files.name_of(file)
                run = None if name is None else packed.get(name)
                if run is None:
                    singles.append(file)
                else:
                    cache[file] = run

        def fetch(file: str) -> NDArray[np.uint64]:
            run = self._read(column, file)
            return self._build(column, file) if run is None else run

        for file, run in zip(singles, self._files.map(fetch, singles), strict=True):
            cache[file] = run
        runs = [cache[file] for file in files if len(cache[file])]
        if pack and len(singles) >= self._pack_after:
            self._write_pack(column, {file: cache[file] for file in files})
        return runs

    def _pack_path(self, column: str) -> str:
        return f"{self._root}/{_dir_of_column(column)}/{_PACK_NAME}"

    def _read_pack(self, column: str) -> dict[str, NDArray[np.uint64]]:
        """The runs of the column's pack by data file name (empty: no valid pack)."""
        data = self._files.read(self._pack_path(column))
        return {} if data is None else _unpack(data)

    def _write_pack(self, column: str, runs: Mapping[str, NDArray[np.uint64]]) -> None:
        """One file with the runs of ``runs``' data files (those directly in the table)."""
        names = {f: self._files.name_of(f) for f in runs}
        entries = {name: runs[f] for f, name in names.items() if name is not None}
        self._put(self._pack_path(column), _pack(entries))

    def _sidecar(self, column: str, file: str) -> str | None:
        """Where the sidecar of ``file`` lives (``None``: not a file directly in the table)."""
        name = self._files.name_of(file)
        if name is None:
            return None
        return f"{self._root}/{_dir_of_column(column)}/{name}{_SUFFIX}"

    def _read(self, column: str, file: str) -> NDArray[np.uint64] | None:
        path = self._sidecar(column, file)
        data = None if path is None else self._files.read(path)
        if data is None or len(data) < _HEADER + _CHECKSUM:
            return None
        body = _checked(data, str(self._files.name_of(file)).encode())
        if body is None or body[:4] != _MAGIC or body[8:16] != scheme():
            return None
        (form,) = np.frombuffer(body, dtype="<u4", count=1, offset=4)
        (rows,) = np.frombuffer(body, dtype="<u8", count=1, offset=16)
        if int(form) != _FORMAT or len(body) != _HEADER + 8 * int(rows):
            return None
        run: NDArray[np.uint64] = np.frombuffer(body, dtype="<u8", offset=_HEADER).astype(np.uint64)
        return run

    def _build(self, column: str, file: str) -> NDArray[np.uint64]:
        """Read ``column`` of one data file, hash it and persist the sidecar (a file written
        before the column existed holds only nulls there: an empty run)."""
        values = self._files.read_column(file, column)
        if values is None or not indexable(values.type):
            run = np.empty(0, dtype=np.uint64)
        else:
            run = _sorted_run(value_hashes(values))
        self._write(column, file, run)
        return run

    def _write(self, column: str, file: str, run: NDArray[np.uint64]) -> None:
        path = self._sidecar(column, file)
        if path is None:
            return
        header = _MAGIC + np.array([_FORMAT], dtype="<u4").tobytes() + scheme()
        header += np.array([len(run)], dtype="<u8").tobytes()
        name = str(self._files.name_of(file))
        self._put(path, _with_checksum(header + run.astype("<u8").tobytes(), name))

    def _put(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` atomically (module docstring: best effort)."""
        if not self._persist:
            return
        try:
            self._files.write(path, data)
        except OSError:
            # a cache that cannot be persisted (read-only store): answer from memory only
            self._persist = False


def _with_checksum(body: bytes, name: str = "") -> bytes:
    """``body`` followed by its checksum, bound to the data file it indexes (by name)."""
    key = name.encode()
    return body + xxhash.xxh3_64(key + b"\0" + body).digest()


def _checked(data: bytes, key: bytes = b"") -> bytes | None:
    """The body of an index file whose checksum matches (None: damaged, or written for
    another data file or by other code: never believed, rebuilt instead)."""
    body, digest = data[:-_CHECKSUM], data[-_CHECKSUM:]
    return body if xxhash.xxh3_64(key + b"\0" + body).digest() == digest else None


def _pack(entries: Mapping[str, NDArray[np.uint64]]) -> bytes:
    """Pack format: magic, format, scheme, file count; per file its name length, name and row
    count; then every run, in that order (little-endian); then the checksum of all that."""
    parts = [_PACK_MAGIC, np.array([_FORMAT], dtype="<u4").tobytes(), scheme()]
    parts.append(np.array([len(entries)], dtype="<u8").tobytes())
    for name, run in entries.items():
        encoded = name.encode()
        parts += [np.array([len(encoded)], dtype="<u4").tobytes(), encoded]
        parts.append(np.array([len(run)], dtype="<u8").tobytes())
    parts += [run.astype("<u8").tobytes() for run in entries.values()]
    return _with_checksum(b"".join(parts))


def _unpack(data: bytes) -> dict[str, NDArray[np.uint64]]:
    """The entries of a pack; empty when it is not a complete, intact pack of this scheme."""
    if len(data) < _HEADER + _CHECKSUM:
        return {}
    checked = _checked(data)
    if checked is None:
        return {}
    data = checked
    if data[:4] != _PACK_MAGIC or data[8:16] != scheme():
        return {}
    if int(np.frombuffer(data, dtype="<u4", count=1, offset=4)[0]) != _FORMAT:
        return {}
    count = int(np.frombuffer(data, dtype="<u8", count=1, offset=16)[0])
    offset, sizes = _HEADER, []
    try:
        for _ in range(count):
            length = int(np.frombuffer(data, dtype="<u4", count=1, offset=offset)[0])
            name = data[offset + 4 : offset + 4 + length].decode()
            rows = int(np.frombuffer(data, dtype="<u8", count=1, offset=offset + 4 + length)[0])
            sizes.append((name, rows))
            offset += 4 + length + 8
    except (ValueError, UnicodeDecodeError):
        return {}
    if len(data) != offset + 8 * sum(rows for _, rows in sizes):
        return {}
    out = {}
    for name, rows in sizes:
        out[name] = np.frombuffer(data, dtype="<u8", count=rows, offset=offset).astype(np.uint64)
        offset += 8 * rows
    return out


def _dir_of_column(column: str) -> str:
    return segment_dirname(column) if column else "~"


def _column_of_dir(name: str) -> str:
    """Inverse of ``_dir_of_column`` (``segment_dirname`` escapes as ``~XX`` hex bytes)."""
    if name == "~":
        return ""
    out = bytearray()
    index = 0
    while index < len(name):
        if name[index] == "~":
            out.append(int(name[index + 1 : index + 3], 16))
            index += 3
        else:
            out.extend(name[index].encode())
            index += 1
    return out.decode("utf-8")
