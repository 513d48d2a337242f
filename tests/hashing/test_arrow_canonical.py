"""arrow_canonical: a map is identified by its entries, whatever their order."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from orcapod.hashing import hash_rows, hash_table
from orcapod.hashing.arrow_hashing import PATH_STRUCT_TYPE


def same(a: pa.Table, b: pa.Table) -> bool:
    table_equal = hash_table(a) == hash_table(b)
    assert table_equal == hash_rows(a).equals(hash_rows(b)), "hash_table and hash_rows disagree"
    return table_equal


def reversed_entries(rows: list[list[tuple[object, object]] | None]) -> list[object]:
    return [None if r is None else list(reversed(r)) for r in rows]


KEYS: dict[str, tuple[pa.DataType, list[object]]] = {
    "string": (pa.string(), ["b", "a", "é", "Z", ""]),
    "large_string": (pa.large_string(), ["b", "a", "é"]),
    "int8": (pa.int8(), [3, -1, 0]),
    "int64": (pa.int64(), [2**40, -5, 7]),
    "uint32": (pa.uint32(), [9, 1, 4]),
    "float": (pa.float64(), [2.5, float("nan"), -1.0, float("inf")]),
    "bool": (pa.bool_(), [True, False]),
    "binary": (pa.binary(), [b"\xff", b"", b"a"]),
    "date": (pa.date32(), [dt.date(2024, 1, 2), dt.date(1999, 5, 6)]),
    "time": (pa.time64("us"), [dt.time(5), dt.time(1, 2)]),
    "timestamp": (pa.timestamp("ms", tz="UTC"), [dt.datetime(2024, 1, 1, tzinfo=dt.UTC), 0]),
    "duration": (pa.duration("s"), [dt.timedelta(hours=1), dt.timedelta(seconds=-2)]),
    "decimal": (pa.decimal128(9, 2), [Decimal("1.50"), Decimal("-3.25"), Decimal("0.01")]),
    "struct": (
        pa.struct([("y", pa.string()), ("x", pa.int64())]),
        [{"x": 2, "y": "a"}, {"x": 1, "y": "b"}, {"x": 1, "y": None}],
    ),
    "list": (pa.list_(pa.int64()), [[2, 1], [], [1], [1, 2]]),
}


@pytest.mark.parametrize("name", sorted(KEYS))
def test_map_entry_order_does_not_matter_for_any_key_type(name):
    key_type, keys = KEYS[name]
    entries = [(k, i) for i, k in enumerate(keys)]
    rows = [entries, entries[:1], None, [], entries[1:]]
    map_type = pa.map_(key_type, pa.int64())
    forward = pa.table({"m": pa.array(rows, map_type)})
    backward = pa.table({"m": pa.array(reversed_entries(rows), map_type)})
    assert same(forward, backward)
    # still a function of the entries: another value for one key is another map
    changed = [[(k, v + 1 if j == 0 else v) for j, (k, v) in enumerate(entries)]]
    assert not same(
        pa.table({"m": pa.array([entries], map_type)}),
        pa.table({"m": pa.array(changed, map_type)}),
    )


def test_reordered_maps_hash_equal_row_by_row_across_layouts():
    rows = [[("b", 1), ("a", 2)], [("c", 3)], None, [("z", 0), ("y", None), ("x", 9)]]
    sorted_rows = [None if r is None else sorted(r) for r in rows]
    m = pa.array(rows, pa.map_(pa.string(), pa.int64()))
    expected = hash_rows(pa.table({"m": pa.array(sorted_rows, m.type)}))
    assert hash_rows(pa.table({"m": m})).equals(expected)
    # a slice, a chunked column, other key/value widths, a dictionary-encoded key
    assert hash_rows(pa.table({"m": m.slice(1)})).equals(expected.slice(1))
    chunked = pa.chunked_array([m.slice(0, 1), m.slice(1)])
    assert hash_rows(pa.table({"m": chunked})).equals(expected)
    wide = m.cast(pa.map_(pa.large_string(), pa.int32()))
    assert hash_rows(pa.table({"m": wide})).equals(expected)
    for i in range(len(m)):
        assert hash_rows(pa.table({"m": m.slice(i, 1)}))[0] == expected[i]


def test_nested_maps_are_sorted_at_every_depth():
    inner = pa.map_(pa.string(), pa.int64())
    outer = pa.map_(pa.string(), inner)
    a = pa.array([[("y", [("q", 1), ("p", 2)]), ("x", None)]], outer)
    b = pa.array([[("x", None), ("y", [("p", 2), ("q", 1)])]], outer)
    assert same(pa.table({"m": a}), pa.table({"m": b}))
    in_struct = pa.struct([("tag", pa.string()), ("counts", inner)])
    s1 = pa.array([{"tag": "t", "counts": [("b", 1), ("a", 2)]}, None], in_struct)
    s2 = pa.array([{"tag": "t", "counts": [("a", 2), ("b", 1)]}, None], in_struct)
    assert same(pa.table({"s": s1}), pa.table({"s": s2}))
    in_list = pa.list_(inner)
    l1 = pa.array([[[("b", 1), ("a", 2)], None, []], None], in_list)
    l2 = pa.array([[[("a", 2), ("b", 1)], None, []], None], in_list)
    assert same(pa.table({"l": l1}), pa.table({"l": l2}))
    map_keys = pa.map_(pa.list_(inner), pa.int64())
    k1 = pa.array([[([[("b", 1), ("a", 2)]], 1), ([], 2)]], map_keys)
    k2 = pa.array([[([], 2), ([[("a", 2), ("b", 1)]], 1)]], map_keys)
    assert same(pa.table({"k": k1}), pa.table({"k": k2}))


def test_path_keys_sort_by_file_content(tmp_path: Path):
    for name, text in (("a.txt", "A"), ("b.txt", "B"), ("copy_of_a.txt", "A")):
        (tmp_path / name).write_text(text)
    map_type = pa.map_(PATH_STRUCT_TYPE, pa.int64())

    def table(*names: str) -> pa.Table:
        entries = [({"path": str(tmp_path / n)}, i) for i, n in enumerate(names)]
        return pa.table({"m": pa.array([entries], map_type)})

    a_then_b = table("a.txt", "b.txt")
    b_then_a = pa.table({"m": pa.array([list(reversed(a_then_b["m"][0].as_py()))], map_type)})
    assert same(a_then_b, b_then_a)
    assert same(a_then_b, table("copy_of_a.txt", "b.txt"))


def test_maps_with_sorted_keys_keep_their_stored_hashes():
    """Maps whose keys were already in order hash as they did when entry order was part of
    the hash, so stores holding them do not recompute."""
    t = pa.table(
        {
            "m": pa.array(
                [[("a", 1), ("b", 2), ("c", None)], [], None, [("x", 5)]],
                pa.map_(pa.string(), pa.int64()),
            ),
            "n": pa.array(
                [[(1, [{"k": 1.5}]), (7, None)], None, [(-3, [])], [(0, []), (2, [])]],
                pa.map_(pa.int32(), pa.list_(pa.map_(pa.string(), pa.float64()))),
            ),
            "l": pa.array(
                [[[("p", dt.date(2020, 1, 1)), ("q", None)]], [None], None, [[]]],
                pa.list_(pa.map_(pa.string(), pa.date32())),
            ),
        }
    )
    assert hash_table(t).to_string() == "arrow_v1:fd1621e2ee62a207048617e22d9cecd1"
    assert [d.hex() for d in hash_rows(t).to_pylist()] == [
        "6e9af7f2d949421842a857dc85d8f602",
        "b441f284f099bfc4a9bb844cea6f99a2",
        "d204861f798651ec120f6864a27511e1",
        "4dddc2a5f02d995a88ebd40947370c6b",
    ]


def test_many_maps_in_random_order_hash_as_their_sorted_forms():
    rng = np.random.default_rng(0)
    n = 20_000
    lengths = rng.integers(0, 6, n)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    keys = pa.array(rng.permutation(int(offsets[-1])))  # distinct keys, in no order
    values = pa.array(rng.random(int(offsets[-1])))
    m = pa.MapArray.from_arrays(pa.array(offsets), keys, values)
    rows = [None if r is None else sorted(r) for r in m.to_pylist()]
    expected = hash_rows(pa.table({"m": pa.array(rows, m.type)}))
    assert hash_rows(pa.table({"m": m})).equals(expected)


def test_nan_keys_sort_last_whatever_their_place():
    map_type = pa.map_(pa.float64(), pa.int64())
    nan_first = pa.table({"m": pa.array([[(float("nan"), 1), (1.0, 2), (0.5, 3)]], map_type)})
    nan_last = pa.table({"m": pa.array([[(0.5, 3), (1.0, 2), (float("nan"), 1)]], map_type)})
    nan_middle = pa.table({"m": pa.array([[(1.0, 2), (float("nan"), 1), (0.5, 3)]], map_type)})
    assert same(nan_first, nan_last)
    assert same(nan_middle, nan_last)
