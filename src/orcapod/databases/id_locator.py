"""``IdLocator``: where each record id of a Delta table is stored, for look-ups of a few ids.

The problem. Following one value upstream (``lineage``) looks up one or a few record ids (result
ids, pipeline entry ids) per table. Ids are hashes, so uniformly spread: Delta file statistics
cannot skip a file, and a pushed-down query opens every data file's footer and bloom filter and
decodes the row group that may hold the id. That is ~20 ms per look-up at 100k rows and 0.1 s
or more at 1M, and the first query of a process also starts DataFusion (~0.2-1 s).

The approach: a *locator pack* per table, ``<table>/_orcapod_index/locate-v2.pack``,
mapping the 64-bit hash of every record id to its data file and row. It is bucketed by the
hash's leading bits (about ``BUCKET_ENTRIES`` entries per bucket), so a look-up reads the
header (file names, bucket offsets and checksums) and one small bucket per id, then reads the
row group holding each candidate row with pyarrow. No query, no DataFusion.

Correctness rules (never a wrong answer):

* Every row read is checked: it must carry an id that was asked for. A candidate whose row
  does not hash to the entry's hash means the pack is wrong (damaged, or written for other
  files): the look-up gives up (``None``) and the caller runs the ordinary query.
* A miss is definite only for files the locator covers. Files of the snapshot that the pack
  does not name (commits after it was written, by this or another writer; files that
  compaction wrote) are covered by reading their ``__record_id`` column once per process;
  entries of files no longer in the snapshot (compaction, deletes) are ignored.
* Header and buckets carry checksums (xxh3); a pack that fails any check is not used.
* An id's hash is the xxh3-64 of its UTF-8 bytes (``id_hashes``): stable across versions and
  machines, and computed without polars, whose import (~0.15 s) a look-up of a few ids in a
  fresh process (``orcapod lineage``) must not pay. Building a pack hashes every id of the
  table one by one (~0.2 s per million ids), once per table. Packs of the earlier
  polars-hash format (``locate-<scheme>.pack``) are not read; the first look-up writes the new
  one.
* Data files are immutable, so an entry never goes stale; only coverage changes. orcapod and
  deltalake write no deletion vectors (a deleted row's file is rewritten), so a row in a
  snapshot file is a live row.

Writing. Nothing is written at commit time (the write path pays nothing). A look-up that had
to index ``PACK_AFTER`` or more files itself (or more rows than the pack holds) rewrites the
pack whole, atomically (a temporary file and a rename; one PUT on object storage), covering
the snapshot it read; concurrent rewrites are harmless (each pack is self-consistent for the
files it names, the last one wins). ``orcapod store compact`` rebuilds it for the compacted
files. A pack that cannot be written (read-only store) leaves the locator answering from
memory.

Decisions:

* Used only for look-ups of at most ``MAX_LOCATED`` ids and only when asked (``build``), or
  when a pack already covers most of the snapshot: a look-up of many ids is a scan anyway.
* Rows of a located file are read by row group (pyarrow cannot read part of one), so a
  look-up decodes at most one row group per candidate file. Data files are written in
  row groups of ``delta_files.ROW_GROUP_ROWS`` rows; files written before that (stores from
  earlier versions, one row group per commit of up to ``batch_size`` rows) stay correct but
  each look-up in them decodes a whole large group (~10x slower at 50,000 rows a group):
  ``orcapod store compact`` rewrites the files it merges (a table's small files; deltalake
  leaves a table of one file as it is) in small row groups and rebuilds the pack.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import xxhash
from numpy.typing import NDArray

from orcapod.databases.column_index import INDEX_DIR
from orcapod.databases.stats_scan import conform
from orcapod.databases.table_files import TableFiles
from orcapod.errors import DatabaseError
from orcapod.types.columns import RECORD_ID

if TYPE_CHECKING:
    from orcapod.databases.delta_state import PathState
    from orcapod.databases.snapshot_file import Snapshot

__all__ = [
    "BUCKET_ENTRIES",
    "ENTRY",
    "MAX_LOCATED",
    "PACK_AFTER",
    "IdLocator",
    "id_hashes",
    "locate_ids",
    "pack_name",
    "write_pack",
]

#: look-ups of more ids than this go to the query (a scan serves them as well)
MAX_LOCATED = 64
#: a look-up that indexed this many files itself rewrites the pack
PACK_AFTER = 8
#: the mean number of entries per bucket of a pack
BUCKET_ENTRIES = 256
#: one entry of a pack: id hash, data file ordinal, row in that file
ENTRY = np.dtype([("hash", "<u8"), ("file", "<u4"), ("row", "<u4")])

_MAGIC = b"OIDL"
_FORMAT = 2
#: the hash of the entries (the preamble's scheme field)
_SCHEME = b"xxh3-64\0"
_PREAMBLE = 48  # magic, format, scheme, bits, reserved, file count, entry count, header size
_CHECKSUM = 8


def pack_name() -> str:
    """The pack's path relative to its table's directory."""
    return f"{INDEX_DIR}/locate-v{_FORMAT}.pack"


def id_hashes(ids: pa.Array | pa.ChunkedArray) -> NDArray[np.uint64]:
    """The 64-bit hash of each non-null id: xxh3-64 of its UTF-8 bytes (nulls are dropped)."""
    values = ids.drop_null() if ids.null_count else ids
    digest = xxhash.xxh3_64_intdigest
    return np.fromiter(
        (digest(v.encode()) for v in values.to_pylist()), dtype=np.uint64, count=len(values)
    )


@dataclass(frozen=True)
class _Run:
    """The entries of one data file: sorted id hashes and their rows."""

    hashes: NDArray[np.uint64]
    rows: NDArray[np.uint32]


@dataclass(frozen=True)
class _Header:
    names: tuple[str, ...]
    sizes: tuple[int, ...]
    bits: int
    offsets: NDArray[np.uint64]
    checksums: NDArray[np.uint64]
    start: int  #: where the entries begin


class IdLocator:
    """The record-id locator of one Delta table (see the module docstring)."""

    def __init__(self, files: TableFiles) -> None:
        self._files = files
        self._runs: dict[str, _Run] = {}  #: files this process indexed, by data file name
        self._names: dict[str, str | None] = {}  #: data file names by URI
        self._persist = True

    # ------------------------------------------------------------------ look-ups

    def find(
        self,
        ids: pa.Array,
        snapshot: Sequence[str],
        schema: pa.Schema,
        *,
        build: bool,
    ) -> pa.Table | None:
        """The committed rows of ``snapshot`` (the data files as deltalake lists them) whose
        ``__record_id`` is one of ``ids``, cast to ``schema``; ``None`` when the locator cannot
        answer (the caller then queries): too many ids, files outside the table's directory,
        a pack that fails a check, or - without ``build`` - a pack covering too little."""
        if len(ids) > MAX_LOCATED:
            return None
        names: dict[str, str] = {}
        for uri in snapshot:
            name = self._name_of(uri)
            if name is None:
                return None
            names[name] = uri
        header = self._header()
        packed = set() if header is None else set(header.names) & names.keys()
        missing = [n for n in names if n not in packed and n not in self._runs]
        if not build and (header is None or len(missing) > PACK_AFTER):
            return None
        for name in missing:
            self._runs[name] = self._index(names[name])
        if len(missing) >= PACK_AFTER or (
            missing and sum(len(self._runs[n].hashes) for n in missing) > _rows(header, packed)
        ):
            self._rewrite(header, names)
            header = self._header()
            packed = set() if header is None else set(header.names) & names.keys()
        try:
            return self._answer(ids, names, header, packed, schema)
        except _Stale:
            if not build:
                return None
        # the pack is damaged or wrong: index every file from its data and replace the pack
        for name, uri in names.items():
            if name not in self._runs:
                self._runs[name] = self._index(uri)
        self._rewrite(None, names)
        try:
            return self._answer(ids, names, None, set(), schema)
        except _Stale:
            return None

    def _name_of(self, uri: str) -> str | None:
        """``TableFiles.name_of``, remembered (it resolves the path: a few system calls)."""
        if uri not in self._names:
            self._names[uri] = self._files.name_of(uri)
        return self._names[uri]

    def packed_files(self) -> frozenset[str]:
        """The names of the data files the table's pack covers (empty: no valid pack)."""
        header = self._header()
        return frozenset() if header is None else frozenset(header.names)

    def _answer(
        self,
        ids: pa.Array,
        names: dict[str, str],
        header: _Header | None,
        packed: set[str],
        schema: pa.Schema,
    ) -> pa.Table:
        wanted = id_hashes(ids)
        candidates = self._from_runs(wanted, [n for n in names if n not in packed])
        if header is not None and packed:
            candidates.extend(self._from_pack(header, wanted, packed))
        return self._read(candidates, names, ids, schema)

    def _from_runs(
        self, wanted: NDArray[np.uint64], names: Sequence[str]
    ) -> list[tuple[str, int, int]]:
        out: list[tuple[str, int, int]] = []
        for name in names:
            run = self._runs[name]
            lo = np.searchsorted(run.hashes, wanted, side="left")
            hi = np.searchsorted(run.hashes, wanted, side="right")
            for h, a, b in zip(wanted.tolist(), lo.tolist(), hi.tolist(), strict=True):
                out.extend((name, int(run.rows[i]), h) for i in range(a, b))
        return out

    def _from_pack(
        self, header: _Header, wanted: NDArray[np.uint64], packed: set[str]
    ) -> list[tuple[str, int, int]]:
        shift = 64 - header.bits
        out: list[tuple[str, int, int]] = []
        buckets = sorted({0 if header.bits == 0 else int(h) >> shift for h in wanted.tolist()})
        for bucket in buckets:
            entries = self._bucket(header, bucket)
            if entries is None:
                raise _Stale
            for h in wanted.tolist():
                if (0 if header.bits == 0 else h >> shift) != bucket:
                    continue
                for entry in entries[entries["hash"] == h]:
                    name = header.names[int(entry["file"])]
                    if name in packed:
                        out.append((name, int(entry["row"]), h))
        return out

    def _read(
        self,
        candidates: list[tuple[str, int, int]],
        names: dict[str, str],
        ids: pa.Array,
        schema: pa.Schema,
    ) -> pa.Table:
        """The candidate rows that carry a wanted id (see the module docstring); ``_Stale``
        when an entry points at a row with another id."""
        by_file: dict[str, list[tuple[int, int]]] = {}
        for name, row, h in candidates:
            by_file.setdefault(name, []).append((row, h))
        parts = []
        wanted = set(ids.to_pylist())
        for name, rows in by_file.items():
            positions = sorted({r for r, _ in rows})
            try:
                table = self._files.read_rows(names[name], positions)
            except DatabaseError as err:
                raise _Stale from err  # (a row the file does not have)
            if RECORD_ID not in table.column_names:
                raise _Stale
            got = table.column(RECORD_ID)
            expected = dict(rows)
            hashes = id_hashes(got).tolist()
            if len(hashes) != len(positions):  # a null id: not a row of ours
                raise _Stale
            for position, h in zip(positions, hashes, strict=True):
                if expected[position] != h:
                    raise _Stale  # the entry points at another row: the pack is wrong
            keep = pa.array([v in wanted for v in got.to_pylist()], pa.bool_())
            parts.append(conform(table.filter(keep), schema))
        if not parts:
            return schema.empty_table()
        return pa.concat_tables(parts)

    # ------------------------------------------------------------------ building

    def _index(self, uri: str) -> _Run:
        """The run of one data file: its ``__record_id`` column read and hashed."""
        ids = self._files.read_column(uri, RECORD_ID)
        if ids is None:
            raise DatabaseError(f"The data file {uri} has no {RECORD_ID} column; it is not ours.")
        hashes = id_hashes(ids)
        if len(hashes) != len(ids):
            raise DatabaseError(f"The data file {uri} holds a null {RECORD_ID}; it is not ours.")
        order = np.argsort(hashes, kind="stable")
        return _Run(hashes[order], order.astype(np.uint32))

    def rebuild(self, snapshot: Sequence[str]) -> None:
        """Index every file of ``snapshot`` and write the pack (after compaction)."""
        names = {}
        for uri in snapshot:
            name = self._files.name_of(uri)
            if name is not None:
                names[name] = uri
        header = self._header()
        for name, uri in names.items():
            if name not in self._runs and (header is None or name not in header.names):
                self._runs[name] = self._index(uri)
        self._rewrite(header, names)

    def _rewrite(self, header: _Header | None, names: dict[str, str]) -> None:
        """Write a pack of every file of ``names`` (from the old pack and this process's runs)."""
        if not self._persist:
            for name, uri in names.items():  # (answered from memory: every file indexed)
                if name not in self._runs and (header is None or name not in header.names):
                    self._runs[name] = self._index(uri)
            return
        old = None if header is None else self._entries(header)
        order = sorted(names)
        ordinal = {n: i for i, n in enumerate(order)}
        parts = []
        sizes = []
        for name in order:
            run = self._runs.get(name)
            if run is not None:
                part = np.empty(len(run.hashes), dtype=ENTRY)
                part["hash"], part["row"] = run.hashes, run.rows
            elif old is not None and header is not None and name in header.names:
                part = old[old["file"] == header.names.index(name)].copy()
            else:
                self._runs[name] = run = self._index(names[name])
                part = np.empty(len(run.hashes), dtype=ENTRY)
                part["hash"], part["row"] = run.hashes, run.rows
            part["file"] = ordinal[name]
            parts.append(part)
            sizes.append(len(part))
        entries = np.concatenate(parts) if parts else np.empty(0, dtype=ENTRY)
        entries = entries[np.argsort(entries["hash"], kind="stable")]
        try:
            self._files.write(pack_name(), write_pack(order, sizes, entries))
        except OSError:
            self._persist = False  # a cache that cannot be persisted: answer from memory

    # ------------------------------------------------------------------ the pack file

    def _header(self) -> _Header | None:
        preamble = self._read_pack(pack_name(), 0, _PREAMBLE)
        if preamble is None or len(preamble) < _PREAMBLE:
            return None
        if preamble[:4] != _MAGIC or preamble[8:16] != _SCHEME:
            return None
        (form,) = np.frombuffer(preamble, dtype="<u4", count=1, offset=4)
        (bits,) = np.frombuffer(preamble, dtype="<u4", count=1, offset=16)
        count, _, size = np.frombuffer(preamble, dtype="<u8", count=3, offset=24)
        if int(form) != _FORMAT or int(bits) > 32:
            return None
        data = self._read_pack(pack_name(), 0, int(size))
        if data is None or len(data) != int(size) or int(size) < _PREAMBLE + _CHECKSUM:
            return None
        body = data[:-_CHECKSUM]
        if xxhash.xxh3_64(body).digest() != data[-_CHECKSUM:]:
            return None
        offset, names, sizes = _PREAMBLE, [], []
        try:
            for _ in range(int(count)):
                length = int(np.frombuffer(body, dtype="<u4", count=1, offset=offset)[0])
                names.append(body[offset + 4 : offset + 4 + length].decode())
                sizes.append(
                    int(np.frombuffer(body, dtype="<u8", count=1, offset=offset + 4 + length)[0])
                )
                offset += 4 + length + 8
            buckets = 1 << int(bits)
            offsets = np.frombuffer(body, dtype="<u8", count=buckets + 1, offset=offset)
            checksums = np.frombuffer(
                body, dtype="<u8", count=buckets, offset=offset + 8 * (buckets + 1)
            )
        except (ValueError, UnicodeDecodeError):
            return None
        if offset + 8 * (2 * buckets + 1) != len(body):
            return None
        return _Header(tuple(names), tuple(sizes), int(bits), offsets, checksums, int(size))

    def _read_pack(self, rel: str, offset: int, length: int) -> bytes | None:
        """Bytes of the pack (None: missing or unreadable; it is a cache, never an error)."""
        try:
            return self._files.read_range(rel, offset, length)
        except DatabaseError:
            return None

    def _bucket(self, header: _Header, bucket: int) -> NDArray[np.void] | None:
        lo, hi = int(header.offsets[bucket]), int(header.offsets[bucket + 1])
        if hi < lo:
            return None
        if hi == lo:
            return np.empty(0, dtype=ENTRY)
        data = self._read_pack(
            pack_name(), header.start + ENTRY.itemsize * lo, ENTRY.itemsize * (hi - lo)
        )
        if data is None or len(data) != ENTRY.itemsize * (hi - lo):
            return None
        if xxhash.xxh3_64_intdigest(data) != int(header.checksums[bucket]):
            return None
        return np.frombuffer(data, dtype=ENTRY)

    def _entries(self, header: _Header) -> NDArray[np.void] | None:
        """Every entry of the pack (None: damaged)."""
        total = int(header.offsets[-1])
        data = self._read_pack(pack_name(), header.start, ENTRY.itemsize * total)
        if data is None or len(data) != ENTRY.itemsize * total:
            return None
        entries = np.frombuffer(data, dtype=ENTRY)
        for bucket in range(len(header.checksums)):
            lo, hi = int(header.offsets[bucket]), int(header.offsets[bucket + 1])
            if xxhash.xxh3_64_intdigest(entries[lo:hi].tobytes()) != int(header.checksums[bucket]):
                return None
        return entries


