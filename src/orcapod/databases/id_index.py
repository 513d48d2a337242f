"""``IdHashIndex``: an in-process set of 64-bit record-id hashes, for cheap duplicate checks.

The Delta backend must check every incoming batch of record ids against the ids already
committed. Record ids are random hashes, so file statistics and bloom filters prune little and
a pushed-down query scans the whole ``__record_id`` column on every write (70-100 ms per 10k
ids at 1M rows). Instead each path keeps this index of the committed ids' hashes:

* Hashing is vectorised (``hash_ids``). An id whose last 16 characters are hex digits - every
  id orcapod makes ends in the hex of a random digest - hashes to the 64-bit value of those
  digits, decoded with numpy: no hashing at all, and no polars import. Any other string hashes
  with polars' ``Series.hash`` (fixed seed; deterministic within one polars version). The
  rule is per value, so a value hashes the same whatever batch it comes in. Two ids that
  differ only before their last 16 hex digits share a hash, which is fine: a hash match only
  ever means "possibly equal".
* Storage is a few sorted ``uint64`` numpy runs (a log-structured merge: a new run is merged
  with the previous one while that one is at most twice its size), so adding a batch costs an
  amortised O(batch log n) and a membership test is one ``np.searchsorted`` of the sorted
  queries per run (at most ~log2(n / batch) runs).
* A hit only means "possibly stored": the caller confirms hits against the real ids (a
  pushed-down query for just those ids), so a hash collision can never reject or drop a row.
  A miss is definite, which is what makes the check cheap: fresh ids never touch the table.

Memory: 8 bytes per stored id (plus transient copies during a merge), i.e. 8 MB per million
records per path written by this process; an index checking verified ids (below) is
bounded, and an ``IdHashIndex(spill_rows=...)`` keeps its large runs in temporary files
(``spilled_runs``: 2 bytes a hash in memory).

``CommittedIds`` is what a writer knows of one table: the hashes of the ids committed in the
versions ``(base, version]`` (``base`` -1: every id) and the data files of ``version``, so
``sync_index`` brings it up to a later version by reading only the record-id column of the
files added since. A full index (``base`` -1) serves every duplicate check. A *partial* one
(``base`` >= 0) serves only checks of ids the caller already verified absent at a version
``since >= base`` (e.g. a query that did not find them): such ids can only clash with rows
committed after ``base``. A partial index starts empty, so a writer that verified its ids
itself never reads the whole column.

polars, deltalake and ``pyarrow.parquet`` are imported inside the functions that use them, so
that importing orcapod does not import them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import xxhash
from numpy.typing import NDArray

from orcapod._arrow_without_pandas import column_numpy
from orcapod.databases.spilled_runs import BITS_PER_HASH, SpilledRuns
from orcapod.databases.table_files import TableFiles
from orcapod.errors import DatabaseError
from orcapod.types.columns import RECORD_ID

if TYPE_CHECKING:
    from deltalake import DeltaTable

#: hashes a ``CommittedIds`` checking verified ids keeps at most (8 bytes each), beyond its
#: newest run
MAX_HELD_IDS = 1 << 20

__all__ = [
    "HEX_PAIRS",
    "MAX_HELD_IDS",
    "CommittedIds",
    "IdHashIndex",
    "fixed_hex_tail",
    "hash_ids",
    "in_sorted_runs",
    "index_own_commit",
    "sync_index",
]

_SEED = 0x6F726361  # "orca"


_TAIL = 16  # hex digits decoded into a hash
_INVALID = 256


def _pair_table() -> NDArray[np.uint16]:
    """Byte value of every two-character hex pair read as a little-endian uint16 (else 256)."""
    table = np.full(65536, _INVALID, dtype=np.uint16)
    digits = {c: v for v, c in enumerate(b"0123456789abcdef")}
    digits.update({c: 10 + v for v, c in enumerate(b"ABCDEF")})
    for hi_char, hi in digits.items():
        for lo_char, lo in digits.items():
            table[hi_char | (lo_char << 8)] = hi * 16 + lo
    return table


#: hex pair (two ASCII bytes viewed as one little-endian uint16) -> its byte value, or 256
HEX_PAIRS = _pair_table()


def hash_ids(ids: pa.Array | pa.ChunkedArray, stable: bool = False) -> NDArray[np.uint64]:
    """A 64-bit hash per id (vectorised; equal ids give equal hashes): the value of its last
    16 hex digits, else polars' hash (module docstring). ``stable``: hash the ids that do not
    end in hex digits with xxh3 instead (one call per such id; the same in every process and
    version, for hashes that are stored)."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    n = len(ids)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    tails, hexed = _hex_tails(ids)
    if hexed is None:  # every id ends in hex digits (the usual case)
        return tails
    if stable:
        others = np.flatnonzero(~hexed)
        texts = ids.take(pa.array(others, pa.int64())).cast(pa.large_string()).to_pylist()
        tails[others] = np.fromiter(
            (xxhash.xxh3_64_intdigest((t or "").encode()) for t in texts),
            dtype=np.uint64,
            count=len(texts),
        )
        return tails
    import polars as pl

    hashes: NDArray[np.uint64] = pl.Series(values=ids).hash(seed=_SEED).to_numpy()
    return np.where(hexed, tails, hashes)


