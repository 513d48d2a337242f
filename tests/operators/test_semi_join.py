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


def test_no_shared_column_is_refused_like_join(subjects):
    keep = DictSource([{"subj": "s1", "y": 0.0}], tag_columns=["subj"])
    empty = DictSource([], tag_columns=["subj"], data_schema={"subj": str, "y": float})
    for right in (keep, empty):
        with pytest.raises(InputValidationError, match=r"share no column.*\['subj'\].*map_tags"):
            SemiJoin()(subjects, right)
    with pytest.raises(InputValidationError, match="share no column"):
        subjects.semi_join(keep)


def test_a_shared_packet_column_is_enough_to_match(subjects):
    ages = DictSource([{"k": 1, "age": 25}], tag_columns=["k"])
    assert SemiJoin()(subjects, ages).as_table().to_pylist() == [{"subject": "s3", "age": 25}]


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