def locate_ids(
    state: PathState,
    files: TableFiles | None,
    ids: pa.Array,
    *,
    build: bool,
    snapshot: Snapshot | None = None,
) -> pa.Table | None:
    """The committed rows of the table of ``state`` with one of ``ids``, from its locator;
    ``None``: ask the query. ``build`` creates the locator (and indexes what it lacks); without
    it only a locator this process already has is used, so look-ups elsewhere in the engine
    never pay for building one. ``snapshot``: the table's current files and schema when known
    without opening it (``snapshot_file``); else those of the state's open table."""
    if files is None or len(ids) > MAX_LOCATED:
        return None
    if snapshot is not None:
        uris, schema = list(snapshot.uris), snapshot.schema
    elif state.table is not None:
        uris = state.table.file_uris()
        stored = state.stored_schema()
        assert stored is not None  # (a table has a stored schema)
        schema = stored
    else:
        return None
    if state.locator is None:
        if not build:
            return None
        state.locator = IdLocator(files)
    return state.locator.find(ids, uris, schema, build=build)


class _Stale(DatabaseError):
    """The pack disagrees with the data files (damaged, or written for other files)."""


def _rows(header: _Header | None, packed: set[str]) -> int:
    """The entries of the pack for the files of ``packed``."""
    if header is None:
        return 0
    return sum(
        size for name, size in zip(header.names, header.sizes, strict=True) if name in packed
    )


