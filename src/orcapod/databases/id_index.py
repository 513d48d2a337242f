"""``IdHashIndex``: an in-process set of 64-bit record-id hashes, for cheap duplicate checks.

The Delta backend must check every incoming batch of record ids against the ids already
committed. Record ids are random hashes, so file statistics and bloom filters prune little and
a pushed-down query scans the whole ``__record_id`` column on every write (70-100 ms per 10k
ids at 1M rows). Instead each path keeps this index of the committed ids' hashes:

* Hashing is vectorised: polars' ``Series.hash`` with a fixed seed (64-bit, deterministic
  within a process - the index never leaves the process, so stability across versions does
  not matter).
* Storage is a few sorted ``uint64`` numpy runs (a log-structured merge: a new run is merged
  with the previous one while that one is at most twice its size), so adding a batch costs an
  amortised O(batch log n) and a membership test is one ``np.searchsorted`` of the sorted
  queries per run (at most ~log2(n / batch) runs).
* A hit only means "possibly stored": the caller confirms hits against the real ids (a
  pushed-down query for just those ids), so a hash collision can never reject or drop a row.
  A miss is definite, which is what makes the check cheap: fresh ids never touch the table.

Memory: 8 bytes per stored id (plus transient copies during a merge), i.e. 8 MB per million
records per path written by this process.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
from numpy.typing import NDArray

__all__ = ["IdHashIndex", "hash_ids"]

_SEED = 0x6F726361  # "orca"


def hash_ids(ids: pa.Array | pa.ChunkedArray) -> NDArray[np.uint64]:
    """A 64-bit hash per id (vectorised; equal ids give equal hashes within a process)."""
    if len(ids) == 0:
        return np.empty(0, dtype=np.uint64)
    series = pl.Series(values=ids)
    hashes: NDArray[np.uint64] = series.hash(seed=_SEED).to_numpy()
    return hashes


class IdHashIndex:
    """A set of 64-bit hashes kept as sorted numpy runs (see the module docstring)."""

    def __init__(self) -> None:
        self._runs: list[NDArray[np.uint64]] = []

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def add(self, hashes: NDArray[np.uint64]) -> None:
        """Add ``hashes`` (any order; repeats are kept, they do not change membership)."""
        if len(hashes) == 0:
            return
        run = np.sort(hashes)
        while self._runs and len(self._runs[-1]) <= 2 * len(run):
            run = _merge(self._runs.pop(), run)
        self._runs.append(run)

    def maybe_contains(self, hashes: NDArray[np.uint64]) -> NDArray[np.bool_]:
        """True where a hash is in the set (the id is possibly stored); False is definite."""
        order = np.argsort(hashes)
        queries = hashes[order]  # sorted queries: searchsorted walks memory in order
        found = np.zeros(len(hashes), dtype=np.bool_)
        for run in self._runs:
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
