"""Streaming (ASYNC_CHANNELS) runs give the same rows, stored records and run summary as
synchronous runs: random pipelines compared in both modes, first and incremental runs."""

from __future__ import annotations

import threading
import warnings
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orcapod import Pipeline, function_pod
from orcapod.databases import InMemoryArrowDatabase
from orcapod.errors import ExecutionError, FailedRowsWarning
from orcapod.nodes import function_stream
from orcapod.nodes.summary import NodeType
from orcapod.operators import Batch, Join, PolarsFilter, SelectPacketColumns, SemiJoin
from orcapod.sources import DictSource
from orcapod.types import ColumnConfig, ErrorPolicy, ExecutorType, PipelineConfig


@function_pod("y")
def step(x: int) -> int | None:
    if x % 7 == 3:
        raise ValueError("a failing row")
    if x % 5 == 4:
        return None  # a filtered row
    return x * 2 + 1


@function_pod("z")
def after(y: int | None, w: int) -> int:
    total = (y or 0) + w
    if total % 11 == 6:
        raise ValueError("another failing row")
    return total


@function_pod("v")
def last(z: int) -> int | None:
    return None if z % 3 == 0 else z - 1


@function_pod("n")
def count(y: list[int | None]) -> int:
    return len(y)


def sources(n: int, m: int, dup: int) -> tuple[DictSource, DictSource]:
    left = DictSource(
        [{"id": i, "x": i % dup if dup else i} for i in range(n)],
        tag_columns=["id"],
        source_id="left",
        record_id_column="id",
    )
    right = DictSource(
        [{"id": i, "w": i * 3} for i in range(0, m * 2, 2)],
        tag_columns=["id"],
        source_id="right",
        record_id_column="id",
    )
    return left, right


def build(db: Any, plan: dict[str, Any], n: int, m: int) -> Pipeline:
    left, right = sources(n, m, plan["dup"])
    pipeline = Pipeline("p", db, error_policy=ErrorPolicy.CONTINUE)
    with pipeline:
        ys = step.pod(left)
        if plan["filter"]:
            ys = PolarsFilter(pl.col("y") > 3)(ys)
        if plan["tail"] == "batch":
            count.pod(Batch(plan["batch"])(SelectPacketColumns(["y"])(ys)))
            return pipeline
        combined = SemiJoin()(ys, right) if plan["semi"] else ys
        zs = after.pod(Join()(combined, right))
        if plan["tail"] == "last":
            last.pod(zs)
    return pipeline


def observed(pipeline: Pipeline, db: Any) -> dict[str, Any]:
    rows = {}
    for label, node in pipeline.nodes.items():
        table = node.as_table(ColumnConfig(system_tags=True, source=True))
        rows[label] = sorted(map(repr, table.to_pylist()))
        if node.node_type is NodeType.FUNCTION:
            stored = db.at("p").get_all_records(node.record_path)
            # when a row was recorded differs between two runs; everything else must agree
            records = [] if stored is None else stored.drop_columns(["__recorded_at"]).to_pylist()
            rows[label + ":records"] = sorted(map(repr, records))
            failures = node.failures().drop_columns(["__failed_at", "__traceback"])
            rows[label + ":failures"] = sorted(map(repr, failures.to_pylist()))
            stored_results = node.result_cache.get_all_records()
            rows[label + ":results"] = (
                []
                if stored_results is None
                else sorted(
                    repr({k: v for k, v in row.items() if not k.endswith("__pod_ts")})
                    for row in stored_results.to_pylist()
                )
            )
    return rows


def run(pipeline: Pipeline, mode: ExecutorType, buffer: int) -> dict[str, tuple[int, ...]]:
    config = PipelineConfig(executor=mode, channel_buffer_size=buffer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FailedRowsWarning)
        summary = pipeline.run(config=config)
    return {label: (s.computed, s.reused, s.filtered, s.failed) for label, s in summary.items()}


