"""IdHashIndex: a miss is definite, every added hash is found, across many merges."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
import xxhash

from orcapod.databases import id_index
from orcapod.databases.id_index import CommittedIds, IdHashIndex, hash_ids


def test_every_added_hash_is_found_and_absent_ones_are_not() -> None:
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 2**64 - 1, 50_000, dtype=np.uint64)
    index = IdHashIndex()
    for start in range(0, len(stored), 1_000):  # many runs, many merges
        index.add(stored[start : start + 1_000])
    assert len(index) == len(stored)
    others = rng.integers(0, 2**64 - 1, 20_000, dtype=np.uint64)
    others = others[~np.isin(others, stored)]
    queries = np.concatenate([others, stored[::7], np.array([0, 2**64 - 1], dtype=np.uint64)])
    got = index.maybe_contains(queries)
    expected = np.isin(queries, stored)
    assert np.array_equal(got, expected)
    assert got[len(others) : len(others) + len(stored[::7])].all()


def test_empty_index_and_repeated_hashes() -> None:
    index = IdHashIndex()
    assert not index.maybe_contains(np.array([1, 2], dtype=np.uint64)).any()
    index.add(np.array([5, 5, 5], dtype=np.uint64))
    index.add(np.array([], dtype=np.uint64))
    assert index.maybe_contains(np.array([5, 4, 6], dtype=np.uint64)).tolist() == [
        True,
        False,
        False,
    ]


def test_hash_ids_is_equal_for_equal_ids_whatever_the_arrow_layout() -> None:
    ids = [f"id-{i}" for i in range(1_000)]
    plain = hash_ids(pa.array(ids))
    chunked = hash_ids(pa.chunked_array([ids[:10], ids[10:]], pa.large_string()))
    assert plain.dtype == np.uint64 and np.array_equal(plain, chunked)
    assert len(np.unique(plain)) == len(ids)
    assert len(hash_ids(pa.array([], pa.string()))) == 0


def test_ids_ending_in_hex_hash_to_their_digits_in_any_batch() -> None:
    digest = "0123456789abcdef" * 2
    ids = [digest, "arrow_row_v1:" + digest[::-1], "row-7", "x" * 40, "é" * 3 + "00ff" * 4]
    alone = [int(hash_ids(pa.array([i]))[0]) for i in ids]
    together = hash_ids(pa.array(ids)).tolist()
    assert together == alone  # a value's hash never depends on its batch
    assert alone[0] == int.from_bytes(bytes.fromhex(digest[-16:]), "little")
    assert alone[4] == int.from_bytes(bytes.fromhex("00ff" * 4), "little")
    with_null = hash_ids(pa.array([None, digest, "row-7"]))
    assert with_null[1:].tolist() == [alone[0], alone[2]]


def test_stable_hashes_are_xxh3_for_other_values_and_the_same_in_another_process() -> None:
    ids = ["row-7", "ab" * 8, "tag value with spaces"]
    stable = hash_ids(pa.array(ids), stable=True).tolist()
    assert stable[0] == xxhash.xxh3_64_intdigest(b"row-7")
    assert stable[1] == int.from_bytes(bytes.fromhex("ab" * 8), "little")
    code = (
        "import sys; import pyarrow as pa; from orcapod.databases.id_index import hash_ids; "
        f"print(hash_ids(pa.array({ids!r}), stable=True).tolist()); "
        "print('polars' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == [str(stable), "False"]  # no polars import either


def test_committed_ids_cover_checks_since_their_base_and_find_every_added_id() -> None:
    partial = CommittedIds(3, frozenset({"f1"}))
    assert partial.covers(3) and partial.covers(7) and not partial.covers(2)
    assert not CommittedIds(-1, frozenset()).covers(-2)
    probe = pa.array(["a", "b", "c"])
    assert not partial.maybe_contains(probe).any()  # nothing committed since the base
    partial.advance(4, frozenset({"f1", "f2"}), [pa.array(["b"]), pa.array([], pa.string())])
    partial.advance(5, frozenset({"f1", "f2", "f3"}), [pa.chunked_array([["x"], ["c"]])])
    assert (partial.version, partial.files) == (5, frozenset({"f1", "f2", "f3"}))
    assert partial.maybe_contains(probe).tolist() == [False, True, True]
    partial.advance(6, frozenset({"f4"}), [pa.array(["a"])])
    assert partial.maybe_contains(probe).tolist() == [True, True, True]
    # ids known absent at version 5 can only clash with what version 6 added
    assert partial.maybe_contains(probe, since=5).tolist() == [True, False, False]
    assert partial.maybe_contains(probe, since=6).tolist() == [False, False, False]
    later = partial.maybe_contains(probe, since=4).tolist()
    assert later[0] and later[2]  # "b" (version 4) may be reported once runs merge, never missed


def test_committed_ids_merge_old_runs_without_missing_any_id_or_version() -> None:
    index = CommittedIds(-1, frozenset())
    for version in range(100):  # many commits: old runs are merged, tagged with their newest
        index.advance(version, frozenset({f"f{version}"}), [pa.array([f"id-{version}"])])
        index.maybe_contains(pa.array(["probe"]))
    every = pa.array([f"id-{v}" for v in range(100)])
    assert index.maybe_contains(every).all()
    newer = index.maybe_contains(every, since=89)
    assert newer[90:].all()  # every id committed after version 89 is found
    assert not newer[:64].any()  # old enough ones are skipped even once merged
    assert len(index._runs) <= 8  # a few runs, not one per commit


@pytest.mark.parametrize("batch", [10, 40])
def test_a_partial_index_stays_bounded_and_never_answers_for_what_it_forgot(
    monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    """A writer verifying each batch before adding it keeps a bounded index: old runs are
    forgotten by checks that skip them, and the index then no longer claims to cover checks
    of ids verified absent before what it forgot (those get a fresh index from the files)."""
    monkeypatch.setattr(id_index, "MAX_HELD_IDS", 100)
    index = CommittedIds(0, frozenset())
    for version in range(1, 41):  # 40 commits, each checked since the one before
        ids = pa.array([f"id-{version}-{i}" for i in range(batch)])
        assert not index.maybe_contains(ids, since=version - 1).any()
        index.advance(version, frozenset({f"f{version}"}), [ids])
        assert index.maybe_contains(ids, since=version - 1).all()
        assert sum(len(run) for _, run in index._runs) <= 2 * 100  # bounded
        assert max(len(run) for _, run in index._runs) <= 100  # and so is every merge
    assert index.base > 0 and not index.covers(0)
    assert index.covers(index.base)
    # everything committed after the new base is still found
    after = pa.array([f"id-{v}-{i}" for v in range(index.base + 1, 41) for i in range(batch)])
    assert index.maybe_contains(after, since=index.base).all()


def test_an_index_answering_unverified_checks_keeps_every_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(id_index, "MAX_HELD_IDS", 10)
    index = CommittedIds(-1, frozenset())
    for version in range(20):
        ids = pa.array([f"id-{version}-{i}" for i in range(5)])
        index.advance(version, frozenset({f"f{version}"}), [ids])
        index.maybe_contains(pa.array(["probe"]))  # unverified: against every id
    assert index.covers(-1) and not index.trimmed
    every = pa.array([f"id-{v}-{i}" for v in range(20) for i in range(5)])
    assert index.maybe_contains(every).all()
    index.maybe_contains(pa.array(["probe"]), since=15)  # verified: may forget old runs
    assert index.trimmed and not index.covers(-1)
