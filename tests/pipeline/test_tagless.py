"""Pipelines over streams with no tag columns (the default of CSV, dict, Arrow and Delta
sources): first run, rerun, added rows, logs, store view and downstream nodes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.errors import FailedRowsWarning, InputValidationError
from orcapod.pipeline import StoreView
from orcapod.sources import CSVSource, DictSource
from orcapod.types import WorkClaims

ORCAPOD = Path(sys.executable).parent / "orcapod"


@function_pod("bmi")
def bmi(weight: float, height: float) -> float:
    if weight <= 0:
        raise ValueError(f"weight must be positive, got {weight}")
    return round(weight / height**2, 1)


@function_pod("category")
def classify(bmi: float) -> str:
    return "high" if bmi >= 25 else "normal"


def csv_pipeline(tmp_path: Path, weights: list[float], claims: WorkClaims | None) -> Pipeline:
    csv = tmp_path / "people.csv"
    csv.write_text("weight,height\n" + "".join(f"{w},1.80\n" for w in weights))
    pipeline = Pipeline("tagless", DeltaTableDatabase(tmp_path / "store"))
    with pipeline:
        bmi.pod(CSVSource(csv, source_id="people"))  # no tag_columns: the default
    pipeline.bmi.work_claims = claims
    return pipeline


@pytest.mark.parametrize(
    "claims",
    [WorkClaims(), WorkClaims(min_work_seconds=0), None],
    ids=["default-claims", "claims-always-shared", "no-claims"],
)
def test_a_tagless_csv_pipeline_runs_reruns_and_adds_rows(tmp_path, claims):
    first = csv_pipeline(tmp_path, [70.0, 82.5], claims).run(progress=False)
    assert first.ok and (first.computed, first.reused) == (2, 0)
    again = csv_pipeline(tmp_path, [70.0, 82.5], claims).run(progress=False)
    assert again.ok and (again.computed, again.reused) == (0, 2)
    grown = csv_pipeline(tmp_path, [70.0, 82.5, 100.0], claims)
    added = grown.run(progress=False)
    assert added.ok and (added.computed, added.reused) == (1, 2)

    table = grown.bmi.as_table()
    assert table.column_names == ["bmi"]
    assert sorted(table.column("bmi").to_pylist()) == [21.6, 25.5, 30.9]
    view = StoreView(tmp_path / "store")
    assert [r.status for r in view.runs()] == ["ok", "ok", "ok"]
    assert {(n.label, n.status) for n in view.nodes()} == {("people", "ok"), ("bmi", "ok")}
    assert view.logs("bmi").num_rows == 3  # one per computed call, none for reused rows


def test_orcapod_status_shows_a_tagless_node_ok(tmp_path):
    csv_pipeline(tmp_path, [70.0, 82.5], WorkClaims()).run(progress=False)
    command = [str(ORCAPOD), "status", str(tmp_path / "store")]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    bmi_line = next(line.split() for line in done.stdout.splitlines() if line.startswith("bmi "))
    assert bmi_line == ["bmi", "function", "2", "2", "0", "0", "0", "ok"]


def test_nodes_downstream_of_a_tagless_function_node_run_and_rerun(tmp_path):
    def build() -> Pipeline:
        pipeline = Pipeline("down", DeltaTableDatabase(tmp_path / "store"))
        people = DictSource([{"weight": w, "height": 1.8} for w in (70.0, 90.0)], source_id="p")
        doses = DictSource([{"dose": 1.0}, {"dose": 2.0}], source_id="d")
        with pipeline:
            computed = bmi.pod(people)
            classify.pod(computed)
            computed.map_packets({"bmi": "index"}, label="renamed")
            computed.cross_join(doses, label="paired")
        return pipeline

    assert build().run(progress=False).ok
    pipeline = build()
    rerun = pipeline.run(progress=False)
    assert rerun.ok and rerun.computed == 0 and rerun.reused == 4
    assert sorted(pipeline.classify.as_table().column("category").to_pylist()) == [
        "high",
        "normal",
    ]
    assert pipeline.renamed.as_table().column_names == ["index"]
    assert pipeline.paired.as_table().num_rows == 4
    statuses = {n.label: n.status for n in StoreView(tmp_path / "store").nodes()}
    assert set(statuses.values()) == {"ok"} and len(statuses) == 6


def test_a_stream_with_every_tag_dropped_runs_in_a_pipeline(tmp_path):
    rows = [{"name": n, "weight": w, "height": 1.8} for n, w in (("a", 70.0), ("b", 90.0))]
    source = DictSource(rows, tag_columns=["name"], source_id="named")
    pipeline = Pipeline("dropped", DeltaTableDatabase(tmp_path / "store"))
    with pipeline:
        bmi.pod(source.drop_tag_columns("name"))
    assert pipeline.run(progress=False).ok
    assert pipeline.run(progress=False).reused == 2
    assert [r.status for r in StoreView(tmp_path / "store").runs()] == ["ok", "ok"]


def test_a_failing_row_of_a_tagless_input_is_recorded_and_retried(tmp_path):
    def build() -> Pipeline:
        pipeline = Pipeline("fails", DeltaTableDatabase(tmp_path / "store"))
        rows = [{"weight": w, "height": 1.8} for w in (70.0, -1.0)]
        with pipeline:
            bmi.pod(DictSource(rows, source_id="p"))
        return pipeline

    for _ in range(2):  # the second run retries the failed row, and it fails again
        pipeline = build()
        with pytest.warns(FailedRowsWarning):
            summary = pipeline.run(progress=False)
        assert summary.failed == 1
    assert pipeline.bmi.failures().num_rows == 1  # the latest failure of the row
    assert pipeline.bmi.as_table().column("bmi").to_pylist() == [21.6]
    view = StoreView(tmp_path / "store")
    assert [r.status for r in view.runs()] == ["failed", "failed"]
    assert view.logs("bmi", failed=True).num_rows == 2
    # explain names no rows of a tag-less input (there are no tags to show), not empty ones
    text = str(build().explain()["bmi"])
    assert "would compute 1 of 2 rows" in text and "rows: {}" not in text


def test_joining_two_tagless_streams_is_refused_and_names_the_cross_join():
    left = DictSource([{"x": 1.0}], source_id="l")
    right = DictSource([{"y": 2.0}], source_id="r")
    with pytest.raises(
        InputValidationError, match="share no tag column.*packet_to_tags.*cross_join"
    ):
        left.join(right)
    assert left.cross_join(right).as_table().to_pylist() == [{"x": 1.0, "y": 2.0}]
