"""StoreView: a store's pipelines, nodes, rows, logs and runs, read without the user's code."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Annotated

import numpy as np
import pytest
from numpy.typing import NDArray

from orcapod.databases import DeltaTableDatabase, InMemoryArrowDatabase
from orcapod.errors import FailedRowsWarning, NodeNotFoundError, PipelineError
from orcapod.functions import function_pod
from orcapod.hashing.arrow_arrays import arrow_to_arrays
from orcapod.pipeline import Pipeline, StoreView
from orcapod.sources import DictSource
from orcapod.types import Shape


@function_pod("y")
def scale(x: int) -> int:
    print(f"scaling {x}")
    if x == 3:
        raise ValueError("x=3 cannot be scaled")
    return 10 * x


@function_pod("z")
def shift(y: int) -> int:
    return y + 1


def numbers(values: dict[int, int]) -> DictSource:
    rows = [{"k": k, "x": x} for k, x in values.items()]
    return DictSource(rows, tag_columns=["k"], source_id="numbers")


def build(store, name: str = "study", values: dict[int, int] | None = None) -> Pipeline:
    pipeline = Pipeline(name, store)
    with pipeline:
        shift.pod(scale.pod(numbers(values or {1: 1, 2: 2, 3: 3})))
    return pipeline


def run(pipeline: Pipeline):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FailedRowsWarning)
        return pipeline.run()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


def test_nodes_describe_types_edges_tables_schemas_counts_and_status(store):
    summary = run(build(DeltaTableDatabase(store)))
    view = StoreView(store)
    nodes = {n.label: n for n in view.nodes()}
    assert list(nodes) == ["numbers", "scale", "shift"]
    assert [n.node_type for n in nodes.values()] == ["source", "function", "function"]
    assert nodes["shift"].upstreams == ("scale",) and nodes["numbers"].upstreams == ()
    assert nodes["scale"].tag_schema == {"k": "int"}
    assert nodes["scale"].packet_schema == {"y": "int"}
    assert set(nodes["scale"].tables) == {"records", "results", "failures", "logs", "superseded"}
    assert nodes["scale"].tables["records"][0] == "study"
    assert (nodes["scale"].rows, nodes["scale"].computed, nodes["scale"].failed) == (2, 2, 1)
    assert [n.status for n in nodes.values()] == ["ok", "failed", "partial"]
    assert nodes["scale"].function == "scale" and nodes["scale"].code_hash
    assert all(n.last_run == view.runs()[0].run_id for n in nodes.values())
    assert summary.status("shift") == "partial"


def test_pipelines_and_runs(store):
    pipeline = build(DeltaTableDatabase(store))
    run(pipeline)
    run(pipeline)
    view = StoreView(store)
    (info,) = view.pipelines()
    assert info.name == "study" and info.nodes == ("numbers", "scale", "shift")
    runs = view.runs()
    assert len(runs) == 2 and runs[0].started_at >= runs[1].started_at
    assert info.last_run == runs[0].run_id and info.status == "failed"
    latest = runs[0]
    assert latest.status == "failed" and latest.ended_at is not None
    assert (latest.computed, latest.reused, latest.failed) == (0, 4, 1)
    assert latest.nodes["shift"]["status"] == "partial"
    scale = dict(latest.nodes["scale"])
    assert isinstance(scale.pop("seconds"), float)  # the node's wall time in the run
    assert scale == {
        "type": "function",
        "status": "failed",
        "computed": 0,
        "reused": 2,
        "filtered": 0,
        "failed": 1,
    }
    assert set(latest.code) == {"scale", "shift"} and latest.orcapod_version and latest.host
    assert view.runs(pipeline="other") == []


def test_node_rows_are_current_rows_joined_with_results(store):
    db = DeltaTableDatabase(store)
    run(build(db, values={1: 1, 2: 2}))
    view = StoreView(store)
    assert view.node_rows("scale").to_pylist() == [{"k": 1, "y": 10}, {"k": 2, "y": 20}]
    # tag 2's input changes: the node's table now holds two records for it, the newer current
    run(build(db, values={1: 1, 2: 5}))
    assert view.node_rows("scale").to_pylist() == [{"k": 1, "y": 10}, {"k": 2, "y": 50}]
    assert view.node_rows("shift", limit=1).to_pylist() == [{"k": 1, "z": 11}]
    with pytest.raises(PipelineError, match="keeps no table"):
        view.node_rows("numbers")


@function_pod("ramp")
def ramp(n: int) -> NDArray[np.float64]:
    return np.arange(n, dtype=np.float64)


@function_pod("grid")
def grid(n: int) -> Annotated[NDArray[np.int64], Shape(2, 2)]:
    return np.array([[n, 2 * n], [3 * n, 4 * n]], dtype=np.int64)


def test_node_rows_carry_array_outputs_of_any_shape(store):
    db = DeltaTableDatabase(store)
    source = DictSource([{"k": "b", "n": 3}, {"k": "a", "n": 2}], tag_columns=["k"])
    pipeline = Pipeline("arrays", db)
    with pipeline:
        ramp.pod(source)
        grid.pod(source)
    run(pipeline)
    view = StoreView(store)
    ramps = view.node_rows("ramp")
    assert ramps.column("k").to_pylist() == ["a", "b"]
    assert [a.tolist() for a in arrow_to_arrays(ramps.column("ramp"))] == [
        [0.0, 1.0],
        [0.0, 1.0, 2.0],
    ]
    grids = view.node_rows("grid", limit=1)
    assert grids.column("k").to_pylist() == ["a"]
    (only,) = arrow_to_arrays(grids.column("grid"))
    assert only.dtype == np.int64 and only.tolist() == [[2, 4], [6, 8]]


def test_logs_hold_output_and_tracebacks_per_executed_packet(store):
    run(build(DeltaTableDatabase(store)))
    view = StoreView(store)
    logs = view.logs("scale")
    assert logs.num_rows == 3
    by_tag = {row["k"]: row for row in logs.to_pylist()}
    assert by_tag[1]["__stdout"] == "scaling 1\n" and by_tag[1]["__success"]
    assert by_tag[1]["__outcome"] == "computed" and by_tag[1]["__traceback"] is None
    assert by_tag[1]["__executor_type"] == "local" and by_tag[1]["__host"]
    (failed,) = view.logs("scale", failed=True).to_pylist()
    assert failed["k"] == 3 and "x=3 cannot be scaled" in failed["__traceback"]
    run_id = view.runs()[0].run_id
    assert view.logs("scale", run_id=run_id).num_rows == 3
    assert view.logs("scale", run_id="no-such-run").num_rows == 0


def test_names_resolve_by_label_or_pipeline_dot_label(store):
    db = DeltaTableDatabase(store)
    run(build(db, "study"))
    run(build(db, "other"))
    view = StoreView(store)
    assert [p.name for p in view.pipelines()] == ["other", "study"]
    assert len(view.nodes()) == 6 and len(view.nodes(pipeline="study")) == 3
    assert view.node("study.scale").pipeline == "study"
    with pytest.raises(NodeNotFoundError, match="other.scale, study.scale|study.scale, other"):
        view.node("scale")
    with pytest.raises(NodeNotFoundError, match="no node 'nope'.*study.shift"):
        view.node("nope")


def test_a_store_where_nothing_ran_is_empty_and_a_missing_store_is_an_error(tmp_path):
    view = StoreView(InMemoryArrowDatabase())
    assert view.pipelines() == [] and view.nodes() == [] and view.runs() == []
    with pytest.raises(NodeNotFoundError, match="no pipeline has run"):
        view.node("scale")
    with pytest.raises(PipelineError, match="no store at"):
        StoreView(tmp_path / "missing")


@pytest.mark.slow
def test_a_store_is_read_in_a_process_that_cannot_import_the_users_code(tmp_path):
    store = tmp_path / "store"
    code = tmp_path / "code"
    code.mkdir()
    (code / "user_steps.py").write_text(
        textwrap.dedent(
            """
            from orcapod.databases import DeltaTableDatabase
            from orcapod.functions import function_pod
            from orcapod.pipeline import Pipeline
            from orcapod.sources import DictSource

            @function_pod("y")
            def triple(x: int) -> int:
                return 3 * x

            def main(store):
                pipeline = Pipeline("lab", DeltaTableDatabase(store))
                with pipeline:
                    triple.pod(DictSource([{"k": 1, "x": 2}], tag_columns=["k"]))
                pipeline.run()
            """
        )
    )
    subprocess.run(
        [sys.executable, "-c", f"import user_steps; user_steps.main({str(store)!r})"],
        cwd=code,
        check=True,
    )
    reader = textwrap.dedent(
        f"""
        import sys
        from orcapod.pipeline import StoreView
        view = StoreView({str(store)!r})
        print(view.node_rows("triple").to_pylist(), [n.status for n in view.nodes()])
        assert "user_steps" not in sys.modules
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", reader], cwd=tmp_path, check=True, capture_output=True, text=True
    )
    assert out.stdout.strip() == "[{'k': 1, 'y': 6}] ['ok', 'ok']"


