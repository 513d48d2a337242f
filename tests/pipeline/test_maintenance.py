"""Forgetting a node's, a function's or chosen rows' stored work makes the next run compute
exactly that again."""

import json

import pytest

from orcapod.cli.demo import build_pipeline, compute_bmi
from orcapod.databases import DeltaTableDatabase, InMemoryArrowDatabase
from orcapod.errors import PipelineError
from orcapod.pipeline import LoadStatus, Pipeline, StoreView
from orcapod.pipeline.maintenance import Forgotten, forget_function, forget_node, recompute_rows


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


def _catalog(pipeline):
    """label -> (rows, status), as ``orcapod status`` shows them."""
    return {n.label: (n.rows, n.status) for n in StoreView(pipeline.pipeline_database).nodes()}


def test_the_catalog_says_stale_after_each_operation_until_the_next_run(pipeline):
    assert _catalog(pipeline)["compute_bmi"] == (5, "ok")
    subject = pipeline.compute_bmi.as_table().column("subject")[0].as_py()
    operations = [
        (lambda: recompute_rows(pipeline, "compute_bmi", {"subject": subject}), ["compute_bmi"]),
        (lambda: forget_node(pipeline, "classify"), ["classify"]),
        (lambda: forget_function(pipeline.pipeline_database, "compute_bmi"), ["compute_bmi"]),
    ]
    for operation, stale in operations:
        operation()
        catalog = _catalog(pipeline)
        for label in ("compute_bmi", "classify"):
            assert catalog[label] == ((None, "stale") if label in stale else (5, "ok"))
        pipeline.run()
        assert _catalog(pipeline)["compute_bmi"] == (5, "ok")
        assert _catalog(pipeline)["classify"] == (5, "ok")
    forget_node(pipeline, "classify")
    forget_node(pipeline, "classify")  # nothing left to delete: the catalog is left as it is
    assert _catalog(pipeline)["classify"] == (None, "stale")


def _read_only(path, label):
    """The pipeline saved at ``path``, with the function of ``label`` not importable."""
    document = json.loads(path.read_text())
    for entry in document["nodes"]:
        if entry["label"] == label:
            entry["function"].update(module="module_that_is_nowhere", module_root=None)
    path.write_text(json.dumps(document))
    loaded = Pipeline.load(path)
    assert loaded.load_statuses[label] is LoadStatus.READ_ONLY
    return loaded


def test_a_read_only_function_node_is_forgotten_from_the_tables_its_file_names(pipeline, tmp_path):
    path = pipeline.save(tmp_path / "pipeline.json")
    original = path.read_text()
    loaded = _read_only(path, "compute_bmi")
    subjects = pipeline.compute_bmi.as_table().column("subject").to_pylist()
    forgotten = recompute_rows(loaded, "compute_bmi", {"subject": subjects[0]})
    assert (forgotten.records, forgotten.results) == (subjects.count(subjects[0]),) * 2
    assert _catalog(pipeline)["compute_bmi"] == (None, "stale")
    assert forget_node(loaded, "compute_bmi").records == 5 - subjects.count(subjects[0])
    path.write_text(original)  # the function importable again: the next run computes all
    assert _computed(Pipeline.load(path).run()) == {"compute_bmi": 5, "classify": 0}


def test_a_read_only_node_with_results_in_its_own_result_database(tmp_path, subjects, visits):
    own = Pipeline(
        "own", DeltaTableDatabase(tmp_path / "store"), DeltaTableDatabase(tmp_path / "results")
    )
    with own:
        compute_bmi.pod(visits.join(subjects))
    assert own.run().computed == 4
    path = own.save(tmp_path / "pipeline.json")
    original = path.read_text()
    loaded = _read_only(path, "compute_bmi")
    assert forget_node(loaded, "compute_bmi") == Forgotten(records=4, failures=0, results=4)
    path.write_text(original)
    assert Pipeline.load(path).run().computed == 4
