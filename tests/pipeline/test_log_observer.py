"""LoggingObserver: one log row per executed packet, captured where the call ran."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow as pa
import pytest

from orcapod.databases import DeltaTableDatabase
from orcapod.errors import FailedRowsWarning
from orcapod.executors import LocalExecutor, RayExecutor
from orcapod.functions import FunctionPod, PythonPacketFunction, function_pod
from orcapod.functions.engine.events import PacketBatch, PacketOutcome, PacketRun, observing
from orcapod.nodes import FunctionNode
from orcapod.pipeline import LoggingObserver, Pipeline, StoreView
from orcapod.pipeline.log_observer import log_table
from orcapod.sources import DictSource
from orcapod.types import ExecutorType, FlushPolicy, PipelineConfig

log = logging.getLogger("orcapod.tests.logs")


def chatty(x: int) -> int:
    print(f"stdout {x}")
    log.warning("warned %d", x)
    if x == 2:
        raise RuntimeError("two fails")
    return x + 100


async def async_chatty(x: int) -> int:
    await asyncio.sleep(0)
    return chatty(x)


def source() -> DictSource:
    return DictSource([{"k": i, "x": i} for i in range(4)], tag_columns=["k"], source_id="s")


def pipeline_with(store: Path, fn, executor=None) -> Pipeline:
    pipeline = Pipeline("logs", DeltaTableDatabase(store))
    pod = function_pod("y", function_name="chatty", executor=executor)(fn).pod
    with pipeline:
        pod(source())
    return pipeline


def run(pipeline: Pipeline, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FailedRowsWarning)
        return pipeline.run(**options)


def by_tag(store: Path) -> dict[int, dict]:
    return {row["k"]: row for row in StoreView(store).logs("chatty").to_pylist()}


@pytest.mark.parametrize("fn", [chatty, async_chatty], ids=["sync", "async"])
def test_each_executed_packet_has_a_log_row_with_its_output(tmp_path, fn):
    store = tmp_path / "store"
    run(pipeline_with(store, fn))
    rows = by_tag(store)
    assert sorted(rows) == [0, 1, 2, 3]
    assert rows[1]["__stdout"] == "stdout 1\n" and rows[1]["__stderr"] is None
    assert rows[1]["__python_logs"] == "WARNING:orcapod.tests.logs:warned 1"
    assert rows[1]["__success"] and rows[1]["__traceback"] is None and rows[1]["__duration"] >= 0
    assert not rows[2]["__success"] and "RuntimeError: two fails" in rows[2]["__traceback"]
    assert rows[2]["__outcome"] == "failed" and rows[2]["__node_label"] == "chatty"
    assert {r["__run_id"] for r in rows.values()} == {StoreView(store).runs()[0].run_id}


def test_reused_rows_get_no_new_log_rows_and_retried_rows_do(tmp_path):
    store = tmp_path / "store"
    pipeline = pipeline_with(store, chatty)
    run(pipeline)
    run(pipeline)
    logs = StoreView(store).logs("chatty")
    assert logs.num_rows == 5  # 4 calls, then only the failed row again
    assert sorted(logs.column("k").to_pylist()) == [0, 1, 2, 2, 3]


def test_a_tagless_input_logs_each_call_under_its_input_hash(tmp_path):
    store = tmp_path / "store"
    pipeline = Pipeline("logs", DeltaTableDatabase(store))
    with pipeline:
        function_pod("y", function_name="chatty")(chatty).pod(
            DictSource([{"x": i} for i in (0, 1, 3)], source_id="s")  # no tag columns
        )
    summary = run(pipeline, progress=False)
    assert summary.ok and summary.computed == 3
    logs = StoreView(store).logs("chatty")
    assert logs.num_rows == 3 and logs.column_names[0] == "__input_packet_hash"
    assert sorted(logs.column("__stdout").to_pylist()) == ["stdout 0\n", "stdout 1\n", "stdout 3\n"]
    assert [r.status for r in StoreView(store).runs()] == ["ok"]


def test_logs_false_stores_no_logs_and_output_passes_through(tmp_path, capsys):
    store = tmp_path / "store"
    run(pipeline_with(store, chatty), logs=False)
    assert StoreView(store).logs("chatty").num_rows == 0
    assert "stdout 1" in capsys.readouterr().out


def test_threads_and_the_async_orchestrator_keep_each_calls_output_apart(tmp_path):
    store = tmp_path / "store"
    pipeline = pipeline_with(store, chatty, executor=LocalExecutor(max_workers=4))
    run(pipeline, config=PipelineConfig(executor=ExecutorType.ASYNC_CHANNELS))
    rows = by_tag(store)
    assert all(rows[k]["__stdout"] == f"stdout {k}\n" for k in rows)


def test_a_node_run_outside_a_pipeline_logs_to_the_given_database(tmp_path):
    db = DeltaTableDatabase(tmp_path / "store")
    node = FunctionNode(FunctionPod(PythonPacketFunction(chatty, "y")), source(), db)
    observer = LoggingObserver(db)
    with observing(observer), pytest.warns(FailedRowsWarning):
        node.run()
    stored = db.get_all_records(("_logs", *node.record_path))
    assert stored is not None and stored.num_rows == 4
    assert len(set(stored.column("__run_id").to_pylist())) == 1


@pytest.mark.ray
@pytest.mark.parametrize("fn", [chatty, async_chatty], ids=["sync", "async"])
def test_ray_calls_are_captured_in_the_worker(ray_session: ModuleType, tmp_path, fn):
    store = tmp_path / "store"
    run(pipeline_with(store, fn, executor=RayExecutor()))
    rows = by_tag(store)
    assert sorted(rows) == [0, 1, 2, 3]
    assert rows[3]["__stdout"] == "stdout 3\n"
    assert rows[3]["__python_logs"] == "WARNING:orcapod.tests.logs:warned 3"
    assert rows[3]["__executor_type"] == "ray" and rows[3]["__host"]
    assert not rows[2]["__success"] and "two fails" in rows[2]["__traceback"]


def test_a_call_reported_twice_keeps_its_last_report_and_silent_calls_store_nulls():
    computed, failed = PacketOutcome.COMPUTED, PacketOutcome.FAILED
    hashes = pa.array(["h0", "h1"], pa.large_string())

    def describe(keys) -> pa.Table:
        taken = pa.array(np.asarray(keys, dtype=np.int64))
        return pa.table({"k": taken, "__input_packet_hash": hashes.take(taken)})

    run_info = PacketRun("node", "hash", ("path",), 2, "local", describe)
    first = PacketBatch(
        keys=[0, 1],
        outcomes=[computed, computed],
        rows=[1, 1],
        started=[1.7e9, 1.7e9],
        durations=[0.5, 0.25],
        errors=[None, None],
        stdout=[None, "said 1\n"],
        stderr=[None, None],
        python_logs=[None, None],
        tracebacks=[None, None],
        hosts=[None, None],
    )
    # the output of call 0 could not be stored: reported again, as failed
    unstorable = ValueError("cannot store")
    second = PacketBatch(
        keys=[0],
        outcomes=[failed],
        rows=[1],
        started=[1.7e9],
        durations=[0.0],
        errors=[unstorable],
        stdout=[None],
        stderr=[None],
        python_logs=[None],
        tracebacks=[None],
        hosts=[None],
    )
    rows = {r["k"]: r for r in log_table(run_info, [first, second], "run").to_pylist()}
    assert sorted(rows) == [0, 1]
    assert rows[0]["__outcome"] == "failed" and not rows[0]["__success"]
    assert "ValueError: cannot store" in rows[0]["__traceback"]
    assert rows[1]["__success"] and rows[1]["__stdout"] == "said 1\n"
    assert rows[1]["__stderr"] is None and rows[1]["__traceback"] is None
    assert rows[1]["__log_id"] == "run:1" and rows[1]["__input_packet_hash"] == "h1"
    assert rows[1]["__host"]  # this host when the call was captured here


def _silent_batch(keys: list[int]) -> PacketBatch:
    n = len(keys)
    return PacketBatch(
        keys=keys,
        outcomes=[PacketOutcome.COMPUTED] * n,
        rows=[1] * n,
        started=[1.7e9] * n,
        durations=[0.1] * n,
        errors=[None] * n,
        stdout=[None] * n,
        stderr=[None] * n,
        python_logs=[None] * n,
        tracebacks=[None] * n,
        hosts=[None] * n,
    )


def test_silent_batches_store_nulls_and_a_noisy_batch_keeps_its_rows_output():
    hashes = pa.array([f"h{i}" for i in range(4)], pa.large_string())

    def describe(keys) -> pa.Table:
        taken = pa.array(np.asarray(keys, dtype=np.int64))
        return pa.table({"k": taken, "__input_packet_hash": hashes.take(taken)})

    run_info = PacketRun("node", "hash", ("path",), 4, "local", describe)
    silent = log_table(run_info, [_silent_batch([0, 1])], "run").to_pylist()
    assert [r["__stdout"] for r in silent] == [None, None]
    assert all(r["__success"] and r["__outcome"] == "computed" and r["__host"] for r in silent)
    noisy = _silent_batch([2, 3])
    noisy.stderr[1] = "warned 3\n"
    noisy.hosts[1] = "worker-7"
    rows = log_table(run_info, [_silent_batch([0, 1]), noisy], "run").to_pylist()
    assert [r["k"] for r in rows] == [0, 1, 2, 3]
    assert [r["__stderr"] for r in rows] == [None, None, None, "warned 3\n"]
    assert [r["__host"] == "worker-7" for r in rows] == [False, False, False, True]
    assert all(r["__stdout"] is None and r["__traceback"] is None for r in rows)


def test_values_repeated_on_every_row_keep_their_text_and_quiet_batches_store_nulls():
    hashes = pa.array([f"h{i}" for i in range(3)], pa.large_string())

    def describe(keys) -> pa.Table:
        taken = pa.array(np.asarray(keys, dtype=np.int64))
        return pa.table({"k": taken, "__input_packet_hash": hashes.take(taken)})

    run_info = PacketRun("nœud ✓", "", ("path",), 3, "", describe)
    quiet = _silent_batch([0, 1, 2])
    quiet.quiet = True
    table = log_table(run_info, [quiet], "rün", "tok.")
    table.validate(full=True)
    rows = table.to_pylist()
    assert [r["__node_label"] for r in rows] == ["nœud ✓"] * 3
    assert [r["__node_hash"] for r in rows] == [""] * 3
    assert [r["__executor_type"] for r in rows] == [""] * 3
    assert [r["__run_id"] for r in rows] == ["rün"] * 3
    assert [r["__log_id"] for r in rows] == ["tok.0", "tok.1", "tok.2"]
    assert all(r["__stdout"] is None and r["__traceback"] is None for r in rows)
    assert table.schema.field("__stdout").type == pa.string()  # the stored string type


KILLED_WORKER = """
import os, signal, sys, time
from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.sources import DictSource
from orcapod.types import FlushPolicy

