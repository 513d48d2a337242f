"""MergeJoin: colliding packet columns become sorted lists with matching source info."""

import pytest

from orcapod.errors import InputValidationError
from orcapod.operators import MergeJoin
from orcapod.sources import DictSource
from orcapod.types.columns import SCHEMA_HASH_CHARS


@pytest.fixture
def left():
    return DictSource(
        [{"id": 1, "x": 5.0, "a": "p"}, {"id": 2, "x": 1.0, "a": "q"}],
        tag_columns=["id"],
        source_id="L",
    )


@pytest.fixture
def right():
    return DictSource(
        [{"id": 2, "x": 3.0, "b": True}, {"id": 1, "x": 9.0, "b": False}],
        tag_columns=["id"],
        source_id="R",
    )


def test_colliding_columns_become_sorted_lists(left, right):
    out = MergeJoin()(left, right)
    assert dict(out.output_schema()[1]) == {"x": list[float], "a": str, "b": bool}
    rows = {r["id"]: r for r in out.as_table(columns={"source": True}).to_pylist()}
    assert rows[1]["x"] == [5.0, 9.0]
    assert rows[1]["_source_x"] == ["L::row_0::x", "R::row_1::x"]
    assert rows[2]["x"] == [1.0, 3.0]
    assert rows[2]["_source_x"] == ["L::row_1::x", "R::row_0::x"]
    assert rows[1]["_source_a"] == "L::row_0::a"


def test_source_info_is_reordered_with_the_values():
    a = DictSource([{"id": 1, "x": "zeta"}], tag_columns=["id"], source_id="A")
    b = DictSource([{"id": 1, "x": "alpha"}], tag_columns=["id"], source_id="B")
    row = MergeJoin()(a, b).as_table(columns={"source": True}).to_pylist()[0]
    assert row["x"] == ["alpha", "zeta"]
    assert row["_source_x"] == ["B::row_0::x", "A::row_0::x"]


def test_merge_join_is_commutative_including_hidden_columns(left, right):
    assert (
        MergeJoin()(left, right)
        .as_table(all_info=True)
        .equals(MergeJoin()(right, left).as_table(all_info=True))
    )


def test_equal_pipeline_hashes_sort_system_tags_per_row():
    a = DictSource([{"id": 1, "x": 1}, {"id": 2, "x": 2}], tag_columns=["id"], source_id="b_src")
    b = DictSource([{"id": 2, "x": 0}, {"id": 1, "x": 7}], tag_columns=["id"], source_id="a_src")
    assert a.pipeline_hash() == b.pipeline_hash()
    ab = MergeJoin()(a, b).as_table(all_info=True)
    ba = MergeJoin()(b, a).as_table(all_info=True)
    assert ab.equals(ba)
    h = a.pipeline_hash().to_hex(SCHEMA_HASH_CHARS)
    first = ab.column(f"_tag_source_id::{h}::{h}:0").to_pylist()
    second = ab.column(f"_tag_source_id::{h}::{h}:1").to_pylist()
    # per row, (source_id, record_id) pairs are in ascending order
    assert first == ["a_src", "a_src"] and second == ["b_src", "b_src"]
    rec0 = ab.column(f"_tag_record_id::{h}::{h}:0").to_pylist()
    rec1 = ab.column(f"_tag_record_id::{h}::{h}:1").to_pylist()
    rows = dict(zip(ab.column("id").to_pylist(), zip(rec0, rec1, strict=True), strict=True))
    assert rows == {1: ("row_1", "row_0"), 2: ("row_0", "row_1")}


def test_nulls_sort_last():
    a = DictSource([{"id": 1, "x": None}], tag_columns=["id"], data_schema={"x": int | None})
    b = DictSource([{"id": 1, "x": 4}], tag_columns=["id"])
    assert MergeJoin()(a, b).as_table().to_pylist() == [{"id": 1, "x": [4, None]}]


def test_unorderable_values_merge_deterministically():
    a = DictSource([{"id": 1, "x": [3, 4]}], tag_columns=["id"], source_id="A")
    b = DictSource([{"id": 1, "x": [1]}], tag_columns=["id"], source_id="B")
    ab = MergeJoin()(a, b).as_table(all_info=True)
    assert ab.equals(MergeJoin()(b, a).as_table(all_info=True))
    assert sorted(map(tuple, ab.column("x").to_pylist()[0])) == [(1,), (3, 4)]


def test_type_mismatch_of_colliding_columns_is_named(left):
    other = DictSource([{"id": 1, "x": "text"}], tag_columns=["id"])
    with pytest.raises(InputValidationError, match="'x'"):
        MergeJoin()(left, other)


def test_merge_join_is_binary(left):
    with pytest.raises(InputValidationError, match="exactly 2"):
        MergeJoin()(left)


def test_prediction_matches_computation(left, right, assert_prediction_matches):
    assert_prediction_matches(MergeJoin()(left, right))
    tied = DictSource([{"id": 1, "x": 0.5, "a": "z"}], tag_columns=["id"], source_id="T")
    assert_prediction_matches(MergeJoin()(left, tied))


def test_tied_inputs_with_different_column_order_still_commute():
    a = DictSource([{"a": 1, "c": 2, "x": 5}], tag_columns=["a", "c"], source_id="A")
    b = DictSource([{"c": 2, "a": 1, "x": 3}], tag_columns=["c", "a"], source_id="B")
    assert a.pipeline_hash() == b.pipeline_hash()
    ab, ba = MergeJoin()(a, b), MergeJoin()(b, a)
    assert ab.keys(all_info=True) == ba.keys(all_info=True)
    assert ab.as_table(all_info=True).equals(ba.as_table(all_info=True))
