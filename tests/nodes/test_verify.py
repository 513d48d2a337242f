"""``node.verify()``: recompute stored rows without storing them and compare."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from orcapod.databases import DeltaTableDatabase
from orcapod.errors import InputValidationError
from orcapod.functions import function_pod
from orcapod.nodes.verify import VERIFICATION_AREA, values_match
from orcapod.pipeline import Pipeline
from orcapod.sources import DictSource

_counter = itertools.count()


@function_pod("y")
def square(x: float) -> float:
    return x * x


@function_pod("y")
def drifting(x: float) -> float:
    """Deliberately non-deterministic: every call returns a new value."""
    return x + next(_counter)


def _pipeline(store: Path, pod, n: int = 200) -> Pipeline:
    rows = [{"id": i, "x": float(i)} for i in range(n)]
    source = DictSource(rows, tag_columns=["id"], source_id="items", record_id_column="id")
    pipeline = Pipeline("study", DeltaTableDatabase(store))
    with pipeline:
        pod.pod(source)
    pipeline.run()
    return pipeline


def test_a_deterministic_function_verifies_and_the_verification_is_recorded(
    tmp_path: Path,
) -> None:
    pipeline = _pipeline(tmp_path, square)
    node = pipeline.square
    report = node.verify(sample=0.05, seed=1)
    assert report.ok
    assert report.checked == 10 and report.matches == 10
    stored = node.pipeline_database.at(VERIFICATION_AREA).get_record_by_id(
        node.record_path, report.run_id
    )
    assert stored is not None
    row = stored.to_pylist()[0]
    assert (row["checked"], row["matches"], row["mismatches"]) == (10, 10, 0)
    assert row["sample"] == 0.05


def test_verify_stores_no_results(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, square)
    node = pipeline.square
    before = node.result_cache.database.get_all_records(node.result_cache.record_path)
    node.verify(sample=1.0)
    after = node.result_cache.database.get_all_records(node.result_cache.record_path)
    assert before is not None and after is not None
    assert after.num_rows == before.num_rows


def test_a_non_deterministic_function_is_caught_and_its_rows_named(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, drifting, n=20)
    node = pipeline.drifting
    report = node.verify(tags=[{"id": 3}, {"id": 7}])
    assert not report.ok
    assert report.checked == 2
    assert sorted(m["tag"]["id"] for m in report.mismatches) == [3, 7]
    assert "did NOT reproduce" in str(report)
    stored = node.pipeline_database.at(VERIFICATION_AREA).get_record_by_id(
        node.record_path, report.run_id
    )
    assert stored is not None
    mismatched = json.loads(stored.to_pylist()[0]["mismatched"])
    assert sorted(m["tag"]["id"] for m in mismatched) == [3, 7]


def test_rows_not_yet_computed_are_not_checked(tmp_path: Path) -> None:
    rows = [{"id": i, "x": float(i)} for i in range(5)]
    source = DictSource(rows, tag_columns=["id"], source_id="items", record_id_column="id")
    pipeline = Pipeline("study", DeltaTableDatabase(tmp_path))
    with pipeline:
        square.pod(source)
    report = pipeline.square.verify(sample=1.0, record=False)
    assert report.checked == 0 and report.ok


def test_bad_arguments_fail_with_a_clear_error(tmp_path: Path) -> None:
    node = _pipeline(tmp_path, square, n=3).square
    with pytest.raises(InputValidationError, match="fraction"):
        node.verify(sample=2.0)
    with pytest.raises(InputValidationError, match="not tag columns"):
        node.verify(tags={"nope": 1})
    with pytest.raises(InputValidationError, match="either"):
        node.verify(sample=0.5, tags={"id": 1})


def test_values_match_compares_floats_within_tolerance_and_the_rest_exactly() -> None:
    assert values_match(1.0, 1.0 + 1e-12, 1e-9, 0.0)
    assert not values_match(1.0, 1.001, 1e-9, 0.0)
    assert values_match(float("nan"), float("nan"), 1e-9, 0.0)
    assert values_match([1.0, {"a": 2.0}], [1.0, {"a": 2.0 + 1e-13}], 1e-9, 0.0)
    assert not values_match("a", "b", 1e-9, 0.0)
    assert not values_match(1, 2, 1e-9, 0.0)
