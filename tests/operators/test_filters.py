"""PolarsFilter: predicates and constraints, hashing, early validation."""

import polars as pl
import pytest

from orcapod.errors import InputValidationError
from orcapod.operators import Join, PolarsFilter
from orcapod.sources import DictSource
from orcapod.streams.tracking import recording


def test_predicates_and_constraints_filter_rows_in_order(sessions):
    out = PolarsFilter([pl.col("weight") > 65], {"session": 1})(sessions)
    assert out.as_table().to_pylist() == [
        {"subject": "s2", "session": 1, "weight": 82.5},
        {"subject": "s1", "session": 1, "weight": 70.0},
    ]


def test_single_expression_and_none_constraint():
    s = DictSource(
        [{"k": 1, "v": None}, {"k": 2, "v": 3}], tag_columns=["k"], data_schema={"v": int | None}
    )
    assert PolarsFilter(pl.col("k") > 1)(s).as_table().column("k").to_pylist() == [2]
    assert PolarsFilter(constraints={"v": None})(s).as_table().column("k").to_pylist() == [1]
    # a null predicate result drops the row
    assert PolarsFilter(pl.col("v") > 0)(s).as_table().column("k").to_pylist() == [2]


def test_no_predicates_keeps_everything(sessions):
    assert PolarsFilter()(sessions).as_table().equals(sessions.as_table())


def test_hidden_columns_and_layout_are_kept(sessions, assert_prediction_matches):
    out = PolarsFilter([pl.col("subject") == "s2"])(sessions)
    assert out.as_table(all_info=True).equals(sessions.as_table(all_info=True).take([0, 2]))
    assert_prediction_matches(PolarsFilter([pl.col("subject") == "s2"])(sessions))


def test_filter_on_nested_and_unconverted_columns():
    s = DictSource(
        [{"k": 1, "v": [1, 2], "m": {"a": 1}}, {"k": 2, "v": [], "m": {}}], tag_columns=["k"]
    )
    out = PolarsFilter(pl.col("v").list.len() > 0)(s)
    assert out.as_table().to_pylist() == [{"k": 1, "v": [1, 2], "m": [("a", 1)]}]


def test_unknown_column_fails_at_application(sessions):
    with pytest.raises(InputValidationError, match="nope"):
        PolarsFilter([pl.col("nope") > 1])(sessions)
    with pytest.raises(InputValidationError, match="nope"):
        PolarsFilter(constraints={"nope": 1})(sessions)


def test_type_errors_and_non_boolean_predicates_fail_at_application(sessions):
    with pytest.raises(InputValidationError):
        PolarsFilter([pl.col("subject") + 1 > 0])(sessions)
    with pytest.raises(InputValidationError, match="boolean"):
        PolarsFilter([pl.col("weight") * 2])(sessions)


def test_bad_predicates_and_values_fail_at_construction():
    with pytest.raises(InputValidationError, match="polars expressions"):
        PolarsFilter(["weight > 3"])
    with pytest.raises(InputValidationError, match="constraint"):
        PolarsFilter(constraints={"x": object()})


def test_expression_filters_work_inside_a_recorded_pipeline(subjects, sessions):
    class Recorder:
        def __init__(self):
            self.identities = []

        def record(self, invocation):
            # a pipeline hashes what it records
            self.identities.append(invocation.output.pipeline_hash())

    recorder = Recorder()
    with recording(recorder):
        out = Join()(subjects, sessions).polars_filter(pl.col("age") > 35)
    assert len(recorder.identities) == 2
    assert out.as_table().column("subject").to_pylist() == ["s2", "s2"]


def test_predicate_order_does_not_change_identity():
    a = PolarsFilter([pl.col("x") > 1, pl.col("y") < 2])
    b = PolarsFilter([pl.col("y") < 2, pl.col("x") > 1])
    assert a.content_hash() == b.content_hash()