def write_pack(names: Sequence[str], sizes: Sequence[int], entries: NDArray[np.void]) -> bytes:
    """Pack format (little-endian): the preamble (magic, format, scheme, bucket bits, reserved,
    file count, entry count, header size), per file its name length, name and entry count,
    the bucket offsets (in entries) and the buckets' checksums, the header's checksum; then
    the entries sorted by hash."""
    total = len(entries)
    bits = 0 if total <= BUCKET_ENTRIES else min(32, math.ceil(math.log2(total / BUCKET_ENTRIES)))
    buckets = 1 << bits
    if bits:
        prefixes = entries["hash"] >> np.uint64(64 - bits)
        offsets = np.searchsorted(prefixes, np.arange(buckets + 1, dtype=np.uint64)).astype("<u8")
    else:
        offsets = np.array([0, total], dtype="<u8")
    raw = entries.tobytes()
    size = ENTRY.itemsize
    checksums = np.array(
        [
            xxhash.xxh3_64_intdigest(raw[size * int(offsets[b]) : size * int(offsets[b + 1])])
            for b in range(buckets)
        ],
        dtype="<u8",
    )
    table = b"".join(
        np.array([len(n.encode())], dtype="<u4").tobytes()
        + n.encode()
        + np.array([s], dtype="<u8").tobytes()
        for n, s in zip(names, sizes, strict=True)
    )
    header_size = _PREAMBLE + len(table) + offsets.nbytes + checksums.nbytes + _CHECKSUM
    preamble = (
        _MAGIC
        + np.array([_FORMAT], dtype="<u4").tobytes()
        + _SCHEME
        + np.array([bits, 0], dtype="<u4").tobytes()
        + np.array([len(names), total, header_size], dtype="<u8").tobytes()
    )
    body = preamble + table + offsets.tobytes() + checksums.tobytes()
    return body + xxhash.xxh3_64(body).digest() + raw
