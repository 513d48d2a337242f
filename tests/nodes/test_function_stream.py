"""Streaming runs of function nodes: bounded edges, backpressure, one window of calls."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from orcapod import function_pod
from orcapod.databases import InMemoryArrowDatabase
from orcapod.errors import FailedRowsWarning
from orcapod.executors import LocalExecutor
from orcapod.nodes import FunctionNode, SourceNode, function_stream
from orcapod.pipeline import AsyncOrchestrator
from orcapod.sources import DictSource
from orcapod.types import FlushPolicy, NodeConfig, PipelineConfig


def _source(n: int) -> SourceNode:
    return SourceNode(DictSource([{"id": i, "x": i} for i in range(n)], tag_columns=["id"]))


def _run(nodes: list[Any], buffer: int, **kwargs: Any) -> AsyncOrchestrator:
    orchestrator = AsyncOrchestrator()
    orchestrator.run(
        nodes, pipeline_name="p", config=PipelineConfig(channel_buffer_size=buffer), **kwargs
    )
    return orchestrator


def test_rows_in_flight_on_every_edge_never_exceed_the_buffer() -> None:
    @function_pod("y")
    def first(x: int) -> int:
        return x + 1

    @function_pod("z")
    def middle(y: int) -> int:
        time.sleep(0.001)
        return y * 2

    @function_pod("w")
    def last(z: int) -> int:
        return z - 1

    db = InMemoryArrowDatabase()
    source = _source(400)
    a = FunctionNode(first.pod, source, db)
    b = FunctionNode(middle.pod, a, db)
    c = FunctionNode(last.pod, b, db)
    orchestrator = _run([source, a, b, c], buffer=8)
    assert [(up, down) for up, down, _ in orchestrator.edge_peaks] == [
        (source.label, a.label),
        (a.label, b.label),
        (b.label, c.label),
    ]
    assert all(0 < peak <= 8 for _, _, peak in orchestrator.edge_peaks)
    assert sorted(c.as_table().column("w").to_pylist()) == [(i + 1) * 2 - 1 for i in range(400)]


def test_a_slow_consumer_holds_back_a_fast_producer() -> None:
    produced: list[int] = []
    ahead: list[int] = []  # per call of the slow node: rows the fast node had computed more

    @function_pod("y")
    def fast(x: int) -> int:
        produced.append(x)
        return x

    @function_pod("z")
    def slow(y: int) -> int:
        ahead.append(len(produced) - len(ahead))
        time.sleep(0.0005)
        return y

    db = InMemoryArrowDatabase()
    source = _source(1500)
    producer = FunctionNode(fast.pod, source, db)
    consumer = FunctionNode(slow.pod, producer, db)
    consumer.flush_policy = FlushPolicy(rows=8)  # reads at most 8 rows ahead of its work
    producer.flush_policy = FlushPolicy(rows=64)  # commits (and passes on) every 64 rows
    _run([source, producer, consumer], buffer=4)
    assert len(ahead) == 1500
    # the channel (4 rows), the consumer's read-ahead, looked-up and current chunks (4 x 8
    # rows) and the producer's finished rows not yet passed on (its uncommitted batch, at most
    # 64, and at most 6 x 128 waiting for its writer: its loop's outcomes, the 4 batches
    # queued and the one being written) bound how far ahead the producer gets; without
    # backpressure it would finish all 1500 rows first
    assert max(ahead) <= 4 + 4 * 8 + 64 + 6 * 128


class _Running:
    """Counts calls running at once (its identity is constant: a function may close over it)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def identity_structure(self) -> str:
        return "running"


def test_calls_in_flight_never_exceed_max_concurrency_across_chunks() -> None:
    running = _Running()

    @function_pod("y")
    def feed(x: int) -> int:
        time.sleep(0.002)
        return x

    @function_pod("z")
    def tracked(y: int) -> int:
        with running.lock:
            running.now += 1
            running.most = max(running.most, running.now)
        time.sleep(0.005)
        with running.lock:
            running.now -= 1
        return y

    db = InMemoryArrowDatabase()
    source = _source(120)
    upstream = FunctionNode(feed.pod, source, db)
    node = FunctionNode(tracked.pod, upstream, db)
    node.executor = LocalExecutor(max_workers=6)
    _run(
        [source, upstream, node],
        buffer=4,
        node_configs={node.label: NodeConfig(max_concurrency=3)},
    )
    assert 1 <= running.most <= 3
    assert node.as_table().num_rows == 120


