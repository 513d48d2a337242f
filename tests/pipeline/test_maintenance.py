"""Forgetting a node's, a function's or chosen rows' stored work makes the next run compute
exactly that again."""

import pytest

from orcapod.cli.demo import build_pipeline
from orcapod.databases import InMemoryArrowDatabase
from orcapod.errors import PipelineError
from orcapod.pipeline import Pipeline
from orcapod.pipeline.maintenance import forget_function, forget_node, recompute_rows


@pytest.fixture
def pipeline(tmp_path):
    built = build_pipeline(tmp_path / "store")
    assert built.run().computed == 10  # 5 visits x 2 functions
    return built


def _computed(summary):
    return {label: summary[label].computed for label in ("compute_bmi", "classify")}


def test_forget_node_recomputes_that_node_only(pipeline):
    before = pipeline.compute_bmi.as_table().sort_by("visit")
    forgotten = forget_node(pipeline, "compute_bmi")
    assert (forgotten.records, forgotten.results) == (5, 5)
    assert _computed(pipeline.run()) == {"compute_bmi": 5, "classify": 0}
    assert pipeline.compute_bmi.as_table().sort_by("visit").equals(before)


def test_forget_function_recomputes_it_in_every_pipeline(pipeline, tmp_path):
    assert forget_function(pipeline.pipeline_database, "classify").results == 5
    assert _computed(pipeline.run()) == {"compute_bmi": 0, "classify": 5}
    assert forget_function(pipeline.pipeline_database, "no_such_function").results == 0


def test_recompute_rows_recomputes_exactly_the_chosen_rows(pipeline):
    subjects = pipeline.compute_bmi.as_table().column("subject").to_pylist()
    chosen = subjects[0]
    forgotten = recompute_rows(pipeline, "compute_bmi", {"subject": chosen})
    assert forgotten.records == subjects.count(chosen)
    summary = pipeline.run()
    assert summary["compute_bmi"].computed == subjects.count(chosen)
    assert summary["compute_bmi"].reused == 5 - subjects.count(chosen)
    assert summary["classify"].computed == 0  # same bmi values: classify reuses its results


def test_maintenance_errors_say_what_to_pass(pipeline, subjects, visits, fns):
    with pytest.raises(PipelineError, match=r"no function node 'Join'; its function nodes: \["):
        forget_node(pipeline, "Join")
    with pytest.raises(PipelineError, match="'weight' is not a tag column .* tag columns: "):
        recompute_rows(pipeline, "compute_bmi", {"weight": 1})
    with pytest.raises(PipelineError, match="needs where="):
        recompute_rows(pipeline, "compute_bmi", {})
    in_memory = Pipeline("m", InMemoryArrowDatabase())
    with in_memory:
        fns.compute_bmi.pod(visits.join(subjects))
    with pytest.raises(PipelineError, match="needs a local DeltaTableDatabase"):
        forget_node(in_memory, "compute_bmi")
