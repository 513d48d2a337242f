"""Streaming runs of function nodes: bounded edges, backpressure, one window of calls."""

from __future__ import annotations

import threading
import time
from typing import Any

from orcapod import function_pod
from orcapod.databases import InMemoryArrowDatabase
from orcapod.executors import LocalExecutor
from orcapod.nodes import FunctionNode, SourceNode
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