plans = st.fixed_dictionaries(
    {
        "dup": st.sampled_from([0, 0, 4]),
        "filter": st.booleans(),
        "semi": st.booleans(),
        "tail": st.sampled_from(["join", "last", "batch"]),
        "batch": st.integers(1, 4),
    }
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=plans,
    n=st.integers(1, 14),
    m=st.integers(1, 8),
    grow=st.integers(0, 6),
    buffer=st.sampled_from([1, 2, 5, 64]),
    threads=st.booleans(),
)
def test_sync_and_streaming_runs_agree(
    plan: dict[str, Any], n: int, m: int, grow: int, buffer: int, threads: bool
) -> None:
    found = []
    for mode in (ExecutorType.SYNCHRONOUS, ExecutorType.ASYNC_CHANNELS):
        db = InMemoryArrowDatabase()
        with pytest.MonkeyPatch.context() as patch:
            if threads:  # every call counts as slow: after the first, look-ups and commits
                # of a streaming node run in threads of their own (the way of slow functions)
                patch.setattr(function_stream, "SLOW_CALL_SECONDS", 0.0)
                patch.setattr(function_stream, "TIMED_SECONDS", 0.0)
            first = build(db, plan, n, m)
            summaries = [run(first, mode, buffer)]
            states = [observed(first, db)]
            second = build(db, plan, n + grow, m + grow // 2)  # more rows: an incremental run
            summaries.append(run(second, mode, buffer))
            states.append(observed(second, db))
        found.append((summaries, states))
    (sync_summaries, sync_states), (stream_summaries, stream_states) = found
    assert stream_summaries == sync_summaries
    assert stream_states == sync_states


def test_a_chunk_that_needs_no_commit_is_passed_on_in_a_threaded_stream() -> None:
    """An incremental streaming run whose first chunk of a node was stored and recorded by
    the run before (nothing to commit) passes it on at once: a later chunk holding the same
    input packets waits for it (duplicate rows, one per batch), and used to wait forever, as
    only a commit passed rows on. Run in a thread, so that a hang fails the test."""
    plan = {"dup": 4, "filter": False, "semi": False, "tail": "batch", "batch": 1}
    found: dict[ExecutorType, list[Any]] = {}

    def both_runs(mode: ExecutorType) -> None:
        db = InMemoryArrowDatabase()
        summaries = [run(build(db, plan, 1, 5), mode, 2)]
        second = build(db, plan, 6, 7)
        summaries.append(run(second, mode, 2))
        found[mode] = [summaries, observed(second, db)]

    with pytest.MonkeyPatch.context() as patch:  # calls count as slow: threads at once
        patch.setattr(function_stream, "SLOW_CALL_SECONDS", 0.0)
        patch.setattr(function_stream, "TIMED_SECONDS", 0.0)
        for mode in (ExecutorType.SYNCHRONOUS, ExecutorType.ASYNC_CHANNELS):
            runner = threading.Thread(target=both_runs, args=(mode,), daemon=True)
            runner.start()
            runner.join(60)
            assert not runner.is_alive(), f"the {mode.name} runs did not finish"
    assert found[ExecutorType.ASYNC_CHANNELS] == found[ExecutorType.SYNCHRONOUS]
    assert found[ExecutorType.SYNCHRONOUS][0][1]["count"] == (3, 2, 0, 0)


def test_fail_fast_in_a_stream_keeps_finished_rows_and_the_next_run_resumes() -> None:
    @function_pod("y")
    def fragile(x: int) -> int:
        if x == 30:
            raise ValueError("row 30 is bad")
        return x

    @function_pod("z")
    def then(y: int) -> int:
        return y + 1

    db = InMemoryArrowDatabase()
    src = DictSource([{"id": i, "x": i} for i in range(60)], tag_columns=["id"])

    def build(policy: ErrorPolicy) -> Pipeline:
        pipeline = Pipeline("p", db, error_policy=policy)
        with pipeline:
            then.pod(fragile.pod(src))
        return pipeline

    config = PipelineConfig(executor=ExecutorType.ASYNC_CHANNELS, channel_buffer_size=4)
    pipeline = build(ErrorPolicy.FAIL_FAST)
    with pytest.raises(ExecutionError, match="row 30 is bad"):
        pipeline.run(config=config)
    kept = pipeline.fragile.as_table().num_rows
    assert kept >= 1 and kept < 60
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FailedRowsWarning)
        summary = build(ErrorPolicy.CONTINUE).run(config=config)
    assert summary["fragile"].reused == kept
    assert summary["fragile"].computed + summary["fragile"].reused == 59
    assert summary["then"].computed + summary["then"].reused == 59


