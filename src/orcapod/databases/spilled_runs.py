"""``SpilledRun``: a sorted run of 64-bit hashes kept in a temporary file, not in memory.

A long run writes one hash per row into a process-local set (the input hashes it computed,
the hashes of the results it committed). Held in memory, such a set costs 8 bytes a row, so a
run of 10M rows would hold 160 MB for two of them, growing with the input's length rather
than with its chunk. ``IdHashIndex(spill_rows=...)`` moves each sorted run that reaches
``spill_rows`` hashes into a ``SpilledRun``, which keeps in memory only:

* a *blocked Bloom filter*: one 64-bit word per 4 hashes (``BITS_PER_HASH`` bits a hash,
  2 bytes), in which each hash sets ``BLOOM_PROBES`` bits of one word picked by its top bits
  (so the words of a sorted run are filled in order, with one ``np.bitwise_or.reduceat``).
  A test reads one word per queried hash, so testing a batch against a run is a handful of
  vectorised numpy operations. It answers "absent" for ~99.6 % of the hashes not in the run;
  the rest, and the hashes that are in it, are *candidates*;
* *fence keys*: the first hash of every block of ``BLOCK_HASHES`` hashes in the file (0.016
  bytes a hash), so a candidate's block is found with one ``np.searchsorted``.

A candidate is confirmed exactly by reading its block (4 KB) from the file (``os.pread``;
neighbouring blocks in one read of up to 1 MB, so many candidates stream through the file
with bounded memory). So answers are the same as the in-memory run's: the filter only decides
what needs reading, never what is found. A set asked only about hashes that are mostly in it
(or rarely asked) can do without the filter (``bloom_bits=0``): a few kilobytes of fences
stay in memory per million hashes.

A set's runs are merged on disk in tiers (``SpilledRuns``: every ``MERGE_RUNS`` runs of a
tier become one run of the next, streamed), so a test asks a few runs, not one per spill.
The runs of one tier go to one anonymous temporary file (``SpillFile``; ``tempfile.
TemporaryFile``: removed by the system when closed or when the process ends, however it
ends), emptied when the tier is merged and closed when the set is dropped: one file
descriptor per tier, a few per set. Where
the temporary directory is on ``tmpfs`` its pages are in memory, but not in the process's own
size and pageable to swap. A run that cannot be written (no temporary directory, disk full) is
not an error: the index keeps it in memory, as it would without spilling.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BITS_PER_HASH",
    "BLOCK_HASHES",
    "BLOOM_PROBES",
    "GAP_BLOCKS",
    "MERGE_READ",
    "MERGE_RUNS",
    "SPAN_BLOCKS",
    "SpillFile",
    "SpilledRun",
    "SpilledRuns",
    "probe_masks",
]

#: Bloom filter bits per hash
BITS_PER_HASH = 16
#: bits each hash sets in its word
BLOOM_PROBES = 8
#: hashes per block read to confirm a candidate (4 KB)
BLOCK_HASHES = 512
#: candidates' blocks at most this far apart are read together ...
GAP_BLOCKS = 4
#: ... in reads of at most this many blocks (1 MB)
SPAN_BLOCKS = 256
#: a tier of spilled runs is merged into one run once it holds this many (``SpilledRuns``)
MERGE_RUNS = 8
#: hashes of each run held at a time while runs are merged (512 KB)
MERGE_READ = 1 << 16

_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd constant: the probe bits come from h * _MIX
_ONE = np.uint64(1)


def probe_masks(hashes: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Each hash's ``BLOOM_PROBES`` bits within its word (6 bits of ``h * _MIX`` each)."""
    mixed = hashes * _MIX
    masks = np.zeros(len(hashes), dtype=np.uint64)
    for probe in range(BLOOM_PROBES):
        shift = np.uint64(64 - 6 * (probe + 1))
        masks |= _ONE << ((mixed >> shift) & np.uint64(63))
    return masks