def _offsets(ids: pa.Array) -> NDArray[np.int64]:
    """The value offsets of a string or large-string array (its slice of them)."""
    offset_type = np.int64 if pa.types.is_large_string(ids.type) else np.int32
    raw = np.frombuffer(ids.buffers()[1], dtype=offset_type)
    offsets: NDArray[np.int64] = raw[ids.offset : ids.offset + len(ids) + 1].astype(np.int64)
    return offsets


def fixed_hex_tail(ids: pa.Array, digits: int) -> NDArray[np.uint16] | None:
    """Per id, the byte value of each pair of its last ``digits`` characters (``HEX_PAIRS``:
    256 for a pair that is not hex), when the ids are strings of one width of at least
    ``digits`` with no null (ids orcapod writes); else None."""
    n = len(ids)
    if (
        n == 0
        or ids.null_count
        or not (pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type))
    ):
        return None
    offsets = _offsets(ids)
    width = int(offsets[1] - offsets[0])
    if width < digits or not np.all(np.diff(offsets) == width):
        return None
    data = np.frombuffer(ids.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    tail = np.ascontiguousarray(data.reshape(n, width)[:, width - digits :])
    values: NDArray[np.uint16] = HEX_PAIRS[tail.view("<u2")]
    return values


def _hex_tails(ids: pa.Array) -> tuple[NDArray[np.uint64], NDArray[np.bool_] | None]:
    """The decoded last 16 hex digits of every id, and (None when all did) which ids end in
    16 hex digits (for the others the first array holds zeros)."""
    n = len(ids)
    tails = np.zeros(n, dtype=np.uint64)
    values = fixed_hex_tail(ids, _TAIL)
    if values is not None:  # one width (the usual case)
        decoded = values.astype(np.uint8).view("<u8").ravel()
        if int(values.max()) < _INVALID:
            return decoded, None
        candidates = np.arange(n)
    elif pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type):
        # varying widths, or nulls: decode the ids that are long enough
        offsets = _offsets(ids)
        data = np.frombuffer(ids.buffers()[2] or b"", dtype=np.uint8)
        valid = column_numpy(ids.is_valid())
        candidates = np.flatnonzero(valid & (offsets[1:] - offsets[:-1] >= _TAIL))
        rows = data[offsets[1:][candidates, None] - np.arange(_TAIL, 0, -1)]
        values = HEX_PAIRS[np.ascontiguousarray(rows).view("<u2")]
        decoded = values.astype(np.uint8).view("<u8").ravel()
    else:
        return tails, np.zeros(n, dtype=np.bool_)
    ok = values.max(axis=1) < _INVALID
    hexed = np.zeros(n, dtype=np.bool_)
    hexed[candidates[ok]] = True
    tails[candidates[ok]] = decoded[ok]
    return tails, hexed