def test_streaming_works_inside_a_running_event_loop() -> None:
    import asyncio

    db = InMemoryArrowDatabase()
    left, right = sources(6, 3, 0)
    pipeline = Pipeline("p", db)
    with pipeline:
        after.pod(Join()(step.pod(left), right))

    async def notebook_cell() -> Any:
        return pipeline.run(config=PipelineConfig(executor=ExecutorType.ASYNC_CHANNELS))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FailedRowsWarning)
        summary = asyncio.run(notebook_cell())
    assert summary["after"].total == pipeline.Join.as_table().num_rows
    assert isinstance(pipeline.after.as_table(), pa.Table)


_KILL_SCRIPT = """
import json, sys, time
from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.sources import DictSource
from orcapod.types import ExecutorType, PipelineConfig

LOG = {log!r}

@function_pod("y")
def slow_double(x: int) -> int:
    with open(LOG, "a") as f:
        f.write(f"{{x}}\\n")
    time.sleep(0.05)
    return 2 * x

@function_pod("z")
def plus_one(y: int) -> int:
    return y + 1

n = int(sys.argv[1])
src = DictSource([{{"id": i, "x": i}} for i in range(n)], tag_columns=["id"],
                 source_id="src", record_id_column="id")
pipeline = Pipeline("p", DeltaTableDatabase({store!r}))
with pipeline:
    plus_one.pod(slow_double.pod(src))
config = PipelineConfig(executor=ExecutorType.ASYNC_CHANNELS, channel_buffer_size=8)
summary = pipeline.run(config=config)
records = pipeline.plus_one.get_all_records()
print(json.dumps({{"f": [summary["slow_double"].computed, summary["slow_double"].reused],
                  "g": [summary["plus_one"].computed, summary["plus_one"].reused],
                  "rows": len(pipeline.plus_one.as_table()),
                  "joined": 0 if records is None else records.num_rows}}))
"""


@pytest.mark.slow
def test_a_killed_streaming_run_resumes_like_a_synchronous_one(tmp_path: Any) -> None:
    import json
    import subprocess
    import sys
    import time

    log = tmp_path / "calls.log"
    log.touch()
    script = tmp_path / "stream.py"
    script.write_text(_KILL_SCRIPT.format(log=str(log), store=str(tmp_path / "store")))
    proc = subprocess.Popen([sys.executable, str(script), "80"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(log.read_text().split()) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    started = len(log.read_text().split())
    assert started < 80
    done = subprocess.run(
        [sys.executable, str(script), "80"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    computed, reused = result["f"]
    # what finished well before the kill was committed, and is neither lost nor duplicated
    assert reused >= started - 10
    assert computed + reused == 80
    assert len(log.read_text().split()) == started + computed
    # the downstream node resumes too: every row once, every record with its result
    assert sum(result["g"]) == 80
    assert result["rows"] == result["joined"] == 80


def test_cancelling_a_streaming_run_stops_every_node_and_keeps_finished_rows() -> None:
    import asyncio
    import time

    from orcapod.nodes import FunctionNode, SourceNode
    from orcapod.pipeline import AsyncOrchestrator

    @function_pod("y")
    def slow(x: int) -> int:
        time.sleep(0.01)
        return x

    @function_pod("z")
    def then(y: int) -> int:
        return y + 1

    db = InMemoryArrowDatabase()
    source = SourceNode(DictSource([{"id": i, "x": i} for i in range(300)], tag_columns=["id"]))
    first = FunctionNode(slow.pod, source, db)
    second = FunctionNode(then.pod, first, db)

    async def main() -> None:
        run = asyncio.create_task(
            AsyncOrchestrator().run_async(
                [source, first, second],
                pipeline_name="p",
                config=PipelineConfig(channel_buffer_size=4),
            )
        )
        await asyncio.sleep(0.5)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(run, 30)

    asyncio.run(main())
    first.flush()
    kept = first.as_table().num_rows
    assert 0 < kept < 300
    assert first.run().reused == kept  # finished rows stay stored; the rest is computed now