# -- current rows after the input changed, read from the store alone -----------------------


@function_pod("y")
def double(x: int) -> int:
    if x < 0:
        raise ValueError(f"x={x} cannot be doubled")
    return 2 * x


def doubling(db, rows: list[tuple[int, int]], record_ids: bool = True) -> Pipeline:
    """``double`` over rows (k, x); record ids by ``k``, or by position."""
    source = DictSource(
        [{"k": k, "x": x} for k, x in rows],
        tag_columns=["k"],
        source_id="numbers",
        record_id_column="k" if record_ids else None,
    )
    pipeline = Pipeline("study", db)
    with pipeline:
        double.pod(source)
    return pipeline


def shown(store, pipeline: Pipeline) -> list[dict]:
    """The node's rows as the store shows them, checked equal to the live node's."""
    rows = StoreView(store).node_rows("double").to_pylist()
    live = pipeline.double.as_table().select(["k", "y"]).sort_by("k").to_pylist()
    assert rows == live
    return rows


def test_a_tag_whose_input_changed_back_shows_its_current_value(store):
    db = DeltaTableDatabase(store)
    for rows in ([(1, 1), (2, 2)], [(1, 1), (2, 3)]):
        run(doubling(db, rows))
    pipeline = doubling(db, [(1, 1), (2, 2)])  # back to A: its record is reused, not written
    run(pipeline)
    assert shown(store, pipeline) == [{"k": 1, "y": 2}, {"k": 2, "y": 4}]