class IdHashIndex:
    """A set of 64-bit hashes kept as sorted numpy runs (see the module docstring).

    ``spill_rows``: a run that reaches that many hashes moves to a temporary file
    (``spilled_runs.SpilledRun``, with a filter of ``bloom_bits`` bits a hash in memory), so an
    index that grows with a run's input holds about ``3 * spill_rows`` hashes in memory at
    most, whatever its size. Its answers are the same; a test of hashes that may be in a
    spilled run reads its blocks. Spilled runs are merged on disk in tiers
    (``spilled_runs.SpilledRuns``), so a test asks a few runs, not one per ``spill_rows``.
    """

    def __init__(self, spill_rows: int | None = None, bloom_bits: int = BITS_PER_HASH) -> None:
        self._runs: list[NDArray[np.uint64]] = []
        self._spilled = SpilledRuns(bloom_bits)
        self._spill_rows = spill_rows

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs) + len(self._spilled)

    @property
    def memory_bytes(self) -> int:
        """Bytes held in memory (in-memory runs, spilled runs' filters and fences)."""
        return int(sum(run.nbytes for run in self._runs) + self._spilled.memory_bytes)

    def add(self, hashes: NDArray[np.uint64]) -> None:
        """Add ``hashes`` (any order; repeats are kept, they do not change membership)."""
        if len(hashes) == 0:
            return
        run = np.sort(hashes)
        while self._runs and len(self._runs[-1]) <= 2 * len(run):
            run = _merge(self._runs.pop(), run)
        spill = self._spill_rows is not None and len(run) >= self._spill_rows
        if spill and self._spilled.add(run):
            return
        self._runs.append(run)

    def maybe_contains(self, hashes: NDArray[np.uint64]) -> NDArray[np.bool_]:
        """True where a hash is in the set (the id is possibly stored); False is definite."""
        found = in_sorted_runs(self._runs, hashes)
        if len(self._spilled) and len(hashes):
            found |= self._spilled.contains(hashes)
        return found


def in_sorted_runs(
    runs: Iterable[NDArray[np.uint64]], hashes: NDArray[np.uint64]
) -> NDArray[np.bool_]:
    """True where a hash is in one of the sorted ``runs``: one ``np.searchsorted`` of the
    sorted queries per run (sorted queries walk each run's memory in order)."""
    order = np.argsort(hashes)
    queries = hashes[order]
    found = np.zeros(len(hashes), dtype=np.bool_)
    for run in runs:
        if len(run) == 0:
            continue
        positions = np.searchsorted(run, queries)
        np.minimum(positions, len(run) - 1, out=positions)
        found |= run[positions] == queries
    out = np.empty_like(found)
    out[order] = found
    return out


