import io
import threading
import warnings

import networkx as nx
import polars as pl
import pytest
from rich.console import Console

from orcapod.databases import DeltaTableDatabase, InMemoryArrowDatabase
from orcapod.errors import (
    ExecutionError,
    FailedRowsWarning,
    InputValidationError,
    NothingRecordedWarning,
    PipelineError,
)
from orcapod.executors import LocalExecutor
from orcapod.functions import function_pod
from orcapod.nodes import FunctionNode, OperatorNode, SourceNode
from orcapod.nodes.summary import NodeType
from orcapod.pipeline import (
    CompositeObserver,
    Pipeline,
    PipelineRunSummary,
    ProgressObserver,
    StatusObserver,
)
from orcapod.pipeline.observers import NodeState
from orcapod.sources import CachedSource, CSVSource, DictSource
from orcapod.streams.tracking import no_tracking
from orcapod.types import CacheMode, ErrorPolicy, ExecutorType, NodeConfig, PipelineConfig


def _build(pipeline, fns, subjects, visits):
    with pipeline:
        joined = visits.join(subjects)
        bmi = fns.compute_bmi.pod(joined)
        fns.classify.pod(bmi)
    return pipeline


def test_compile_labels_nodes_by_name_in_topological_order(fns, subjects, visits):
    pipeline = _build(Pipeline("study", InMemoryArrowDatabase()), fns, subjects, visits)
    assert list(pipeline.nodes) == ["visits", "subjects", "Join", "compute_bmi", "classify"]
    assert isinstance(pipeline.compute_bmi, FunctionNode)
    assert pipeline.compute_bmi is pipeline.nodes["compute_bmi"]
    assert isinstance(pipeline.Join, OperatorNode)
    assert isinstance(pipeline.subjects, SourceNode)
    assert pipeline.node_type("classify") is NodeType.FUNCTION
    assert {"compute_bmi", "classify"} <= set(dir(pipeline))
    graph = pipeline.graph
    assert isinstance(graph, nx.DiGraph) and nx.is_directed_acyclic_graph(graph)
    assert list(nx.topological_sort(graph))[-2:] == ["compute_bmi", "classify"]
    assert set(graph.predecessors("Join")) == {"visits", "subjects"}
    assert list(graph.predecessors("classify")) == ["compute_bmi"]
    assert graph.nodes["classify"]["node"] is pipeline.classify
    with pytest.raises(AttributeError, match="compute_bmi"):
        _ = pipeline.not_a_node


def test_colliding_labels_are_disambiguated(fns, subjects, visits, make_visits):
    other = make_visits([{"subject": "s1", "visit": 9, "weight": 60.0}])
    pipeline = Pipeline("study", InMemoryArrowDatabase())
    with pipeline:
        fns.compute_bmi.pod(visits.join(subjects))
        fns.compute_bmi.pod(other.join(subjects))
        fns.compute_bmi.pod(visits.join(subjects), label="again")  # same call: same node
        fns.classify.pod(fns.compute_bmi.pod(visits.join(subjects)), label="named")
    labels = list(pipeline.nodes)
    assert [lbl for lbl in labels if lbl.startswith("compute_bmi")] == [
        "compute_bmi",
        "compute_bmi_1",
    ]
    assert [lbl for lbl in labels if lbl.startswith("Join")] == ["Join", "Join_1"]
    assert "named" in labels and "again" not in labels


def test_an_explicit_duplicate_label_raises_and_adds_nothing(fns, subjects, visits, make_visits):
    other = make_visits([{"subject": "s1", "visit": 9, "weight": 60.0}])
    pipeline = Pipeline("study", InMemoryArrowDatabase())
    with pipeline:
        fns.compute_bmi.pod(visits.join(subjects), label="bmi")
    before = list(pipeline.nodes)
    with pytest.raises(PipelineError, match=r"label 'bmi' is already used.*FunctionNode"), pipeline:
        joined = other.join(subjects)
        fns.compute_bmi.pod(joined, label="bmi")
    assert list(pipeline.nodes) == before and pipeline.is_compiled
    with pipeline:  # fixed: the block is recorded anew
        fns.compute_bmi.pod(other.join(subjects), label="bmi_other")
    assert list(pipeline.nodes)[-1] == "bmi_other"
    assert "bmi_1" not in pipeline.nodes
    with pytest.raises(PipelineError, match="'Join' is already used"), pipeline:
        subjects.join(visits, label="sub").batch(2, label="Join")


