"""Spilled hash runs: the same answers as the run in memory, with 2 bytes a hash held."""

from __future__ import annotations

import errno

import numpy as np
import pytest

from orcapod.databases import spilled_runs
from orcapod.databases.id_index import IdHashIndex
from orcapod.databases.spilled_runs import BITS_PER_HASH, BLOCK_HASHES, GAP_BLOCKS, SpillFile


def _hashes(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**64 - 1, n, dtype=np.uint64)


def _queries(stored: np.ndarray, seed: int, absent: int) -> np.ndarray:
    others = _hashes(seed, absent)
    others = others[~np.isin(others, stored)]
    edges = np.array([0, 2**64 - 1, stored.min(), stored.max()], dtype=np.uint64)
    # the first and last hash of blocks, and their neighbours (absent unless stored)
    bounds = np.sort(stored)[::BLOCK_HASHES]
    near = np.concatenate([bounds, bounds - np.uint64(1), bounds + np.uint64(1)])
    return np.concatenate([others, stored[::5], edges, near])


@pytest.mark.parametrize("bloom_bits", [BITS_PER_HASH, 0])
@pytest.mark.parametrize("n", [1, 7, BLOCK_HASHES, BLOCK_HASHES + 1, 20_000])
def test_a_spilled_run_finds_exactly_its_hashes(n: int, bloom_bits: int) -> None:
    stored = np.sort(_hashes(n, n))
    run = SpillFile().spill(stored, bloom_bits)
    assert run is not None and len(run) == n
    queries = _queries(stored, n + 1, 5_000)
    assert np.array_equal(run.contains(queries), np.isin(queries, stored))


@pytest.mark.parametrize("bloom_bits", [BITS_PER_HASH, 0])
def test_few_queries_read_blocks_and_many_stream_the_run_with_equal_answers(
    bloom_bits: int,
) -> None:
    stored = np.sort(_hashes(3, 300_000))  # more than one span of blocks
    run = SpillFile().spill(stored, bloom_bits)
    assert run is not None
    spread = stored[:: BLOCK_HASHES * (GAP_BLOCKS + 1)]  # blocks too far apart to join
    for queries in (stored[:3], stored[::2], spread, _queries(stored, 4, 100)):
        assert np.array_equal(run.contains(queries), np.isin(queries, stored))


def test_the_filter_rules_out_almost_every_absent_hash() -> None:
    stored = np.sort(_hashes(5, 200_000))
    run = SpillFile().spill(stored)
    assert run is not None
    absent = _hashes(6, 100_000)
    assert len(run.candidates(absent)) < 0.01 * len(absent)  # about 0.4 % at 16 bits a hash
    assert run.memory_bytes <= 2.1 * len(stored)


@pytest.mark.parametrize("bloom_bits", [BITS_PER_HASH, 0])
def test_an_index_that_spills_answers_like_one_in_memory_and_holds_little(
    bloom_bits: int,
) -> None:
    stored = _hashes(7, 300_000)
    spilling = IdHashIndex(spill_rows=40_000, bloom_bits=bloom_bits)
    whole = IdHashIndex()
    for start in range(0, len(stored), 10_000):
        spilling.add(stored[start : start + 10_000])
        whole.add(stored[start : start + 10_000])
    assert len(spilling) == len(whole) == len(stored)
    assert spilling._spilled  # some runs went to files
    queries = _queries(stored, 8, 50_000)
    assert np.array_equal(spilling.maybe_contains(queries), whole.maybe_contains(queries))
    assert np.array_equal(spilling.maybe_contains(queries), np.isin(queries, stored))
    # in memory: the unspilled runs (under 3 x spill_rows) and the filters' bits
    filters = bloom_bits / 8 * 1.05 + 0.02  # with the fences
    assert spilling.memory_bytes < 8 * 3 * 40_000 + filters * len(stored)
    assert whole.memory_bytes == 8 * len(stored)


