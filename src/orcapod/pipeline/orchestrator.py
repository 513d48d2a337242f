"""Orchestrators: run a compiled pipeline's nodes.

``SyncOrchestrator`` runs nodes one after another in the topological order the pipeline
compiled them in, so every node reads upstream results that are already stored.
``AsyncOrchestrator`` (``ExecutorType.ASYNC_CHANNELS``) starts every node as soon as all its
upstream nodes have finished, so independent branches run at the same time (each node's
``run()`` in a worker thread, driven by one asyncio loop). Both produce the same rows and the
same stored records: every node runs exactly the same ``run()`` over the same stored upstream
results; only the order of independent nodes differs.

Within a function node, a concurrent executor keeps a bounded window of packets in flight
(the node's job); its limit is resolved from the node's ``NodeConfig`` (if it has one) and the
run's ``PipelineConfig`` (``resolve_concurrency``).

Provenance is never rewritten here: nodes read their upstream nodes directly (their tables
carry every row's own system tags and source info), so no row is ever given another row's
source info.

A function node whose input lies below another function node is re-bound to that input
before it runs (its view of the input is rebuilt), so a second run in the same process sees
rows the upstream added in between.

Packet events: each node runs inside ``observing(observer)`` when the run's observer is also
a ``PacketObserver`` (``orcapod.functions.engine.events``), so function nodes report their
packets to it; the summary knows the graph's edges, so a node below failed rows is
``partial``.

A node that raises (``ErrorPolicy.FAIL_FAST``, a database failure, …) stops the run: the
observer hears ``on_node_error`` and the exception propagates unchanged. The async
orchestrator starts no new node after a failure but lets the nodes already running finish
(a worker thread cannot be interrupted safely mid-write) before it re-raises the first error.
Flushing is the pipeline's job (``Pipeline.run`` flushes at the end, after a failure too).

Decisions: nodes hand results to each other through the database, with a barrier per node,
not (yet) through bounded ``Channel``s row by row; so ``PipelineConfig.channel_buffer_size``
is not used. ``AsyncOrchestrator.run`` works inside a
running event loop (Jupyter) by driving its own loop in a helper thread.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from orcapod.functions.engine.events import observing
from orcapod.nodes.protocol import Node
from orcapod.nodes.summary import NodeRunSummary
from orcapod.pipeline.observers import NoOpObserver, PipelineObserver, packet_listener
from orcapod.pipeline.run_summary import PipelineRunSummary
from orcapod.types import NodeConfig, PipelineConfig
from orcapod.types.configs import resolve_concurrency

__all__ = ["AsyncOrchestrator", "SyncOrchestrator"]


def run_node(
    node: Node,
    config: PipelineConfig,
    node_configs: Mapping[str, NodeConfig],
    observer: object = None,
) -> NodeRunSummary:
    """Run one node with the settings of this run, after it forgets what it read before (an
    input below another node may have grown since). A function node reports its packets to
    ``observer`` when it listens to them (``packet_listener``)."""
    node.refresh()
    with observing(packet_listener(observer)):
        return node.run(max_concurrency=resolve_concurrency(node_configs.get(node.label), config))


class SyncOrchestrator:
    """Runs nodes sequentially in the given (topological) order."""

    def run(
        self,
        nodes: Sequence[Node],
        *,
        pipeline_name: str,
        config: PipelineConfig | None = None,
        observer: PipelineObserver | None = None,
        node_configs: Mapping[str, NodeConfig] | None = None,
        dependencies: Mapping[str, Sequence[str]] | None = None,
    ) -> PipelineRunSummary:
        config = config if config is not None else PipelineConfig()
        obs: PipelineObserver = observer if observer is not None else NoOpObserver()
        node_configs = node_configs or {}
        run_id = str(uuid.uuid4())
        summaries: dict[str, NodeRunSummary] = {}
        types = {node.label: node.node_type for node in nodes}
        obs.on_run_start(run_id, pipeline_name)
        result: PipelineRunSummary | None = None
        try:
            for node in nodes:
                label = node.label
                obs.on_node_start(label, node.node_type)
                try:
                    summary = run_node(node, config, node_configs, obs)
                except Exception as err:
                    obs.on_node_error(label, err)
                    raise
                summaries[label] = summary
                obs.on_node_end(label, summary)
            result = PipelineRunSummary(pipeline_name, summaries, types, dependencies)
            return result
        finally:
            obs.on_run_end(run_id, result)


class AsyncOrchestrator:
    """Runs each node as soon as its upstream nodes finished; independent nodes overlap."""

    def run(
        self,
        nodes: Sequence[Node],
        *,
        pipeline_name: str,
        config: PipelineConfig | None = None,
        observer: PipelineObserver | None = None,
        node_configs: Mapping[str, NodeConfig] | None = None,
        dependencies: Mapping[str, Sequence[str]] | None = None,
    ) -> PipelineRunSummary:
        def drive() -> PipelineRunSummary:
            return asyncio.run(
                self.run_async(
                    nodes,
                    pipeline_name=pipeline_name,
                    config=config,
                    observer=observer,
                    node_configs=node_configs,
                    dependencies=dependencies,
                )
            )

        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop here: the common case
            return drive()
        return _in_helper_thread(drive)

    async def run_async(
        self,
        nodes: Sequence[Node],
        *,
        pipeline_name: str,
        config: PipelineConfig | None = None,
        observer: PipelineObserver | None = None,
        node_configs: Mapping[str, NodeConfig] | None = None,
        dependencies: Mapping[str, Sequence[str]] | None = None,
    ) -> PipelineRunSummary:
        config = config if config is not None else PipelineConfig()
        obs: PipelineObserver = observer if observer is not None else NoOpObserver()
        configs = node_configs or {}
        deps = dependencies or {}
        run_id = str(uuid.uuid4())
        types = {node.label: node.node_type for node in nodes}
        summaries: dict[str, NodeRunSummary] = {}
        failed: list[BaseException] = []
        done: dict[str, asyncio.Event] = {label: asyncio.Event() for label in types}

        async def one(node: Node) -> None:
            label = node.label
            try:
                for upstream in deps.get(label, ()):
                    await done[upstream].wait()
                if failed or any(u not in summaries for u in deps.get(label, ())):
                    return  # an upstream failed: start nothing new
                obs.on_node_start(label, node.node_type)
                try:
                    summary = await asyncio.to_thread(run_node, node, config, configs, obs)
                except Exception as err:  # noqa: BLE001 - re-raised once running nodes end
                    failed.append(err)
                    obs.on_node_error(label, err)
                    return
                summaries[label] = summary
                obs.on_node_end(label, summary)
            finally:
                done[label].set()

        obs.on_run_start(run_id, pipeline_name)
        result: PipelineRunSummary | None = None
        try:
            await asyncio.gather(*(one(node) for node in nodes))
            if failed:
                raise failed[0]
            ordered = {node.label: summaries[node.label] for node in nodes}
            result = PipelineRunSummary(pipeline_name, ordered, types, deps)
            return result
        finally:
            obs.on_run_end(run_id, result)


def _in_helper_thread(fn: Any) -> PipelineRunSummary:
    """Run ``fn`` (which drives its own event loop) in a thread; return or re-raise."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = err

    thread = threading.Thread(target=target, name="orcapod-async-orchestrator")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    value: PipelineRunSummary = outcome["value"]
    return value