@function_pod("y")
def noisy(x: int) -> int:
    if x == 35:
        os.kill(os.getpid(), signal.SIGKILL)  # killed mid-run: no end of anything runs
    print(f"called {x}")
    time.sleep(0.02)  # (results are handed on in bulk every 50 ms)
    return x + 1

source = DictSource([{"k": i, "x": i} for i in range(50)], tag_columns=["k"], source_id="s")
pipeline = Pipeline("p", DeltaTableDatabase(sys.argv[1]))
with pipeline:
    noisy.pod(source)
pipeline.noisy.flush_policy = FlushPolicy(rows=10)
pipeline.run(progress=False)
"""


def test_a_killed_run_keeps_the_logs_of_every_result_it_committed(tmp_path):
    """Logs are committed with the results: the next run reuses those results and never
    calls them again, so logs left for the end of the run would be lost for good."""
    script = tmp_path / "worker.py"
    script.write_text(KILLED_WORKER)
    child = subprocess.run([sys.executable, str(script), str(tmp_path / "store")], check=False)
    assert child.returncode == -signal.SIGKILL
    view = StoreView(tmp_path / "store")
    stored = view.node_rows("noisy")
    logs = view.logs("noisy")
    assert stored.num_rows >= 10  # committed before the kill
    logged = set(logs.column("k").to_pylist()) if logs.num_rows else set()
    assert set(stored.column("k").to_pylist()) <= logged
    assert {r["__stdout"] for r in logs.to_pylist() if r["k"] == 3} == {"called 3\n"}


def delta_commits(table_dir: Path) -> int:
    return len(list((table_dir / "_delta_log").glob("*.json")))


def increment(x: int) -> int:
    return x + 1


def slow_increment(x: int) -> int:
    time.sleep(0.02)  # results are handed on in bulk every 50 ms: a few rows at a time
    return x + 1


def test_logs_commit_with_each_results_commit_and_a_short_run_once(tmp_path):
    def run_on(store: Path, fn, policy: FlushPolicy | None) -> tuple[int, int]:
        pipeline = Pipeline("logs", DeltaTableDatabase(store))
        rows = [{"k": i, "x": i} for i in range(30)]
        with pipeline:
            function_pod("y", function_name="f")(fn).pod(
                DictSource(rows, tag_columns=["k"], source_id="s")
            )
        if policy is not None:
            pipeline.f.flush_policy = policy
        pipeline.run(progress=False)
        assert StoreView(store).logs("f").num_rows == 30
        (logs_dir,) = {p.parent for p in (store / "logs" / "_logs").glob("**/_delta_log")}
        (results_dir,) = {p.parent for p in (store / "_result" / "f").glob("**/_delta_log")}
        return delta_commits(logs_dir), delta_commits(results_dir)

    # results committed every 10 rows: the logs of the calls ended by then go with each
    assert run_on(tmp_path / "long", slow_increment, FlushPolicy(rows=10)) == (3, 3)
    # a run shorter than the policy's seconds commits once, at its end: its logs too
    assert run_on(tmp_path / "short", increment, None) == (1, 1)


def test_batches_joined_into_one_results_commit_make_one_logs_commit(tmp_path):
    """Two hand-overs whose results a writer commits together (both hooks handed out before
    either runs) commit their logs once, when the last hook runs; every row is stored."""
    hashes = pa.array([f"h{i}" for i in range(4)], pa.large_string())

    def describe(keys) -> pa.Table:
        taken = pa.array(np.asarray(keys, dtype=np.int64))
        return pa.table({"k": taken, "__input_packet_hash": hashes.take(taken)})

    store = tmp_path / "store"
    observer = LoggingObserver(DeltaTableDatabase(store))
    run_info = PacketRun("node", "hash", ("node", "code"), 4, "local", describe)
    observer.on_packets_start(run_info)
    observer.on_packets_end(run_info, _silent_batch([0, 1]))
    first = observer.on_packets_commit(run_info)
    observer.on_packets_end(run_info, _silent_batch([2, 3]))
    second = observer.on_packets_commit(run_info)
    assert first is not None and second is not None
    first()
    second()
    observer.on_packets_done(run_info)
    (logs_dir,) = {p.parent for p in (store / "_logs").glob("**/_delta_log")}
    assert delta_commits(logs_dir) == 1
    stored = DeltaTableDatabase(store).at("_logs").get_all_records(("node", "code"))
    assert stored is not None and sorted(stored.column("k").to_pylist()) == [0, 1, 2, 3]