class SpilledRun:
    """One sorted run of hashes in a temporary file (see the module docstring);
    ``bloom_bits`` 0: no filter, every queried hash is a candidate. Made by ``SpillFile``: its
    filter and fences are filled piece by piece as the run is written (``_index``), so a run
    merged from others never has to be held in memory whole."""

    def __init__(self, file: SpillFile, offset: int, length: int, bloom_bits: int) -> None:
        self._length = length
        self._words = np.uint64(max(1, -(-length * bloom_bits // 64)))
        self._bloom: NDArray[np.uint64] | None = None
        if bloom_bits and length:
            self._bloom = np.zeros(int(self._words), dtype=np.uint64)
        self._fence_parts: list[NDArray[np.uint64]] = []
        self._fences = np.empty(0, dtype=np.uint64)
        self._file = file  # (kept open while a run in it is alive)
        self._offset = offset

    def _index(self, piece: NDArray[np.uint64], start: int) -> None:
        """Take the hashes ``piece`` (sorted, from position ``start`` of the run, after every
        earlier piece) into the filter and the fences."""
        if self._bloom is not None and len(piece):
            slots = self._slots(piece)  # sorted, as the piece is: each word once below
            starts = np.flatnonzero(np.r_[True, slots[1:] != slots[:-1]])
            self._bloom[slots[starts]] |= np.bitwise_or.reduceat(probe_masks(piece), starts)
        self._fence_parts.append(piece[(-start) % BLOCK_HASHES :: BLOCK_HASHES].copy())

    def _finish(self) -> None:
        self._fences = np.concatenate(self._fence_parts) if self._fence_parts else self._fences
        self._fence_parts = []

    def __len__(self) -> int:
        return self._length

    @property
    def memory_bytes(self) -> int:
        """Bytes held in memory (the filter and the fences)."""
        bloom = 0 if self._bloom is None else self._bloom.nbytes
        return int(bloom + self._fences.nbytes)

    def _slots(self, hashes: NDArray[np.uint64]) -> NDArray[np.intp]:
        """Each hash's word: its top 32 bits scaled to the filter's size (monotonic)."""
        return (((hashes >> np.uint64(32)) * self._words) >> np.uint64(32)).astype(np.intp)

    def candidates(
        self, hashes: NDArray[np.uint64], masks: NDArray[np.uint64] | None = None
    ) -> NDArray[np.intp]:
        """Positions of the hashes the filter does not rule out."""
        if self._bloom is None:
            return np.arange(len(hashes))
        masks = probe_masks(hashes) if masks is None else masks
        return np.flatnonzero((self._bloom[self._slots(hashes)] & masks) == masks)

    def contains(
        self, hashes: NDArray[np.uint64], masks: NDArray[np.uint64] | None = None
    ) -> NDArray[np.bool_]:
        """True exactly where a hash is in the run (``masks``: ``probe_masks(hashes)``, when
        the caller tests the same hashes against several runs). The candidates' blocks are
        read in spans: neighbouring blocks together, at most ``SPAN_BLOCKS`` at a time."""
        found = np.zeros(len(hashes), dtype=np.bool_)
        if not len(hashes) or not self._length:
            return found
        candidates = self.candidates(hashes, masks)
        if not len(candidates):
            return found
        order = candidates[np.argsort(hashes[candidates], kind="stable")]
        wanted = hashes[order]  # sorted
        blocks = np.searchsorted(self._fences, wanted, side="right") - 1
        below = int(np.searchsorted(blocks, 0))  # under the run's first hash: absent
        distinct, firsts = np.unique(blocks[below:], return_index=True)
        firsts += below
        bounds = np.r_[firsts, len(wanted)]
        start = 0
        while start < len(distinct):
            stop = start + 1
            while (
                stop < len(distinct)
                and distinct[stop] - distinct[stop - 1] <= GAP_BLOCKS
                and distinct[stop] - distinct[start] < SPAN_BLOCKS
            ):
                stop += 1
            first_hash = int(distinct[start]) * BLOCK_HASHES
            part = self._read(
                first_hash, min(self._length, (int(distinct[stop - 1]) + 1) * BLOCK_HASHES)
            )
            at = slice(int(bounds[start]), int(bounds[stop]))
            positions = np.minimum(np.searchsorted(part, wanted[at]), len(part) - 1)
            found[order[at]] = part[positions] == wanted[at]
            start = stop
        return found

    def _read(self, start: int, stop: int) -> NDArray[np.uint64]:
        size = 8 * (stop - start)
        data = os.pread(self._file.fileno, size, self._offset + 8 * start)
        if len(data) != size:
            raise OSError(f"spilled hash run: read {len(data)} of {size} bytes")
        return np.frombuffer(data, dtype="<u8").astype(np.uint64, copy=False)


class SpillFile:
    """The temporary file one set's spilled runs are appended to: one file descriptor per
    set, however many runs it spills. Opened at the first spill; closed, and so removed, when
    the set and its runs are dropped."""

    def __init__(self) -> None:
        self._handle: BinaryIO | None = None
        self._size = 0

    @property
    def fileno(self) -> int:
        assert self._handle is not None
        return self._handle.fileno()

    def spill(self, run: NDArray[np.uint64], bloom_bits: int = BITS_PER_HASH) -> SpilledRun | None:
        """``run`` (sorted) appended to the file, with a filter of ``bloom_bits`` bits a hash
        (0: none), or None where that is not possible (the caller keeps the run in memory;
        also where the system has no positioned reads and writes, ``os.pread``)."""
        return self.write([run], len(run), bloom_bits)

    def write(
        self, pieces: Iterable[NDArray[np.uint64]], length: int, bloom_bits: int
    ) -> SpilledRun | None:
        """One run of ``length`` hashes, given as consecutive sorted ``pieces``, appended to
        the file (``spill``); None where it cannot be written."""
        if not hasattr(os, "pread"):
            return None
        offset = self._size
        run = SpilledRun(self, offset, length, bloom_bits)
        at = 0
        try:
            if self._handle is None:
                self._handle = tempfile.TemporaryFile(prefix="orcapod-hashes-")  # noqa: SIM115
                weakref.finalize(self, self._handle.close)
            for piece in pieces:
                data = np.ascontiguousarray(piece, dtype="<u8").data.cast("B")
                written = 0
                while written < len(data):
                    written += os.pwrite(self.fileno, data[written:], offset + 8 * at + written)
                run._index(piece, at)
                at += len(piece)
        except OSError:
            return None  # a partly written run is overwritten by the next one
        if at != length:
            raise ValueError(f"spilled hash run: {at} hashes given for a run of {length}")
        self._size += 8 * length
        run._finish()
        return run

    def clear(self) -> None:
        """Forget every run in the file (none of them may be used again) and give its space
        back."""
        if self._handle is not None:
            os.ftruncate(self.fileno, 0)
        self._size = 0


class SpilledRuns:
    """The spilled runs of one set, merged so a test reads few of them: runs are kept in
    *tiers*, each tier in a file of its own; when a tier holds ``MERGE_RUNS`` runs they are
    merged into one run of the next tier (streamed: ``MERGE_READ`` hashes of each run in
    memory at a time, and the filter and fences of the merged run), and the tier's file is
    emptied. So a set of ``N`` hashes spilled in runs of ``R`` holds fewer than ``MERGE_RUNS``
    runs per tier and about ``log(N / R) / log(MERGE_RUNS)`` tiers (a million-row run's
    sets: one or two runs; a billion's: under 30 rather than 2,000), each hash is written
    that many times, and the files hold each hash about once. The runs being merged give up
    their filters first, so a merge holds no more filter memory than the runs did. A merge
    that cannot be written keeps the runs it would have merged, without their filters (a
    test then reads their blocks: slower, the same answers)."""

    def __init__(self, bloom_bits: int) -> None:
        self._bloom_bits = bloom_bits
        self._tiers: list[tuple[SpillFile, list[SpilledRun]]] = []

    def __len__(self) -> int:
        return sum(len(run) for _, runs in self._tiers for run in runs)

    @property
    def runs(self) -> list[SpilledRun]:
        return [run for _, runs in self._tiers for run in runs]

    @property
    def memory_bytes(self) -> int:
        return sum(run.memory_bytes for run in self.runs)

    def add(self, run: NDArray[np.uint64]) -> bool:
        """Spill ``run`` (sorted); False where it cannot be (the caller keeps it)."""
        if not self._tiers:
            self._tiers.append((SpillFile(), []))
        file, runs = self._tiers[0]
        spilled = file.spill(run, self._bloom_bits)
        if spilled is None:
            return False
        runs.append(spilled)
        tier = 0
        while tier < len(self._tiers) and len(self._tiers[tier][1]) >= MERGE_RUNS:
            if not self._merge(tier):
                break
            tier += 1
        return True

    def _merge(self, tier: int) -> bool:
        file, runs = self._tiers[tier]
        if tier + 1 == len(self._tiers):
            self._tiers.append((SpillFile(), []))
        target, merged_runs = self._tiers[tier + 1]
        length = sum(len(run) for run in runs)
        for run in runs:  # (their filters' memory goes to the merged run's filter)
            run._bloom = None
        merged = target.write(_merged(runs), length, self._bloom_bits)
        if merged is None:
            return False
        merged_runs.append(merged)
        runs.clear()
        file.clear()
        return True

    def contains(self, hashes: NDArray[np.uint64]) -> NDArray[np.bool_]:
        """True exactly where a hash is in one of the runs."""
        found = np.zeros(len(hashes), dtype=np.bool_)
        runs = self.runs
        if not runs or not len(hashes):
            return found
        masks = probe_masks(hashes) if self._bloom_bits else None
        for run in runs:
            found |= run.contains(hashes, masks)
        return found


def _merged(runs: list[SpilledRun]) -> Iterator[NDArray[np.uint64]]:
    """The hashes of sorted ``runs`` as consecutive sorted pieces (a k-way merge in numpy):
    each step emits every buffered hash up to the smallest of the buffers' last hashes, so
    at least one buffer is used up per step and refilled from its run."""
    following = [0] * len(runs)
    buffers: list[NDArray[np.uint64]] = []
    for i, run in enumerate(runs):
        following[i] = min(len(run), MERGE_READ)
        buffers.append(run._read(0, following[i]))
    active = [i for i, run in enumerate(runs) if len(run)]
    while active:
        bound = min(buffers[i][-1] for i in active)
        parts = []
        for i in active:
            cut = int(np.searchsorted(buffers[i], bound, side="right"))
            parts.append(buffers[i][:cut])
            buffers[i] = buffers[i][cut:]
        yield np.sort(np.concatenate(parts))
        for i in active:
            if not len(buffers[i]) and following[i] < len(runs[i]):
                stop = min(len(runs[i]), following[i] + MERGE_READ)
                buffers[i] = runs[i]._read(following[i], stop)
                following[i] = stop
        active = [i for i in active if len(buffers[i])]