def test_automatic_labels_of_one_function_applied_twice_get_suffixes(fns, subjects, visits):
    pipeline = Pipeline("study", InMemoryArrowDatabase())
    with pipeline:
        bmi = fns.compute_bmi.pod(visits.join(subjects))
        fns.compute_bmi.pod(bmi.map_packets({"bmi": "weight"}).join(subjects))
    assert [lbl for lbl in pipeline.nodes if lbl.startswith("compute_bmi")] == [
        "compute_bmi",
        "compute_bmi_1",
    ]


def test_source_nodes_are_labelled_by_source_id_when_given(fns, tmp_path):
    named = DictSource([{"subject": "s1", "height": 1.7}], tag_columns=["subject"], source_id="ids")
    unnamed = DictSource([{"subject": "s1", "weight": 70.0}], tag_columns=["subject"])
    labelled = DictSource(
        [{"subject": "s1", "visit": 1}], tag_columns=["subject"], source_id="x", label="mine"
    )
    csv = tmp_path / "heights.csv"
    csv.write_text("subject,age\ns1,30\n")
    pipeline = Pipeline("study", InMemoryArrowDatabase())
    with pipeline:
        fns.compute_bmi.pod(unnamed.join(named))
        labelled.join(CSVSource(csv, tag_columns=["subject"]))
    assert list(pipeline.nodes)[:2] == ["DictSource", "ids"]
    assert {"mine", "heights"} <= set(pipeline.nodes)
    assert isinstance(pipeline.ids, SourceNode)


def test_a_block_that_records_nothing_warns(fns, subjects, visits):
    pipeline = Pipeline("study", InMemoryArrowDatabase())
    joined = visits.join(subjects)  # outside the block: not recorded
    with pytest.warns(NothingRecordedWarning, match="recorded nothing"), pipeline:
        fns.compute_bmi(70.0, 1.8)  # a plain call, not .pod(...)
        _ = joined
    assert dict(pipeline.nodes) == {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeError), pipeline:
            raise RuntimeError("a failing block does not also warn")


def test_compile_is_incremental_and_idempotent(fns, subjects, visits):
    pipeline = Pipeline("study", InMemoryArrowDatabase())
    with pipeline:
        bmi = fns.compute_bmi.pod(visits.join(subjects))
    first = pipeline.compute_bmi
    assert list(pipeline.nodes)[-1] == "compute_bmi"
    with pipeline:
        fns.classify.pod(bmi)
    assert pipeline.compute_bmi is first
    assert list(pipeline.nodes)[-1] == "classify"
    assert list(pipeline.graph.predecessors("classify")) == ["compute_bmi"]
    before = list(pipeline.nodes)
    _build(pipeline, fns, subjects, visits)  # the same calls again: nothing new
    assert list(pipeline.nodes) == before
    assert pipeline.compile() == []


def test_auto_compile_off_waits_for_compile(fns, subjects, visits):
    pipeline = Pipeline("study", InMemoryArrowDatabase(), auto_compile=False)
    _build(pipeline, fns, subjects, visits)
    assert dict(pipeline.nodes) == {} and not pipeline.is_compiled
    assert pipeline.compile()[-1] == "classify"
    assert pipeline.is_compiled


def test_an_exception_inside_the_block_compiles_nothing(fns, subjects, visits):
    pipeline = Pipeline("study", InMemoryArrowDatabase())
    with pytest.raises(RuntimeError, match="boom"), pipeline:
        fns.compute_bmi.pod(visits.join(subjects))
        raise RuntimeError("boom")
    assert dict(pipeline.nodes) == {}
    assert pipeline.compile() == []  # the failed block's calls are gone for good
    # and recording stopped with the block
    fns.compute_bmi.pod(visits.join(subjects))
    assert pipeline.compile() == []


def test_only_calls_inside_the_block_are_recorded(fns, subjects, visits):
    pipeline = Pipeline("study", InMemoryArrowDatabase())
    outside = fns.compute_bmi.pod(visits.join(subjects))
    with pipeline:
        with no_tracking():
            fns.classify.pod(outside)
        fns.classify.pod(outside)
    # the stream made outside the block is a leaf of the graph
    assert list(pipeline.nodes) == ["FunctionPodStream", "classify"]


def test_rerun_computes_nothing(fns, subjects, visits, database):
    first = _build(Pipeline("study", database), fns, subjects, visits).run()
    assert (first.computed, first.reused) == (8, 0)
    assert fns.bmi_calls == 4 and fns.classify_calls == 4
    # a fresh pipeline object (as in a new process) over the same store
    again = _build(Pipeline("study", database), fns, subjects, visits).run()
    assert (again.computed, again.reused, again.failed) == (0, 8, 0)
    assert fns.bmi_calls == 4 and fns.classify_calls == 4


