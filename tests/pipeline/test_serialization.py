import json
import subprocess
import sys
import textwrap

import pytest

from orcapod.cli.demo import build_pipeline, classify, compute_bmi
from orcapod.databases import DeltaTableDatabase, InMemoryArrowDatabase
from orcapod.errors import PipelineError
from orcapod.functions import function_pod
from orcapod.nodes import FunctionNode, OperatorNode, SourceNode
from orcapod.operators import GroupBy, PolarsFilter
from orcapod.pipeline import LoadStatus, Pipeline, ReadOnlyNode
from orcapod.pipeline.serialization import FORMAT_VERSION
from orcapod.sources import DictSource
from orcapod.types import CacheMode


@pytest.fixture
def saved(tmp_path):
    store = tmp_path / "store"
    pipeline = build_pipeline(store)
    pipeline.run()
    path = pipeline.save(tmp_path / "pipeline.json")
    return pipeline, path


def test_saved_file_is_versioned_json(saved):
    pipeline, path = saved
    document = json.loads(path.read_text())
    assert document["format_version"] == FORMAT_VERSION
    assert document["name"] == ["demo"]
    assert document["databases"]["pipeline"]["type"] == "delta"
    assert [n["label"] for n in document["nodes"]] == list(pipeline.nodes)
    function = next(n for n in document["nodes"] if n["label"] == "compute_bmi")["function"]
    assert function["module"] == "orcapod.cli.demo"
    assert function["qualname"] == "compute_bmi"
    assert function["output_keys"] == ["bmi"]


def test_round_trip_keeps_graph_identity_and_computes_nothing(saved):
    pipeline, path = saved
    loaded = Pipeline.load(path)
    assert list(loaded.nodes) == list(pipeline.nodes)
    assert loaded.graph.edges == pipeline.graph.edges
    for label, node in pipeline.nodes.items():
        assert loaded.nodes[label].content_hash() == node.content_hash()
        assert loaded.nodes[label].pipeline_hash() == node.pipeline_hash()
    assert set(loaded.load_statuses.values()) == {LoadStatus.FULL}
    assert isinstance(loaded.compute_bmi, FunctionNode)
    assert isinstance(loaded.Join, OperatorNode)
    assert isinstance(loaded.visits, SourceNode)
    assert loaded.classify.as_table().sort_by("subject").to_pylist() == (
        pipeline.classify.as_table().sort_by("subject").to_pylist()
    )
    summary = loaded.run()
    assert summary.computed == 0 and summary.reused == 10
    assert compute_bmi.pod.executor is None and classify.pod.executor is None


def test_unimportable_function_loads_read_only_refuses_to_run_and_still_reads(saved):
    pipeline, path = saved
    document = json.loads(path.read_text())
    for node in document["nodes"]:
        if node["label"] == "compute_bmi":
            node["function"]["module"] = "no_such_module_anywhere"
    path.write_text(json.dumps(document))
    loaded = Pipeline.load(path)
    statuses = loaded.load_statuses
    assert statuses["compute_bmi"] is LoadStatus.READ_ONLY
    assert statuses["classify"] is LoadStatus.READ_ONLY  # its upstream is read-only
    assert statuses["Join"] is LoadStatus.FULL
    node = loaded.compute_bmi
    assert isinstance(node, ReadOnlyNode)
    assert "no_such_module_anywhere" in node.load_reason
    assert "make its module importable" in node.load_reason
    # a node read-only because of its upstream names the first cause
    assert loaded.classify.load_reason.startswith("its upstream 'compute_bmi' is read_only (")
    assert "'compute_bmi': its function no_such_module_anywhere" in loaded.classify.load_reason
    assert node.content_hash().to_string() == next(
        n["content_hash"] for n in document["nodes"] if n["label"] == "compute_bmi"
    )
    with pytest.raises(PipelineError, match="read-only.*no_such_module_anywhere"):
        loaded.run()
    for label in ("compute_bmi", "classify"):  # both read what the store holds for them
        stored = loaded.nodes[label].as_table()
        original = pipeline.nodes[label].as_table()
        assert stored.column_names == original.column_names
        assert stored.sort_by("subject").to_pylist() == original.sort_by("subject").to_pylist()


def test_a_read_only_node_of_a_file_saved_without_its_tables_refuses_to_read(saved):
    _, path = saved
    document = json.loads(path.read_text())
    for node in document["nodes"]:
        if node["label"] == "compute_bmi":
            node["function"]["module"] = "no_such_module_anywhere"
            del node["function"]["tables"]
    path.write_text(json.dumps(document))
    with pytest.raises(PipelineError, match="loaded read_only"):
        Pipeline.load(path).compute_bmi.as_table()


