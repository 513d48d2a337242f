"""Pipeline arguments are checked at the call that passes them, with a message that says how
to fix them; a node whose label is a Pipeline attribute is reached as pipeline.nodes[label]."""

from __future__ import annotations

import warnings

import pytest

from orcapod.databases import DeltaTableDatabase, InMemoryArrowDatabase
from orcapod.errors import (
    ExecutionError,
    FailedRowsWarning,
    InputValidationError,
    NodeNotFoundError,
    PipelineError,
)
from orcapod.functions import function_pod
from orcapod.nodes import FunctionNode
from orcapod.pipeline import NoOpObserver, Pipeline
from orcapod.pipeline.arguments import node_reference
from orcapod.types import ErrorPolicy, NodeConfig, PipelineConfig


def _build(pipeline, fns, subjects, visits):
    with pipeline:
        fns.classify.pod(fns.compute_bmi.pod(visits.join(subjects)))
    return pipeline


@pytest.fixture
def pipeline(tmp_path, fns, subjects, visits):
    return _build(Pipeline("study", DeltaTableDatabase(tmp_path / "store")), fns, subjects, visits)


def test_a_malformed_pipeline_argument_fails_at_construction():
    database = InMemoryArrowDatabase()
    with pytest.raises(PipelineError, match=r"non-empty string .* got int 5"):
        Pipeline(5, database)  # type: ignore[arg-type]
    with pytest.raises(PipelineError, match="auto_compile must be True or False"):
        Pipeline("study", database, auto_compile="no")  # type: ignore[arg-type]
    with pytest.raises(
        InputValidationError,
        match=r"Pipeline\(error_policy=...\) must be one of 'fail_fast', 'continue'",
    ):
        Pipeline("study", database, error_policy="bogus")  # type: ignore[arg-type]
    with pytest.raises(
        InputValidationError,
        match=r"Pipeline\(operator_cache_mode=...\) must be one of 'off', 'log', 'replay'",
    ):
        Pipeline("study", database, operator_cache_mode="on")  # type: ignore[arg-type]


def test_error_policy_as_a_string_reaches_the_nodes(tmp_path, subjects, visits):
    @function_pod("bmi")
    def fragile(weight: float, height: float) -> float:
        if weight > 80:
            raise ValueError("too heavy")
        return weight / height**2

    built = Pipeline("study", DeltaTableDatabase(tmp_path), error_policy="fail_fast")
    with built:
        fragile.pod(visits.join(subjects))
    assert built.fragile.error_policy is ErrorPolicy.FAIL_FAST
    with pytest.raises(ExecutionError, match="too heavy"):
        built.run(progress=False)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"config": {"executor": "async_channels"}}, r"run\(config=...\) must be a PipelineConfig"),
        ({"execution_engine_opts": 5}, r"run\(execution_engine_opts=...\) must be a mapping"),
        ({"execution_engine_opts": {2: 1}}, "option names must be strings"),
        ({"observer": 5}, r"run\(observer=...\) must be a PipelineObserver .*NoOpObserver"),
        ({"progress": "no"}, r"run\(progress=...\) must be True or False"),
        ({"logs": None}, r"run\(logs=...\) must be True or False"),
    ],
)
def test_a_wrong_run_argument_fails_before_anything_is_computed(pipeline, fns, arguments, message):
    with pytest.raises(InputValidationError, match=message):
        pipeline.run(**arguments)
    assert fns.bmi_calls == 0
    assert pipeline.run(progress=False, observer=NoOpObserver()).computed == 8


def test_an_observer_lacking_hooks_is_refused_with_the_missing_ones(pipeline):
    class HalfObserver:
        def on_run_start(self, run_id, pipeline_name):
            pass

    with pytest.raises(InputValidationError, match=r"HalfObserver lacks \['on_node_start'"):
        pipeline.run(observer=HalfObserver())


def test_set_node_config_refuses_a_dict_and_an_unknown_node(pipeline):
    with pytest.raises(InputValidationError, match=r"must be a NodeConfig, such as NodeConfig\("):
        pipeline.set_node_config("compute_bmi", {"max_concurrency": 2})
    with pytest.raises(NodeNotFoundError, match=r"no node 'nope'; nodes: \['visits', 'subj"):
        pipeline.set_node_config("nope", NodeConfig())
    with pytest.raises(NodeNotFoundError, match=r"no node \['compute_bmi'\]"):
        pipeline.set_node_config(["compute_bmi"], NodeConfig())  # type: ignore[arg-type]
    pipeline.set_node_config("compute_bmi", NodeConfig(max_concurrency=1))
    assert pipeline.run(progress=False, config=PipelineConfig()).computed == 8


def test_node_lookups_by_an_unknown_label_list_the_nodes(pipeline, fns):
    with pytest.raises(NodeNotFoundError, match=r"no node 'zz'; nodes: \['visits'"):
        pipeline.node_type("zz")
    with pytest.raises(NodeNotFoundError, match=r"no node 'zz'; nodes: \['visits'"):
        pipeline.function_pod_of("zz")
    with pytest.raises(PipelineError, match=r"'subjects' is a source node; .*\['compute_bmi'"):
        pipeline.function_pod_of("subjects")
    assert pipeline.function_pod_of("compute_bmi") is not None


def test_save_and_load_refuse_a_directory_and_name_a_file_to_use(pipeline, tmp_path):
    with pytest.raises(InputValidationError, match=r"that is a directory; .*pipeline\.json"):
        pipeline.save(tmp_path)
    with pytest.raises(InputValidationError, match="that is a directory"):
        Pipeline.load(tmp_path)
    with pytest.raises(InputValidationError, match="path must be a str or pathlib.Path"):
        pipeline.save(5)  # type: ignore[arg-type]
    saved = pipeline.save(tmp_path / "study.json")
    assert list(Pipeline.load(saved).nodes) == list(pipeline.nodes)


def test_a_node_labelled_like_a_pipeline_attribute_is_reached_through_nodes(tmp_path, subjects):
    @function_pod("double")
    def load(height: float) -> float:
        if height > 1.7:
            raise ValueError("too tall")
        return 2 * height

    built = Pipeline("study", DeltaTableDatabase(tmp_path))
    with built:
        load.pod(subjects)
    assert not isinstance(built.load, FunctionNode)  # the classmethod keeps its meaning
    node = built.nodes["load"]
    assert isinstance(node, FunctionNode)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        built.run(progress=False)
    [warning] = [w for w in caught if issubclass(w.category, FailedRowsWarning)]
    assert "pipeline.nodes['load'].failures()" in str(warning.message)
    assert node.failures().num_rows == 2
    with pytest.raises(AttributeError, match=r"pipeline.nodes\[label\], also one whose label"):
        _ = built.lod


def test_node_reference_uses_the_attribute_only_when_it_is_the_node():
    assert node_reference("compute_bmi", Pipeline) == "pipeline.compute_bmi"
    assert node_reference("run", Pipeline) == "pipeline.nodes['run']"
    assert node_reference("my-step", Pipeline) == "pipeline.nodes['my-step']"
    assert node_reference("class", Pipeline) == "pipeline.nodes['class']"
    assert node_reference("_hidden", Pipeline) == "pipeline.nodes['_hidden']"