def test_rerun_in_a_new_process_computes_nothing(tmp_path, fns, subjects, visits):
    _build(Pipeline("study", DeltaTableDatabase(tmp_path / "s")), fns, subjects, visits).run()
    reopened = DeltaTableDatabase(tmp_path / "s")
    summary = _build(Pipeline("study", reopened), fns, subjects, visits).run()
    assert summary.computed == 0 and summary.reused == 8


def test_added_rows_compute_only_the_new_rows(fns, subjects, make_visits, database):
    from_conftest = make_visits()
    _build(Pipeline("study", database), fns, subjects, from_conftest).run()
    more = make_visits(
        [*from_conftest.as_table().to_pylist(), {"subject": "s1", "visit": 2, "weight": 72.0}]
    )
    pipeline = _build(Pipeline("study", database), fns, subjects, more)
    summary = pipeline.run()
    assert summary["compute_bmi"].computed == 1 and summary["compute_bmi"].reused == 4
    assert summary["classify"].computed == 1 and summary["classify"].reused == 4
    assert fns.bmi_calls == 5
    assert pipeline.classify.as_table().num_rows == 5


def test_run_results_are_readable_from_nodes(fns, subjects, visits):
    pipeline = _build(Pipeline("study", InMemoryArrowDatabase()), fns, subjects, visits)
    assert pipeline.classify.as_table().num_rows == 0  # reading never computes
    pipeline.run()
    table = pipeline.classify.as_table().sort_by([("subject", "ascending"), ("visit", "ascending")])
    assert table.column("category").to_pylist() == ["normal", "high", "normal", "normal"]


def test_function_nodes_get_a_local_executor_without_touching_the_pod(fns, subjects, visits):
    pod = fns.compute_bmi.pod
    assert pod.executor is None
    pipeline = _build(Pipeline("study", InMemoryArrowDatabase()), fns, subjects, visits)
    assert isinstance(pipeline.compute_bmi.executor, LocalExecutor)
    assert pipeline.compute_bmi.executor is not pipeline.classify.executor
    pipeline.run(executor=LocalExecutor(max_workers=2))
    assert pod.executor is None
    assert pod.packet_function.executor is None
    assert fns.classify.pod.executor is None


def test_run_gives_each_node_its_own_executor_with_options(fns, subjects, visits):
    pipeline = _build(Pipeline("study", InMemoryArrowDatabase()), fns, subjects, visits)
    given = LocalExecutor()
    pipeline.run(executor=given, execution_engine_opts={"max_workers": 3})
    a, b = pipeline.compute_bmi.executor, pipeline.classify.executor
    assert a is not given and b is not given and a is not b
    assert a.max_workers == 3 and b.max_workers == 3
    assert given.max_workers is None
    # without an executor the next run goes back to the compile-time executors
    pipeline.run()
    assert pipeline.compute_bmi.executor.max_workers is None


def test_config_options_apply_when_no_opts_are_passed(fns, subjects, visits):
    pipeline = _build(Pipeline("study", InMemoryArrowDatabase()), fns, subjects, visits)
    pipeline.run(config=PipelineConfig(execution_engine_opts={"max_workers": 2}))
    assert pipeline.compute_bmi.executor.max_workers == 2


def test_per_node_executor_override_wins(fns, subjects, visits):
    pipeline = _build(Pipeline("study", InMemoryArrowDatabase()), fns, subjects, visits)
    mine = LocalExecutor(max_workers=5)
    pipeline.compute_bmi.executor = mine
    pipeline.run(executor=LocalExecutor(max_workers=2))
    assert pipeline.compute_bmi.executor is mine
    assert pipeline.classify.executor.max_workers == 2
    pipeline.run()
    assert pipeline.compute_bmi.executor is mine
    assert fns.compute_bmi.pod.executor is None


def test_a_cached_pod_is_recorded_like_any_other(subjects, visits):
    @function_pod("bmi", pod_cache_database=InMemoryArrowDatabase())
    def cached_bmi(weight: float, height: float) -> float:
        return weight / height**2

    pipeline = Pipeline("study", InMemoryArrowDatabase())
    with pipeline:
        cached_bmi.pod(visits.join(subjects))
    assert "cached_bmi" in pipeline.nodes
    assert pipeline.run()["cached_bmi"].total == 4