def test_a_tag_whose_newest_input_failed_shows_no_row(store):
    db = DeltaTableDatabase(store)
    run(doubling(db, [(1, 1), (2, 2)]))
    pipeline = doubling(db, [(1, 1), (2, -2)])
    run(pipeline)
    assert shown(store, pipeline) == [{"k": 1, "y": 2}]


def test_a_row_deleted_from_the_source_leaves_the_rows(store):
    db = DeltaTableDatabase(store)
    run(doubling(db, [(1, 1), (2, 2), (3, 3)]))
    pipeline = doubling(db, [(1, 1), (3, 3)])
    run(pipeline)
    assert shown(store, pipeline) == [{"k": 1, "y": 2}, {"k": 3, "y": 6}]


def test_a_row_inserted_into_a_positional_source_shows_each_row_once(store):
    db = DeltaTableDatabase(store)
    run(doubling(db, [(1, 1), (2, 2), (3, 3)], record_ids=False))
    pipeline = doubling(db, [(0, 5), (1, 1), (2, 2), (3, 3)], record_ids=False)
    run(pipeline)
    assert shown(store, pipeline) == [
        {"k": 0, "y": 10},
        {"k": 1, "y": 2},
        {"k": 2, "y": 4},
        {"k": 3, "y": 6},
    ]