def test_function_defined_in_a_function_loads_read_only(tmp_path, make_subjects):
    @function_pod("double")
    def local_double(height: float) -> float:
        return 2 * height

    pipeline = Pipeline("local", DeltaTableDatabase(tmp_path / "s"))
    with pipeline:
        local_double.pod(make_subjects())
    pipeline.run()
    loaded = Pipeline.load(pipeline.save(tmp_path / "p.json"))
    assert loaded.load_statuses["local_double"] is LoadStatus.READ_ONLY
    assert "cannot be imported" in loaded.local_double.load_reason


def test_in_memory_store_needs_the_database_on_load(tmp_path, make_subjects, make_visits):
    database = InMemoryArrowDatabase()
    pipeline = Pipeline("mem", database, operator_cache_mode=CacheMode.LOG)
    with pipeline:
        compute_bmi.pod(make_visits().join(make_subjects()).polars_filter(subject="s3"))
    pipeline.run()
    path = pipeline.save(tmp_path / "p.json")
    with pytest.raises(PipelineError, match="pipeline_database="):
        Pipeline.load(path)
    loaded = Pipeline.load(path, pipeline_database=database)
    assert set(loaded.load_statuses.values()) == {LoadStatus.FULL}
    assert isinstance(loaded.PolarsFilter.operator, PolarsFilter)
    assert loaded.PolarsFilter.cache_mode is CacheMode.LOG
    assert loaded.run().computed == 0
    # sources are snapshotted in the store: a different, empty store has no rows for them
    empty = Pipeline.load(path, pipeline_database=InMemoryArrowDatabase())
    assert empty.load_statuses["visits"] is LoadStatus.UNAVAILABLE
    assert empty.load_statuses["compute_bmi"] is LoadStatus.READ_ONLY


def test_wrong_or_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(PipelineError, match="no saved pipeline"):
        Pipeline.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PipelineError, match="invalid JSON"):
        Pipeline.load(bad)
    bad.write_text(json.dumps({"format_version": 999, "nodes": []}))
    with pytest.raises(PipelineError, match="format_version 999"):
        Pipeline.load(bad)


def test_grouping_moving_and_cross_join_round_trip(tmp_path, make_visits):
    settings = DictSource([{"threshold": 1.0}], tag_columns=[], source_id="settings")
    pipeline = Pipeline("ops", DeltaTableDatabase(tmp_path / "store"))
    with pipeline:
        grouped = make_visits().tags_to_packet("visit").group_by("subject", label="grouped")
        grouped.cross_join(settings, label="crossed")
    pipeline.run()
    loaded = Pipeline.load(pipeline.save(tmp_path / "p.json"))
    assert list(loaded.nodes) == ["visits", "TagsToPacket", "grouped", "settings", "crossed"]
    for label, node in pipeline.nodes.items():
        assert loaded.nodes[label].content_hash() == node.content_hash()
    assert isinstance(loaded.grouped.operator, GroupBy)
    assert loaded.crossed.operator.cross is True
    rows = loaded.crossed.as_table().sort_by("subject").to_pylist()
    assert rows[-1] == {"subject": "s3", "weight": [50.0, 52.0], "visit": [1, 2], "threshold": 1.0}


SCRIPT = textwrap.dedent(
    """
    from orcapod import Pipeline, function_pod
    from orcapod.databases import DeltaTableDatabase
    from orcapod.sources import DictSource

    @function_pod("y")
    def double(x: int) -> int:
        return 2 * x

    src = DictSource([{"k": "a", "x": 1}, {"k": "b", "x": 2}], tag_columns=["k"], source_id="s")
    pipeline = Pipeline("p", DeltaTableDatabase("store"))
    with pipeline:
        double.pod(src, label="doubled")
    pipeline.run(progress=False)
    pipeline.save("pipeline.json")
    """
)


def test_saving_functions_of_the_script_being_run_warns_at_once(tmp_path):
    (tmp_path / "study.py").write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, "study.py"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    said = " ".join(done.stderr.split())
    assert "OrcapodWarning" in said
    assert "the functions of the nodes doubled (double) are defined in the script" in said
    assert "Move the functions into a module" in said
    loaded = Pipeline.load(tmp_path / "pipeline.json")
    assert loaded.load_statuses["doubled"] is LoadStatus.READ_ONLY
    assert "defined in the script that saved the pipeline" in loaded.doubled.load_reason
    assert loaded.doubled.as_table().to_pylist() == [{"k": "a", "y": 2}, {"k": "b", "y": 4}]