def test_polars_expression_filter_works_in_a_pipeline(fns, subjects, visits, database):
    def build():
        pipeline = Pipeline("study", database)
        with pipeline:
            heavy = visits.join(subjects).polars_filter(pl.col("weight") > 60)
            fns.compute_bmi.pod(heavy)
        return pipeline

    pipeline = build()
    assert "PolarsFilter" in pipeline.nodes
    summary = pipeline.run()
    assert summary["compute_bmi"].computed == 2
    assert build().run()["compute_bmi"].computed == 0


def test_failed_rows_warn_once_with_count_and_how_to_list(subjects, visits):
    @function_pod("bmi")
    def fragile(weight: float, height: float) -> float:
        if weight > 80:
            raise ValueError("too heavy")
        return weight / height**2

    @function_pod("double")
    def also_fragile(bmi: float) -> float:
        if bmi > 22:
            raise ValueError("too high")
        return 2 * bmi

    pipeline = Pipeline("study", InMemoryArrowDatabase())
    with pipeline:
        also_fragile.pod(fragile.pod(visits.join(subjects)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = pipeline.run()
    failed = [w for w in caught if issubclass(w.category, FailedRowsWarning)]
    assert len(failed) == 1
    message = str(failed[0].message)
    assert "2 row(s) failed" in message and "failures()" in message
    assert summary.failed == 2 and not summary.ok
    assert summary.failed_nodes == ("fragile", "also_fragile")
    assert pipeline.fragile.failures().num_rows == 1
    assert "FAILED" in str(summary)


def test_summary_is_a_mapping_with_a_readable_str(fns, subjects, visits):
    summary = _build(Pipeline("study", InMemoryArrowDatabase()), fns, subjects, visits).run()
    assert isinstance(summary, PipelineRunSummary)
    assert list(summary) == ["visits", "subjects", "Join", "compute_bmi", "classify"]
    assert summary["compute_bmi"].computed == 4
    text = str(summary)
    assert "compute_bmi" in text and "8 computed" in text and "ok" in text
    assert summary.node_type("Join") is NodeType.OPERATOR


def test_observer_hears_every_node(fns, subjects, visits):
    pipeline = _build(Pipeline("study", InMemoryArrowDatabase()), fns, subjects, visits)
    observer = StatusObserver()
    pipeline.run(observer=observer)
    assert observer.status == {label: NodeState.DONE for label in pipeline.nodes}
    assert observer.summaries["classify"].computed == 4


def test_progress_and_composite_observers(fns, subjects, visits):
    pipeline = _build(Pipeline("study", InMemoryArrowDatabase()), fns, subjects, visits)
    out = io.StringIO()
    status = StatusObserver()
    pipeline.run(observer=CompositeObserver(ProgressObserver(Console(file=out, width=100)), status))
    lines = out.getvalue().splitlines()
    (bmi,) = [line for line in lines if line.startswith("compute_bmi (function)")]
    assert "4/4" in bmi and "4 computed, 0 reused" in bmi
    assert status.status["classify"] is NodeState.DONE


def test_node_config_limits_concurrency(fns, subjects, visits):
    pipeline = _build(Pipeline("study", InMemoryArrowDatabase()), fns, subjects, visits)
    pipeline.set_node_config("compute_bmi", NodeConfig(max_concurrency=1))
    assert pipeline.run(executor=LocalExecutor(max_workers=4)).computed == 8
    with pytest.raises(PipelineError, match="no node"):
        pipeline.set_node_config("nope", NodeConfig())


def test_async_orchestration_gives_the_same_rows_and_records(fns, subjects, visits):
    sync_db, async_db = InMemoryArrowDatabase(), InMemoryArrowDatabase()
    sync = _build(Pipeline("study", sync_db), fns, subjects, visits)
    sync.run()
    parallel = _build(Pipeline("study", async_db), fns, subjects, visits)
    summary = parallel.run(config=PipelineConfig(executor=ExecutorType.ASYNC_CHANNELS))
    assert list(summary) == list(sync.nodes) and summary.computed == 8
    for label in ("compute_bmi", "classify"):
        key = [("subject", "ascending"), ("visit", "ascending")]
        assert (
            parallel.nodes[label]
            .as_table()
            .sort_by(key)
            .equals(sync.nodes[label].as_table().sort_by(key))
        )
        path = sync.nodes[label].record_path
        stored = [
            db.at("study").get_all_records(path).drop_columns(["__computed"]).sort_by(key)
            for db in (sync_db, async_db)
        ]
        names = ["subject", "visit", "__input_packet_hash"]
        assert stored[0].select(names).equals(stored[1].select(names))
    again = parallel.run(config=PipelineConfig(executor=ExecutorType.ASYNC_CHANNELS))
    assert again.computed == 0


class Meeting:
    """Two functions that can only both finish if they run at the same time."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2)
        self.met = False

    def meet(self) -> None:
        if not self.met:
            self.barrier.wait(timeout=10)
            self.met = True

    def identity_structure(self) -> str:
        return "Meeting"


def test_async_orchestration_runs_independent_branches_together(subjects, visits):
    meeting = Meeting()

    @function_pod("h2")
    def left(height: float) -> float:
        meeting.meet()
        return height

    @function_pod("w2")
    def right(weight: float) -> float:
        meeting.meet()
        return weight

    pipeline = Pipeline("study", InMemoryArrowDatabase())
    with pipeline:
        left.pod(subjects)
        right.pod(visits)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = pipeline.run(config=PipelineConfig(executor=ExecutorType.ASYNC_CHANNELS))
    assert summary.failed == 0 and summary.computed == 7


def test_async_orchestration_works_inside_a_running_event_loop(fns, subjects, visits):
    import asyncio

    pipeline = _build(Pipeline("study", InMemoryArrowDatabase()), fns, subjects, visits)

    async def notebook_cell():
        return pipeline.run(config=PipelineConfig(executor=ExecutorType.ASYNC_CHANNELS))

    assert asyncio.run(notebook_cell()).computed == 8


@pytest.mark.parametrize("executor", [ExecutorType.SYNCHRONOUS, ExecutorType.ASYNC_CHANNELS])
def test_fail_fast_stops_the_run_and_keeps_finished_rows(subjects, visits, executor):
    @function_pod("bmi")
    def fragile(weight: float, height: float) -> float:
        if weight > 80:
            raise ValueError("too heavy")
        return weight / height**2

    database = InMemoryArrowDatabase()

    def build(policy):
        pipeline = Pipeline("study", database, error_policy=policy)
        with pipeline:
            fragile.pod(visits.join(subjects))
        return pipeline

    pipeline = build(ErrorPolicy.FAIL_FAST)
    with pytest.raises(ExecutionError, match="too heavy"):
        pipeline.run(config=PipelineConfig(executor=executor))
    finished = pipeline.fragile.as_table().num_rows
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        summary = build(ErrorPolicy.CONTINUE).run()
    assert summary["fragile"].reused == finished
    assert summary["fragile"].failed == 1
    assert summary["fragile"].computed == 3 - finished


def test_operator_cache_mode_is_a_pipeline_option(fns, subjects, visits):
    database = InMemoryArrowDatabase()
    pipeline = _build(
        Pipeline("study", database, operator_cache_mode=CacheMode.LOG), fns, subjects, visits
    )
    pipeline.run()
    stored = pipeline.scoped_database.get_all_records(pipeline.Join.record_path)
    assert stored is not None and stored.num_rows == 4


def test_results_go_to_the_explicit_result_database(fns, subjects, visits):
    results = InMemoryArrowDatabase()
    pipeline = _build(
        Pipeline("study", InMemoryArrowDatabase(), result_database=results), fns, subjects, visits
    )
    pipeline.run()
    assert pipeline.compute_bmi.result_database is results
    other = _build(Pipeline("other", InMemoryArrowDatabase(), results), fns, subjects, visits)
    summary = other.run()  # a different pipeline sharing the results: cache hits
    assert summary.computed == 0 and summary.reused == 8


def test_invalid_construction_is_a_pipeline_error():
    with pytest.raises(PipelineError, match="ArrowDatabase"):
        Pipeline("study", None)  # type: ignore[arg-type]
    with pytest.raises(PipelineError, match="name"):
        Pipeline("", InMemoryArrowDatabase())


def test_two_pipelines_recording_in_two_threads_do_not_mix(subjects, visits):
    first = Pipeline("first", InMemoryArrowDatabase())
    second = Pipeline("second", InMemoryArrowDatabase())
    barrier = threading.Barrier(2)
    errors = []

    def build(pipeline, name):
        @function_pod("out", function_name=name)
        def fn(weight: float) -> float:
            return weight

        try:
            with pipeline:
                barrier.wait(timeout=10)
                for _ in range(20):
                    fn.pod(visits)
                barrier.wait(timeout=10)
        except Exception as err:  # surfaced by the assertion below
            errors.append(err)

    threads = [
        threading.Thread(target=build, args=(first, "in_first")),
        threading.Thread(target=build, args=(second, "in_second")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert list(first.nodes) == ["visits", "in_first"]
    assert list(second.nodes) == ["visits", "in_second"]


def test_records_keep_each_rows_own_provenance(fns, subjects, visits, database):
    pipeline = _build(Pipeline("study", database), fns, subjects, visits)
    pipeline.run()
    records = pipeline.compute_bmi.get_all_records(all_info=True).sort_by(
        [("subject", "ascending"), ("visit", "ascending")]
    )
    # the input packet's source info, row by row (never the first row's copied to all)
    assert records.column("_source_weight").to_pylist() == [
        f"visits::row_{i}::weight" for i in range(4)
    ]
    assert records.column("_source_height").to_pylist() == [
        "subjects::row_0::height",
        "subjects::row_1::height",
        "subjects::row_2::height",
        "subjects::row_2::height",
    ]


def test_a_cached_source_feeds_a_pipeline_cumulatively(fns, visits, database):
    def run(rows):
        live = DictSource(
            rows, tag_columns=["subject"], source_id="subjects", record_id_column="subject"
        )
        source = CachedSource(live, database)
        pipeline = Pipeline("study", database)
        with pipeline:
            fns.compute_bmi.pod(visits.join(source))
        return pipeline, pipeline.run()

    rows = [{"subject": "s1", "height": 1.75}, {"subject": "s2", "height": 1.80}]
    _, summary = run(rows)
    assert summary.computed == 2
    # the live source dropped s1 and gained s3; the cached record still holds s1
    second, summary = run([rows[1], {"subject": "s3", "height": 1.60}])
    assert summary["compute_bmi"].computed == 2  # s3 has two visits
    assert summary["compute_bmi"].reused == 2
    subjects = sorted(second.compute_bmi.as_table().column("subject").to_pylist())
    assert subjects == ["s1", "s2", "s3", "s3"]


def test_pipelines_in_one_store_share_results_so_a_renamed_pipeline_computes_nothing(
    tmp_path, fns, subjects, visits
):
    store = tmp_path / "store"
    first = _build(Pipeline("study", DeltaTableDatabase(store)), fns, subjects, visits)
    assert first.run().computed == 8
    renamed = _build(Pipeline("study_v2", DeltaTableDatabase(store)), fns, subjects, visits)
    summary = renamed.run()
    assert summary.computed == 0 and summary.reused == 8
    assert renamed.compute_bmi.as_table().equals(first.compute_bmi.as_table())


def test_a_pipeline_name_starting_with_an_underscore_is_rejected():
    with pytest.raises(PipelineError, match="may not start with '_'"):
        Pipeline("_result", InMemoryArrowDatabase())


def test_run_inside_its_own_with_block_raises(fns, subjects, visits):
    pipeline = Pipeline("study", InMemoryArrowDatabase())
    with (
        pytest.raises(PipelineError, match=r"run\(\) was called inside its own `with"),
        pipeline,
    ):
        fns.compute_bmi.pod(visits.join(subjects))
        pipeline.run()
    assert fns.bmi_calls == 0
    assert list(pipeline.nodes) == []  # the failed block recorded nothing


def test_run_accepts_executor_names_and_refuses_anything_else(fns, subjects, visits):
    pipeline = _build(Pipeline("study", InMemoryArrowDatabase()), fns, subjects, visits)
    assert pipeline.run(executor="local").computed == 8
    assert isinstance(pipeline.compute_bmi.executor, LocalExecutor)
    with pytest.raises(PipelineError, match=r"executor='gpu'\): unknown executor name; pass"):
        pipeline.run(executor="gpu")
    with pytest.raises(PipelineError, match=r"executor=5\) is not an executor; pass 'local'"):
        pipeline.run(executor=5)


def test_a_pipeline_name_too_long_for_a_file_name_fails_at_construction(tmp_path):
    with pytest.raises(InputValidationError, match="over the 255-byte limit of a file name"):
        Pipeline("é" * 100, DeltaTableDatabase(tmp_path / "store"))


def test_an_unwritable_store_fails_before_anything_is_computed(fns, subjects, visits):
    pipeline = _build(Pipeline("study", DeltaTableDatabase("/sys/kernel")), fns, subjects, visits)
    with pytest.raises(InputValidationError, match="'/sys/kernel' is not writable"):
        pipeline.run()
    assert fns.bmi_calls == 0