def _merge(a: NDArray[np.uint64], b: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Two sorted runs as one sorted run (the smaller inserted into the larger)."""
    big, small = (a, b) if len(a) >= len(b) else (b, a)
    merged: NDArray[np.uint64] = np.insert(big, np.searchsorted(big, small), small)
    return merged


class CommittedIds:
    """Hashes of the ids committed in versions ``(base, version]`` of one table and the data
    files of ``version`` (see the module docstring). Ids are hashed when first queried, so a
    writer that commits once and checks nothing more hashes nothing.

    The hashes are kept as sorted runs, each tagged with the newest version it holds ids of,
    merged like ``IdHashIndex``'s (a few runs, whatever the number of commits): a check of
    ids known absent at version ``since`` skips the runs whose versions are all up to
    ``since``, so a writer that verifies each batch before adding it checks only against
    what was committed after its read, however much it wrote before. A merged run is checked
    by more queries than needed, never by fewer.

    An index holds at most about ``MAX_HELD_IDS`` hashes beyond its newest run while its
    checks are of verified ids: once it holds more, such a check forgets the oldest runs it
    skips anyway and ``base`` moves up past them (runs hold consecutive versions, oldest
    first). A later check of ids verified absent before the new ``base``, or of unverified
    ids, gets a fresh index that reads the ids committed since (``sync_index``; every id for
    unverified ones). So a writer that verifies what it adds keeps a bounded index however
    many rows it writes; runs of an index that may be trimmed are merged up to
    ``MAX_HELD_IDS`` hashes only, so neither the runs it keeps nor the copies a merge makes
    grow past that bound. A fresh index that replaced a trimmed one to check unverified ids is
    never trimmed again, so a process mixing both kinds of checks reads every id at most
    once more."""

    def __init__(self, base: int, files: frozenset[str]) -> None:
        self.base = base
        self.version = base
        self.files = files
        self._runs: list[tuple[int, NDArray[np.uint64]]] = []  # (version reached, sorted)
        self.trimmable = True  # (see the class docstring)
        self.trimmed = False
        self._unhashed: list[tuple[int, list[pa.Array | pa.ChunkedArray]]] = []

    def covers(self, since: int) -> bool:
        """Can it check ids known to be absent at version ``since``?"""
        return self.base <= since

    def maybe_contains(self, ids: pa.Array | pa.ChunkedArray, since: int = -1) -> NDArray[np.bool_]:
        """True where an id is possibly committed after ``base`` and after ``since``; False is
        definite."""
        for version, columns in self._unhashed:
            run = np.sort(np.concatenate([hash_ids(column) for column in columns]))
            while (
                self._runs
                and len(self._runs[-1][1]) <= 2 * len(run)
                and (not self.trimmable or len(self._runs[-1][1]) + len(run) <= MAX_HELD_IDS)
            ):
                run = _merge(self._runs.pop()[1], run)  # tagged with the newer version
            self._runs.append((version, run))
        self._unhashed = []
        if self.trimmable and since >= 0:  # forget the oldest runs this check skips
            total = sum(len(run) for _, run in self._runs)
            while len(self._runs) > 1 and total > MAX_HELD_IDS and self._runs[0][0] <= since:
                version, run = self._runs.pop(0)
                total -= len(run)
                self.base = version
                self.trimmed = True
        runs = [run for version, run in self._runs if version > since and len(run)]
        if not runs:
            return np.zeros(len(ids), dtype=np.bool_)
        return in_sorted_runs(runs, hash_ids(ids))

    def advance(
        self, version: int, files: frozenset[str], ids: Iterable[pa.Array | pa.ChunkedArray]
    ) -> None:
        """Now at ``version`` with data ``files``: add the ids committed since (read now,
        hashed on the next query)."""
        columns = [column for column in ids if len(column)]
        if columns:
            self._unhashed.append((version, columns))
        self.version, self.files = version, files


def sync_index(
    index: CommittedIds | None,
    table: DeltaTable,
    since: int,
    *,
    files: TableFiles | None,
    storage_options: Mapping[str, str] | None,
    read_all: Callable[[], pa.Array | pa.ChunkedArray],
) -> CommittedIds:
    """``index`` (or a new one) covering ids absent at version ``since`` of ``table``, brought
    up to the table's version. A new one is partial (empty at ``since``) when ``since`` is a
    version the table had, else full; ``read_all`` reads every committed id for a full one.
    With ``files`` (local or object storage) an index is advanced file by file, reading the
    record ids of the files added since; without, or when files were removed (compaction),
    the full index is rebuilt."""
    version = int(table.version())
    if index is None or not index.covers(since):
        trimmed = index is not None and index.trimmed
        index = _start(table, since, version, files is not None, storage_options, read_all)
        if trimmed and since < 0:  # unverified ids: do not forget (and re-read) them again
            index.trimmable = False
    if index.version == version:
        return index
    uris = frozenset(table.file_uris())
    if files is not None and index.files <= uris:
        added = sorted(uris - index.files)
        if all(files.name_of(f) is not None for f in added):
            index.advance(version, uris, (_read_ids(files, f) for f in added))
            return index
    return _full(version, uris, read_all)


def _start(
    table: DeltaTable,
    since: int,
    version: int,
    incremental: bool,
    storage_options: Mapping[str, str] | None,
    read_all: Callable[[], pa.Array | pa.ChunkedArray],
) -> CommittedIds:
    if since >= 0 and since == version:
        return CommittedIds(since, frozenset(table.file_uris()))
    if 0 <= since < version and incremental:
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError

        options = None if storage_options is None else dict(storage_options)
        try:
            old = DeltaTable(table.table_uri, version=since, storage_options=options)
        except DeltaError:
            # that version's log is gone (log retention): index every id instead
            return _full(version, frozenset(table.file_uris()), read_all)
        return CommittedIds(since, frozenset(old.file_uris()))
    return _full(version, frozenset(table.file_uris()), read_all)


def _full(
    version: int, files: frozenset[str], read_all: Callable[[], pa.Array | pa.ChunkedArray]
) -> CommittedIds:
    index = CommittedIds(-1, frozenset())
    index.advance(version, files, [read_all()])
    return index


def index_own_commit(
    index: CommittedIds | None, table: DeltaTable, base: int, ids: pa.ChunkedArray
) -> CommittedIds | None:
    """The index after this writer committed ``ids`` on top of version ``base`` (``table``
    refreshed since): advanced when it reflected ``base`` and nobody else committed in
    between; else unchanged (the next sync reads the added files, ours included)."""
    if index is None or index.version != base or int(table.version()) != base + 1:
        return index
    index.advance(base + 1, frozenset(table.file_uris()), [ids])
    return index


def _read_ids(files: TableFiles, file: str) -> pa.ChunkedArray:
    """The record ids of one parquet data file of the table."""
    ids = files.read_column(file, RECORD_ID)
    if ids is None:
        raise DatabaseError(f"The data file {file} has no {RECORD_ID} column; it is not ours.")
    return ids
