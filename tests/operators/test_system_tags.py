"""Canonical ordering and per-row sorting of tied inputs' system tags."""

import pyarrow as pa

from orcapod.hashing import hash_object
from orcapod.operators.system_tags import (
    canonical_order,
    join_suffix,
    orderable,
    sort_tied_groups,
    tie_groups,
)


def test_suffix_format():
    h = hash_object("x")
    assert join_suffix(h, 3) == f"::{h.to_hex(12)}:3"


def test_canonical_order_is_by_pipeline_hash_with_a_tiebreak():
    a, b = hash_object("a"), hash_object("b")
    hashes = [b, a, b]
    low, _ = sorted([a, b], key=lambda h: h.to_string())
    order = canonical_order(hashes)
    assert [hashes[i] for i in order] == sorted(hashes, key=lambda h: h.to_string())
    content = {0: hash_object("z"), 2: hash_object("y")}
    tied_order = canonical_order(hashes, tiebreak=lambda i: content[i].to_string())
    tied = [i for i in tied_order if hashes[i] == b]
    assert tied == sorted([0, 2], key=lambda i: content[i].to_string())
    expected = [[1, 2]] if low == a else [[0, 1]]
    assert tie_groups(hashes, order) == expected


def test_three_tied_groups_are_sorted_per_row():
    cols = {
        "s0": pa.array(["c", "a", "b"]),
        "r0": pa.array(["1", "9", "1"]),
        "s1": pa.array(["a", "a", "b"]),
        "r1": pa.array(["2", "1", "0"]),
        "s2": pa.array(["b", "a", "a"]),
        "r2": pa.array(["0", "5", "7"]),
    }
    out = sort_tied_groups(cols, [[["s0", "r0"], ["s1", "r1"], ["s2", "r2"]]])
    rows = [
        [(out[f"s{k}"][i].as_py(), out[f"r{k}"][i].as_py()) for k in range(3)] for i in range(3)
    ]
    assert rows == [
        [("a", "2"), ("b", "0"), ("c", "1")],
        [("a", "1"), ("a", "5"), ("a", "9")],
        [("a", "7"), ("b", "0"), ("b", "1")],
    ]


def test_unorderable_values_compare_by_hash():
    values = pa.array([[1], [2, 3], None])
    keys = orderable(values)
    assert pa.types.is_fixed_size_binary(keys.type)
    assert keys.null_count == 1
