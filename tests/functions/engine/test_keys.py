"""128-bit id keys: decoding, dedupe and matching agree with exact Arrow computations."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orcapod.errors import DatabaseError
from orcapod.functions.engine.identify import digest_strings
from orcapod.functions.engine.keys import (
    SeenHashes,
    digest_keys,
    keys_to_binary,
    match_keys,
    string_keys,
    unique_keys,
    unique_keys_ordered,
)
from orcapod.hashing import hash_rows


def _digests(values: list[int]) -> pa.Array:
    return hash_rows(pa.table({"v": pa.array(values, pa.int64())}))


def test_string_keys_decode_prefixed_and_bare_hex_ids() -> None:
    digests = _digests(list(range(50)))
    keys = digest_keys(digests)
    prefixed = digest_strings(digests)
    assert prefixed[0].as_py().startswith("arrow_row_v1:")
    assert np.array_equal(string_keys(prefixed), keys)
    bare = pa.array([s[-32:] for s in prefixed.to_pylist()], pa.string())
    assert np.array_equal(string_keys(bare), keys)
    mixed = pa.array([prefixed[0].as_py(), bare[1].as_py().upper()], pa.large_string())
    assert np.array_equal(string_keys(mixed), keys[:2])  # ragged lengths: the slow path
    assert keys_to_binary(keys).to_pylist() == digests.to_pylist()


def test_string_keys_reject_ids_that_are_not_digests() -> None:
    with pytest.raises(DatabaseError, match="not orcapod digests"):
        string_keys(pa.array(["row_1", "row_2"]))
    with pytest.raises(DatabaseError, match="null"):
        string_keys(pa.array(["a" * 32, None]))


@given(st.lists(st.integers(0, 30), max_size=60))
def test_unique_keys_match_dictionary_encoding(values: list[int]) -> None:
    digests = _digests(values)
    codes, first = unique_keys(digest_keys(digests))
    encoded = pc.dictionary_encode(pa.array(values, pa.int64()))
    assert codes.tolist() == encoded.indices.to_pylist()
    assert [values[i] for i in first] == encoded.dictionary.to_pylist()
    again, first_again, order = unique_keys_ordered(digest_keys(digests))
    assert np.array_equal(again, codes) and np.array_equal(first_again, first)
    if len(set(values)) == len(values):  # all distinct: the order sorting them on lane 0
        lane0 = digest_keys(digests)[:, 0]
        assert order is not None and np.array_equal(lane0[order], np.sort(lane0))
    else:
        assert order is None


@given(st.lists(st.integers(0, 30), max_size=40), st.sets(st.integers(0, 30), max_size=20))
def test_match_keys_matches_index_in(query: list[int], reference: set[int]) -> None:
    ref = sorted(reference)
    got = match_keys(digest_keys(_digests(query)), digest_keys(_digests(ref)))
    expected = pc.index_in(pa.array(query, pa.int64()), value_set=pa.array(ref, pa.int64()))
    assert got.tolist() == expected.fill_null(-1).to_pylist()


def test_lane_zero_collisions_fall_back_to_exact_matching() -> None:
    keys = np.array([[1, 10], [1, 20], [2, 30], [1, 10]], dtype="<u8")
    codes, first = unique_keys(keys)
    assert codes.tolist() == [0, 1, 2, 0] and first.tolist() == [0, 1, 2]
    reference = keys[:3]
    query = np.array([[1, 20], [1, 10], [1, 30], [2, 30]], dtype="<u8")
    assert match_keys(query, reference).tolist() == [1, 0, -1, 2]


def test_seen_hashes_answer_like_a_set_also_once_spilled() -> None:
    """A run's set of computed input hashes: every added hash is seen, others are not, also
    after its runs of keys moved to a temporary file."""
    hashes = digest_strings(_digests(list(range(3_000))))
    seen = SeenHashes(spill_rows=500)
    assert not seen.contains(hashes[:10]).any()  # (empty)
    for start in range(0, 2_000, 250):
        seen.add(hashes[start : start + 250])
    seen.add(hashes[:0])
    assert len(seen) == 2_000
    assert seen.contains(hashes).tolist() == [i < 2_000 for i in range(3_000)]