def test_a_chunked_run_shows_the_same_rows_as_a_run_over_one_chunk(tmp_path):
    rows = [(k, k) for k in range(25)]
    later = [(k, k + 100 if k % 3 == 0 else k) for k in range(25) if k % 4 != 1]
    answers = []
    for chunk_rows in (10, 50_000):
        store = tmp_path / f"store-{chunk_rows}"
        db = DeltaTableDatabase(store)
        for version in (rows, later, rows, later):
            pipeline = doubling(db, version, record_ids=False)
            pipeline.double.chunk_rows = chunk_rows
            run(pipeline)
        answers.append(shown(store, pipeline))
    assert answers[0] == answers[1]
    assert len(answers[0]) == len(later)


def test_a_stopped_run_leaves_the_previous_membership_in_use(store):
    db = DeltaTableDatabase(store)
    run(doubling(db, [(1, 1), (2, 2)]))
    run(doubling(db, [(1, 1), (2, 3)]))
    run(doubling(db, [(1, 1), (2, 2)]))  # k=2 back to its first input
    stopped = doubling(db, [(1, 1), (2, 3), (3, -3)])
    stopped.double.error_policy = "fail_fast"
    with pytest.raises(Exception, match="cannot be doubled"):
        run(stopped)
    # the stopped run saw k=2 -> 3 again (its record, the newest of k=2, is reused) but
    # records no membership: the last complete run's still leaves that record out
    assert StoreView(store).node_rows("double").to_pylist() == [
        {"k": 1, "y": 2},
        {"k": 2, "y": 4},
    ]


def test_a_store_written_before_membership_was_recorded_still_reads(store):
    db = DeltaTableDatabase(store)
    run(doubling(db, [(1, 1), (2, 2)]))
    run(doubling(db, [(1, 1), (2, 3)]))
    view = StoreView(store)
    (node,) = [n for n in view.nodes() if n.label == "double"]
    # the same store as an older orcapod wrote it: a catalog without ``superseded``
    old = DeltaTableDatabase(store.parent / "old")
    for path in (("_catalog",), ("_runs",), node.tables["records"], node.tables["results"]):
        table = db.get_all_records(path, record_id_column="__record_id")
        if path == ("_catalog",):
            assert "superseded" in table.column_names
            table = table.drop_columns(["superseded"])
        old.add_records(path, table, "__record_id")
    old.flush()
    # without membership: the newest record per tag
    assert StoreView(old).node_rows("double").to_pylist() == [{"k": 1, "y": 2}, {"k": 2, "y": 6}]


def test_a_node_removed_from_the_pipeline_is_no_longer_listed_but_stays_readable(store):
    """The nodes of a pipeline are those of its newest run: a node the code no longer has is
    left out of ``nodes()`` (so of status, graph and the web view), listed by
    ``nodes(removed=True)``, and still found by name, its rows readable."""
    run(build(DeltaTableDatabase(store)))
    smaller = Pipeline("study", DeltaTableDatabase(store))
    with smaller:
        scale.pod(numbers({1: 1, 2: 2, 3: 3}))
    run(smaller)
    view = StoreView(store)
    assert [n.label for n in view.nodes()] == ["numbers", "scale"]
    assert [n.label for n in view.nodes(removed=True)] == ["numbers", "scale", "shift"]
    assert view.pipelines()[0].nodes == ("numbers", "scale")
    assert view.node_rows("shift").to_pylist() == [{"k": 1, "z": 11}, {"k": 2, "z": 21}]
    run(build(DeltaTableDatabase(store)))  # back in the pipeline
    assert [n.label for n in StoreView(store).nodes()] == ["numbers", "scale", "shift"]
