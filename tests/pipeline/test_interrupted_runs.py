"""Runs that stop early: the run history and catalog say how they ended and what they kept.

A run stopped by Ctrl-C (``KeyboardInterrupt``), by ``sys.exit`` in a function or by
``fail_fast`` records ``interrupted`` / ``error`` with the counts of the rows it stored; a run
whose process was killed is shown ``interrupted`` once that process is gone
(``orcapod.pipeline.run_liveness``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from orcapod.databases import DeltaTableDatabase
from orcapod.errors import ExecutionError
from orcapod.functions import function_pod
from orcapod.functions.engine.holders import this_process
from orcapod.pipeline import Pipeline, StoreView
from orcapod.pipeline.run_liveness import live_status
from orcapod.pipeline.store_layout import CATALOG_PATH, RUNS_PATH
from orcapod.sources import DictSource
from orcapod.types import ExecutorType, PipelineConfig

STOP_AT = 7


@function_pod("y")
def interrupted_at_seven(x: int) -> int:
    if x == STOP_AT:
        raise KeyboardInterrupt
    return x * x


@function_pod("y")
def exits_at_seven(x: int) -> int:
    if x == STOP_AT:
        sys.exit(f"bad row {x}")
    return x * x


@function_pod("y")
def fails_at_seven(x: int) -> int:
    if x == STOP_AT:
        raise ZeroDivisionError("seven is not allowed")
    return x * x


@function_pod("z")
def plus_one(y: int) -> int:
    return y + 1


def build(store: Path, function, rows: int = 20, **options) -> Pipeline:
    pipeline = Pipeline("stops", DeltaTableDatabase(store), **options)
    data = [{"item": f"i{x:02d}", "x": x} for x in range(rows)]
    with pipeline:
        first = function.pod(
            DictSource(data, tag_columns=["item"], source_id="a", record_id_column="item"),
            label="first",
        )
        plus_one.pod(first, label="second")
    return pipeline


def stored_rows(store: Path, label: str) -> int:
    return StoreView(store).node_rows(label).num_rows


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


def test_ctrl_c_in_a_function_records_an_interrupted_run_with_what_it_stored(store):
    pipeline = build(store, interrupted_at_seven)
    with pytest.raises(KeyboardInterrupt):  # never swallowed
        pipeline.run(progress=False)
    (run,) = StoreView(store).runs()
    assert run.status == "interrupted" and run.error == "KeyboardInterrupt"
    assert stored_rows(store, "first") == STOP_AT  # the rows before the interrupt are kept
    assert (run.computed, run.failed) == (STOP_AT, 0)
    assert run.nodes["first"]["status"] == "interrupted"
    assert run.nodes["first"]["computed"] == STOP_AT
    assert run.nodes["second"]["status"] == "not run"
    nodes = {n.label: n for n in StoreView(store).nodes()}
    assert nodes["first"].status == "interrupted" and nodes["first"].computed == STOP_AT
    assert nodes["second"].status == "not run"


@function_pod("y")
def interrupted_when_asked(x: int) -> int:
    if x == STOP_AT and os.environ.get("ORCAPOD_TEST_INTERRUPT") == "1":
        raise KeyboardInterrupt
    return x * x


def test_a_run_after_an_interrupt_computes_only_the_rest(store, monkeypatch):
    monkeypatch.setenv("ORCAPOD_TEST_INTERRUPT", "1")
    with pytest.raises(KeyboardInterrupt):
        build(store, interrupted_when_asked).run(progress=False)
    monkeypatch.delenv("ORCAPOD_TEST_INTERRUPT")
    summary = build(store, interrupted_when_asked).run(progress=False)
    assert (summary["first"].computed, summary["first"].reused) == (20 - STOP_AT, STOP_AT)
    assert [r.status for r in StoreView(store).runs()] == ["ok", "interrupted"]


def test_sys_exit_in_a_function_stops_the_run_and_records_an_error(store):
    pipeline = build(store, exits_at_seven)
    with pytest.raises(SystemExit, match="bad row 7"):  # propagates unchanged
        pipeline.run(progress=False)
    (run,) = StoreView(store).runs()
    assert run.status == "error" and run.error == "SystemExit: bad row 7"
    assert (run.computed, run.failed) == (STOP_AT, 0) == (stored_rows(store, "first"), 0)
    assert run.nodes["first"]["status"] == "error"


def test_fail_fast_records_the_rows_computed_and_failed_before_it_stopped(store):
    pipeline = build(store, fails_at_seven, error_policy="fail_fast")
    with pytest.raises(ExecutionError, match="i07"):
        pipeline.run(progress=False)
    (run,) = StoreView(store).runs()
    assert run.status == "error" and "seven is not allowed" in (run.error or "")
    assert (run.computed, run.failed) == (STOP_AT, 1)
    assert stored_rows(store, "first") == STOP_AT
    catalog = {n.label: n for n in StoreView(store).nodes()}
    assert (catalog["first"].computed, catalog["first"].failed) == (STOP_AT, 1)
    assert catalog["first"].status == "error"


def test_fail_fast_in_a_later_chunk_counts_the_earlier_chunks(store):
    pipeline = build(store, fails_at_seven, rows=12, error_policy="fail_fast")
    pipeline.first.chunk_rows = 3  # chunks 0-2, 3-5, 6-8 (fails at 7), 9-11
    with pytest.raises(ExecutionError):
        pipeline.run(progress=False)
    (run,) = StoreView(store).runs()
    assert (run.computed, run.failed) == (STOP_AT, 1) == (stored_rows(store, "first"), 1)


def test_ctrl_c_in_a_streaming_run_records_an_interrupted_run(store):
    pipeline = build(store, interrupted_at_seven)
    config = PipelineConfig(executor=ExecutorType.ASYNC_CHANNELS)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(progress=False, config=config)
    (run,) = StoreView(store).runs()
    assert run.status == "interrupted"
    assert run.nodes["first"]["status"] == "interrupted"
    assert run.nodes["first"]["computed"] == stored_rows(store, "first") == STOP_AT


def test_fail_fast_in_a_streaming_run_records_what_it_stored(store):
    pipeline = build(store, fails_at_seven, error_policy="fail_fast")
    config = PipelineConfig(executor=ExecutorType.ASYNC_CHANNELS)
    with pytest.raises(ExecutionError):
        pipeline.run(progress=False, config=config)
    (run,) = StoreView(store).runs()
    assert run.status == "error"
    assert (run.nodes["first"]["computed"], run.nodes["first"]["failed"]) == (STOP_AT, 1)
    assert stored_rows(store, "first") == STOP_AT


# -- runs whose process is gone --------------------------------------------------------------


def test_a_running_row_of_a_live_or_uncheckable_process_stays_running():
    assert live_status("running", this_process()) == "running"  # this very process
    assert live_status("running", "another-machine:ns/123/456") == "running"
    assert live_status("running", "") == "running"  # a platform without /proc
    assert live_status("running", None) == "running"  # a store written before ``process``
    assert live_status("ok", this_process()) == "ok"


def test_a_running_row_of_a_process_that_ended_is_interrupted():
    code = "from orcapod.functions.engine.holders import this_process; print(this_process())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    process = done.stdout.strip()
    if not process:
        pytest.skip("this platform cannot tell a process by its /proc entry")
    assert live_status("running", process) == "interrupted"
    assert live_status("failed", process) == "failed"  # an ended run keeps its outcome


CHILD = """
import os, sys
from orcapod.databases import DeltaTableDatabase
from orcapod.functions import function_pod
from orcapod.pipeline import Pipeline
from orcapod.sources import DictSource

