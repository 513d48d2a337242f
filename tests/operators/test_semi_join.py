"""SemiJoin: filter the left stream by matches in the right; ordered; left layout kept."""

import pytest

from orcapod.errors import InputValidationError
from orcapod.operators import SemiJoin
from orcapod.sources import DictSource


@pytest.fixture
def wanted():
    return DictSource(
        [{"subject": "s3", "flag": True}, {"subject": "s1", "flag": False}], tag_columns=["subject"]
    )


def test_keeps_matching_left_rows_in_left_order(subjects, wanted):
    out = SemiJoin()(subjects, wanted)
    assert out.as_table().to_pylist() == [
        {"subject": "s1", "age": 30},
        {"subject": "s3", "age": 25},
    ]


def test_left_layout_and_hidden_columns_are_kept(subjects, wanted, assert_prediction_matches):
    out = SemiJoin()(subjects, wanted)
    assert out.keys(all_info=True) == subjects.keys(all_info=True)
    full = subjects.as_table(all_info=True)
    assert out.as_table(all_info=True).equals(full.take([0, 2]))
    assert_prediction_matches(SemiJoin()(subjects, wanted))


def test_matches_on_every_shared_column(subjects):
    right = DictSource(
        [{"subject": "s1", "age": 99}, {"subject": "s2", "age": 41}], tag_columns=["subject"]
    )
    assert SemiJoin()(subjects, right).as_table().to_pylist() == [{"subject": "s2", "age": 41}]


def test_no_shared_columns_keeps_all_rows_for_a_non_empty_right(subjects):
    other = DictSource([{"k": 1, "v": 2}], tag_columns=["k"])
    empty = DictSource([], tag_columns=["k"], data_schema={"k": int, "v": int})
    assert SemiJoin()(subjects, other).as_table().num_rows == 3
    assert SemiJoin()(subjects, empty).as_table().num_rows == 0


def test_type_conflict_is_named(subjects):
    other = DictSource([{"subject": 1, "v": 2}], tag_columns=["subject"])
    with pytest.raises(InputValidationError, match="'subject'"):
        SemiJoin()(subjects, other)


def test_operator_keeps_no_state_between_uses(subjects, sessions, wanted):
    op = SemiJoin()
    first = op(subjects, wanted)
    second = op(sessions, subjects)
    assert second.as_table().num_rows == 3
    assert first.as_table().num_rows == 2
    assert vars(op) == {}