def test_a_streaming_run_reuses_results_another_pipeline_stored() -> None:
    from orcapod import Pipeline
    from orcapod.types import ExecutorType

    calls: list[int] = []

    @function_pod("y")
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    results = InMemoryArrowDatabase()

    def build(name: str, n: int) -> Pipeline:
        pipeline = Pipeline(name, InMemoryArrowDatabase(), result_database=results)
        with pipeline:
            double.pod(DictSource([{"id": i, "x": i} for i in range(n)], tag_columns=["id"]))
        return pipeline

    build("first", 50).run()
    assert len(calls) == 50
    second = build("second", 80)  # its own records; the results of 50 rows are stored
    summary = second.run(config=PipelineConfig(executor=ExecutorType.ASYNC_CHANNELS))
    node = dict(summary.items())["double"]
    assert len(calls) == 80  # only the 30 new packets were called
    assert (node.computed, node.reused) == (30, 50)
    assert sorted(second.double.as_table().column("y").to_pylist()) == [2 * i for i in range(80)]


@pytest.mark.parametrize("threads", [False, True], ids=["inline", "threads"])
def test_an_output_the_store_cannot_hold_fails_only_its_own_row_in_a_stream(
    threads: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if threads:  # every call counts as slow: look-ups and commits move to threads at once
        monkeypatch.setattr(function_stream, "SLOW_CALL_SECONDS", 0.0)
        monkeypatch.setattr(function_stream, "TIMED_SECONDS", 0.0)

    @function_pod("y")
    def emit(x: int) -> int:
        return 2**70 if x == 2 else x

    @function_pod("z")
    def then(y: int) -> int:
        return y + 1

    db = InMemoryArrowDatabase()
    source = _source(5)
    node = FunctionNode(emit.pod, source, db)
    downstream = FunctionNode(then.pod, node, db)
    with pytest.warns(FailedRowsWarning):
        _run([source, node, downstream], buffer=2)
    assert sorted(node.as_table().column("y").to_pylist()) == [0, 1, 3, 4]
    assert sorted(downstream.as_table().column("z").to_pylist()) == [1, 2, 4, 5]
    (failure,) = node.failures().to_pylist()
    assert failure["id"] == 2 and "cannot be stored" in failure["__error_message"]


def test_look_ups_and_commits_move_to_threads_once_calls_prove_slow() -> None:
    writing: list[bool] = []  # per call: did the node have a writer thread of its own?

    @function_pod("y")
    def sometimes_slow(x: int) -> int:
        names = {t.name for t in threading.enumerate()}
        writing.append("orcapod-sometimes_slow-writer" in names)
        if x >= 200:
            time.sleep(0.002)
        return x

    db = InMemoryArrowDatabase()
    source = _source(400)
    node = FunctionNode(sometimes_slow.pod, source, db)
    _run([source, node], buffer=8)
    assert sorted(node.as_table().column("y").to_pylist()) == list(range(400))
    # cheap calls: inline from the start; slow ones (averaging 1 ms or more): in threads
    assert not writing[0] and writing[-1]


def test_a_slow_first_call_alone_keeps_look_ups_and_commits_inline() -> None:
    writing: list[bool] = []

    @function_pod("y")
    def slow_start(x: int) -> int:  # the first call pays a one-off cost
        names = {t.name for t in threading.enumerate()}
        writing.append("orcapod-slow_start-writer" in names)
        if not writing[:-1]:
            time.sleep(0.2)
        return x

    db = InMemoryArrowDatabase()
    source = _source(300)
    node = FunctionNode(slow_start.pod, source, db)
    _run([source, node], buffer=8)
    assert sorted(node.as_table().column("y").to_pylist()) == list(range(300))
    assert len(writing) == 300 and not any(writing)