ready = int(sys.argv[1])

@function_pod("y")
def waits_at_three(x: int) -> int:
    if x == 3:
        os.write(ready, b"waiting\\n")  # tell the test, then wait to be signalled
        sys.stdin.readline()
    return x * x

pipeline = Pipeline("child", DeltaTableDatabase({store!r}))
rows = [{{"item": f"i{{x}}", "x": x}} for x in range(6)]
with pipeline:
    waits_at_three.pod(DictSource(rows, tag_columns=["item"], source_id="a",
                                  record_id_column="item"))
pipeline.run(progress=False)
"""


def run_child_until_it_waits(store: Path) -> subprocess.Popen[bytes]:
    """A process running a pipeline, stopped inside the function at its fourth row."""
    read, write = os.pipe()
    script = textwrap.dedent(CHILD.format(store=str(store)))
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(write)],
        stdin=subprocess.PIPE,
        pass_fds=(write,),
    )
    os.close(write)
    with os.fdopen(read, "rb") as ready:
        assert ready.readline() == b"waiting\n"
    return child


@pytest.mark.slow
def test_a_killed_run_is_shown_interrupted_once_its_process_is_gone(store):
    child = run_child_until_it_waits(store)
    db = DeltaTableDatabase(store)
    (row,) = db.get_all_records(RUNS_PATH).to_pylist()  # the run is going on
    assert row["status"] == "running" and row["pid"] == child.pid
    assert live_status(row["status"], row["process"]) == "running"
    child.kill()  # SIGKILL: no outcome row is written
    child.wait()
    assert child.stdin is not None
    child.stdin.close()
    db = DeltaTableDatabase(store)
    (row,) = db.get_all_records(RUNS_PATH).to_pylist()
    assert row["status"] == "running"  # what the store holds ...
    if not row["process"]:
        pytest.skip("this platform cannot tell a process by its /proc entry")
    assert live_status(row["status"], row["process"]) == "interrupted"  # ... what is shown
    for node in db.get_all_records(CATALOG_PATH).to_pylist():
        assert live_status(node["status"], node["process"]) == "interrupted"


@pytest.mark.slow
def test_ctrl_c_on_a_running_process_records_an_interrupted_run(store):
    child = run_child_until_it_waits(store)
    child.send_signal(signal.SIGINT)  # Ctrl-C
    child.wait()
    assert child.stdin is not None
    child.stdin.close()
    assert child.returncode != 0
    (run,) = StoreView(store).runs()
    assert run.status == "interrupted"
    assert run.computed == 3 == stored_rows(store, "waits_at_three")


CALLS: list[int] = []


@function_pod("y")
def slow_square(x: int) -> int:
    CALLS.append(x)
    if len(CALLS) == 10:  # Ctrl-C while the node has every row read and its calls go on
        os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.01)
    return x * x


def test_ctrl_c_stops_a_streaming_node_before_its_next_call(store):
    CALLS.clear()
    pipeline = Pipeline("stops", DeltaTableDatabase(store))
    data = [{"item": f"i{x:03d}", "x": x} for x in range(300)]
    with pipeline:
        slow_square.pod(
            DictSource(data, tag_columns=["item"], source_id="a", record_id_column="item"),
            label="first",
        )
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(progress=False, config=PipelineConfig(executor=ExecutorType.ASYNC_CHANNELS))
    # the calls under way when Ctrl-C came end (and are kept); no other call starts
    assert len(CALLS) < 20
    (run,) = StoreView(store).runs()
    assert run.status == "interrupted"
    assert run.nodes["first"]["computed"] == stored_rows(store, "first") == len(CALLS)
