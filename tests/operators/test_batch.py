"""Batch: consecutive rows grouped; every column becomes a list."""

import pyarrow.compute as pc
import pytest

from orcapod.errors import InputValidationError
from orcapod.operators import Batch
from orcapod.sources import DictSource


@pytest.fixture
def five():
    return DictSource(
        [{"i": i, "v": i * 10} for i in range(5)], tag_columns=["i"], source_id="five"
    )


def test_batches_of_fixed_size_keep_the_partial_one(five):
    out = Batch(2)(five).as_table().to_pylist()
    assert out == [
        {"i": [0, 1], "v": [0, 10]},
        {"i": [2, 3], "v": [20, 30]},
        {"i": [4], "v": [40]},
    ]


def test_drop_partial_batch(five):
    assert Batch(2, drop_partial_batch=True)(five).as_table().column("i").to_pylist() == [
        [0, 1],
        [2, 3],
    ]
    assert Batch(9, drop_partial_batch=True)(five).as_table().num_rows == 0


def test_zero_means_one_batch(five):
    assert Batch()(five).as_table().column("v").to_pylist() == [[0, 10, 20, 30, 40]]


def test_every_hidden_column_becomes_a_list_with_its_name(five, assert_prediction_matches):
    out = Batch(3)(five)
    table = out.as_table(columns={"system_tags": True, "source": True})
    assert (
        table.column_names
        == five.as_table(columns={"system_tags": True, "source": True}).column_names
    )
    assert table.column("_source_v").to_pylist()[0] == [
        "five::row_0::v",
        "five::row_1::v",
        "five::row_2::v",
    ]
    tags, _ = out.output_schema(all_info=True)
    assert all(tp == list[str] for name, tp in tags.items() if name.startswith("_tag_"))
    assert_prediction_matches(Batch(3)(five))


def test_flatten_restores_the_rows(five):
    batched = Batch(2)(five).as_table(columns={"system_tags": True, "source": True})
    flat = {
        name: pc.list_flatten(batched.column(name)).to_pylist() for name in batched.column_names
    }
    original = five.as_table(columns={"system_tags": True, "source": True}).to_pydict()
    assert flat == original


def test_context_is_kept_per_batch(with_meta, assert_prediction_matches):
    out = Batch(1)(with_meta)
    assert out.as_table(columns={"context": True, "meta": True}).to_pylist() == [
        {"subject": ["s1"], "score": [1.5], "__computed": [True], "_context_key": "orcapod:v1"},
        {"subject": ["s2"], "score": [2.5], "__computed": [False], "_context_key": "orcapod:v1"},
    ]
    assert_prediction_matches(Batch(1)(with_meta))


def test_empty_input_gives_no_batch():
    empty = DictSource([], tag_columns=["i"], data_schema={"i": int, "v": int})
    assert Batch(2)(empty).as_table().num_rows == 0
    assert Batch()(empty).as_table().num_rows == 0


@pytest.mark.parametrize("size", [-1, 1.5, True, "2"])
def test_bad_batch_size(size):
    with pytest.raises(InputValidationError, match="batch_size"):
        Batch(size)


def test_iteration_yields_list_values(five):
    tag, packet = next(iter(Batch(2)(five)))
    assert tag["i"] == [0, 1]
    assert packet["v"] == [0, 10]