def test_a_run_that_cannot_be_spilled_stays_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spilled_runs.tempfile, "TemporaryFile", no_space)
    stored = _hashes(9, 50_000)
    index = IdHashIndex(spill_rows=10_000)
    index.add(stored)
    assert not index._spilled and len(index) == len(stored)
    assert index.maybe_contains(stored[:100]).all()


def test_the_runs_of_one_set_share_one_file_and_each_reads_its_own_part() -> None:
    file = SpillFile()
    parts = [np.sort(_hashes(10 + i, 5_000 * (i + 1))) for i in range(3)]
    runs = [file.spill(part) for part in parts]
    assert all(run is not None for run in runs)
    numbers = {run._file.fileno for run in runs if run is not None}
    assert len(numbers) == 1  # one descriptor, whatever the number of runs
    for run, part in zip(runs, parts, strict=True):
        assert run is not None
        others = np.concatenate([p for p in parts if p is not part])
        queries = np.concatenate([part[::3], others[::3]])
        assert np.array_equal(run.contains(queries), np.isin(queries, part))


@pytest.mark.parametrize("bloom_bits", [BITS_PER_HASH, 0])
def test_spilled_runs_merge_in_tiers_and_answer_like_one_set_in_memory(
    monkeypatch: pytest.MonkeyPatch, bloom_bits: int
) -> None:
    """Every ``MERGE_RUNS`` runs of a tier are merged (streamed, a few hashes of each run at
    a time) into one run of the next tier, and the tier's file is emptied: the runs a test
    reads stay few, the files hold each hash about once, and the answers are exact."""
    monkeypatch.setattr(spilled_runs, "MERGE_READ", 700)  # many steps of the merge
    stored = _hashes(11, 2_000 * 70)
    repeats = stored[:3_000]  # a hash added twice stays found
    index = IdHashIndex(spill_rows=2_000, bloom_bits=bloom_bits)
    for start in range(0, len(stored), 2_000):
        index.add(stored[start : start + 2_000])
    index.add(repeats)
    runs = index._spilled.runs
    assert len(index) == len(stored) + len(repeats)
    # 71 runs spilled: each tier holds fewer than MERGE_RUNS runs
    assert len(runs) < 2 * spilled_runs.MERGE_RUNS
    tiers = index._spilled._tiers
    assert all(len(tier_runs) < spilled_runs.MERGE_RUNS for _, tier_runs in tiers)
    on_disk = sum(file._size for file, _ in tiers)
    assert on_disk == 8 * len(index)  # merged tiers' files were emptied
    for run in runs:  # every run is sorted and indexed as if it had been spilled whole
        whole = run._read(0, len(run))
        assert np.all(whole[1:] >= whole[:-1])
        assert np.array_equal(run._fences, whole[::BLOCK_HASHES])
    queries = _queries(stored, 12, 30_000)
    assert np.array_equal(index.maybe_contains(queries), np.isin(queries, stored))


def test_a_merge_that_cannot_be_written_keeps_the_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    stored = _hashes(13, 1_000 * spilled_runs.MERGE_RUNS)
    index = IdHashIndex(spill_rows=1_000)
    real = spilled_runs.os.pwrite
    writes = []

    def full_once_the_runs_are_written(fd: int, data: object, offset: int) -> int:
        writes.append(offset)
        if len(writes) > spilled_runs.MERGE_RUNS:  # the merge's first write: disk full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data, offset)  # type: ignore[arg-type]

    monkeypatch.setattr(spilled_runs.os, "pwrite", full_once_the_runs_are_written)
    for start in range(0, len(stored), 1_000):
        index.add(stored[start : start + 1_000])
    assert len(writes) > spilled_runs.MERGE_RUNS  # the merge was tried
    assert len(index._spilled.runs) == spilled_runs.MERGE_RUNS and len(index) == len(stored)
    queries = _queries(stored, 14, 5_000)
    assert np.array_equal(index.maybe_contains(queries), np.isin(queries, stored))
