"""Orchestrators: run a compiled pipeline's nodes.

``SyncOrchestrator`` runs nodes one after another in the topological order the pipeline
compiled them in, so every node reads upstream results that are already stored.

``AsyncOrchestrator`` (``ExecutorType.ASYNC_CHANNELS``) streams: every node starts at once
and rows flow from node to node as Arrow chunks through bounded channels
(``orcapod.streams.channels``), so a second stage starts on the first finished row and a
slow stage and a fast one run at the same time. Each edge holds at most
``PipelineConfig.channel_buffer_size`` rows (chunks of half that are sent); a node read by
several nodes writes to a ``BroadcastChannel`` (one buffer per reader). What each kind of node
does with its channels is its ``async_execute`` (``orcapod.nodes.streaming``,
``orcapod.nodes.function_stream``): function nodes pass each row on once stored, operators
stream where their meaning allows and wait for their whole input otherwise. Both
orchestrators produce the same rows, the same stored records and the same run summary.

Within a function node, a concurrent executor keeps a bounded window of packets in flight;
its limit is resolved from the node's ``NodeConfig`` (if it has one) and the run's
``PipelineConfig`` (``resolve_concurrency``).

Provenance is never rewritten here: chunks carry every row's own system tags and source
info, exactly the rows a synchronous run would read from the sending node.

Every node is refreshed before a run (and a node again when it finished, so reading it shows
its new rows), so a second run in the same process sees rows an upstream added in between.

Packet events: each node runs inside ``observing(observer)`` when the run's observer is also
a ``PacketObserver`` (``orcapod.functions.engine.events``), so function nodes report their
packets to it; the summary knows the graph's edges, so a node below failed rows is
``partial``.

A node that raises (``ErrorPolicy.FAIL_FAST``, a database failure, a ``KeyboardInterrupt``
or ``SystemExit`` - any ``BaseException``) stops the run: the observer hears
``on_node_error`` with the exception (a function node's carries what it did before,
``orcapod.nodes.node_run.partial_summary``) and the exception propagates unchanged: an
interrupt is reported, never swallowed. The streaming orchestrator closes every channel with
that error (an interrupt or exit as a ``ChannelClosedError`` caused by it: raised in another
node's task, it would escape the event loop), so each other node stops at its next channel
operation - a function node first commits the rows it finished (they stay stored; the next
run reuses them) - and re-raises the first error once all have stopped. A streaming run
cancelled as a whole (Ctrl-C cancels ``asyncio.run``'s task) reports the ``CancelledError``
for every node still running. Flushing the databases is the pipeline's job
(``Pipeline.run`` flushes at the end, after a failure too).

Decisions: ``AsyncOrchestrator.run`` works inside a running event loop (Jupyter) by driving
its own loop in a helper thread; blocking work (function calls, database reads and commits)
runs in one thread per node, never on the loop, so nodes are not serialised onto one thread.
A node without ``async_execute`` is run as a barrier (its inputs drained, then ``run()``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from orcapod._lazy import lazy_module
from orcapod.errors import ChannelClosedError
from orcapod.functions.engine.events import observing
from orcapod.nodes.protocol import Node
from orcapod.nodes.streaming import Output, drain, in_thread, send_table
from orcapod.nodes.summary import NodeRunSummary, NodeType
from orcapod.operators.layout import FULL_INFO
from orcapod.pipeline.observers import NoOpObserver, PipelineObserver, packet_listener
from orcapod.pipeline.run_summary import PipelineRunSummary
from orcapod.streams.channels import BroadcastChannel, Channel
from orcapod.types import NodeConfig, PipelineConfig
from orcapod.types.configs import resolve_concurrency

if TYPE_CHECKING:
    import asyncio
else:
    asyncio = lazy_module("asyncio")

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
                except BaseException as err:  # reported, then re-raised unchanged
                    obs.on_node_error(label, err)
                    raise
                summaries[label] = summary
                obs.on_node_end(label, summary)
            result = PipelineRunSummary(pipeline_name, summaries, types, dependencies)
            return result
        finally:
            obs.on_run_end(run_id, result)


class AsyncOrchestrator:
    """Runs every node at once; rows stream between them through bounded channels.

    After a run, ``edge_peaks`` lists every edge as ``(upstream label, downstream label, the
    most rows its channel held at once)`` - at most ``channel_buffer_size``.
    """

    def __init__(self) -> None:
        self.edge_peaks: list[tuple[str, str, int]] = []

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
        capacity = config.channel_buffer_size
        chunk_rows = max(1, capacity // 2)  # two chunks fit in a channel: double buffering
        run_id = str(uuid.uuid4())
        types = {node.label: node.node_type for node in nodes}
        upstream = _inputs_of(nodes, dependencies or {})
        outputs = _wire(nodes, upstream, capacity)
        readers: dict[str, list[Channel[pa.Table]]] = {node.label: [] for node in nodes}
        edges: list[tuple[str, str, Channel[pa.Table]]] = []
        for node in nodes:
            for name in upstream[node.label]:
                out = outputs[name]
                assert out is not None  # a node with a reader has an output
                reader = out if isinstance(out, Channel) else out.add_reader()
                readers[node.label].append(reader)
                edges.append((name, node.label, reader))
        ordered = _ordering(nodes, upstream)
        summaries: dict[str, NodeRunSummary] = {}
        failed: list[BaseException] = []

        def stop(error: BaseException) -> None:
            # every node stops at its next channel operation; a function node first commits
            # what it finished
            if not isinstance(error, Exception):
                # an interrupt, exit or cancellation reaches the other nodes as an ordinary
                # error: raised in another task, it would escape the event loop at once
                reason = ChannelClosedError(
                    f"the run stopped: {type(error).__name__} in another node"
                )
                reason.__cause__ = error
                error = reason
            for out in outputs.values():
                if out is not None:
                    out.close(error)

        async def one(node: Node) -> None:
            label = node.label
            out = outputs[label]
            obs.on_node_start(label, node.node_type)
            try:
                with observing(packet_listener(obs)):  # function nodes report packets
                    summary = await _execute(
                        node,
                        readers[label],
                        out,
                        max_concurrency=resolve_concurrency(configs.get(label), config),
                        ordered=[ordered[u] for u in upstream[label]],
                        chunk_rows=chunk_rows,
                    )
            except asyncio.CancelledError as err:  # the run is cancelled: every node hears it
                if not failed:
                    failed.append(err)
                obs.on_node_error(label, err)
                stop(err)
                raise
            except BaseException as err:  # noqa: BLE001 - the first one is re-raised below
                # (a KeyboardInterrupt or SystemExit too, once every node has stopped)
                if not failed:  # the origin; the others only saw it through a channel
                    failed.append(err)
                    obs.on_node_error(label, err)
                stop(err)
                return
            if out is not None:
                out.close()
            node.refresh()  # its rows grew: readers of the node see them
            summaries[label] = summary
            obs.on_node_end(label, summary)

        obs.on_run_start(run_id, pipeline_name)
        result: PipelineRunSummary | None = None
        try:
            for node in nodes:
                node.refresh()
            tasks = [asyncio.create_task(one(node)) for node in nodes]
            try:
                await asyncio.gather(*tasks)
            except asyncio.CancelledError:
                # every node stops (a function node's thread is waited for, so its writes
                # finish) before the cancellation goes on
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
            if failed:
                raise failed[0]
            ordered_summaries = {node.label: summaries[node.label] for node in nodes}
            result = PipelineRunSummary(pipeline_name, ordered_summaries, types, dependencies)
            return result
        finally:
            self.edge_peaks = [(up, down, channel.peak) for up, down, channel in edges]
            obs.on_run_end(run_id, result)


def _rows(chunk: pa.Table) -> int:
    return int(chunk.num_rows)


def _inputs_of(
    nodes: Sequence[Node], dependencies: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """Per node, the labels of its inputs in the order of its ``upstreams`` (a node reading
    the same upstream twice lists it twice)."""
    label_of = {id(node): node.label for node in nodes}
    found: dict[str, list[str]] = {}
    for node in nodes:
        ups = tuple(getattr(node, "upstreams", ()))
        names = [label_of[id(u)] for u in ups if id(u) in label_of]
        found[node.label] = (
            names if len(names) == len(ups) else list(dependencies.get(node.label, ()))
        )
    return found


def _wire(
    nodes: Sequence[Node], upstream: Mapping[str, Sequence[str]], capacity: int
) -> dict[str, Output]:
    """Each node's output: nothing without readers, a channel for one, a broadcast for more."""
    readers = {node.label: 0 for node in nodes}
    for names in upstream.values():
        for name in names:
            readers[name] += 1
    outputs: dict[str, Output] = {}
    for label, count in readers.items():
        if count == 0:
            outputs[label] = None
        elif count == 1:
            outputs[label] = Channel(capacity, size=_rows)
        else:
            outputs[label] = BroadcastChannel(capacity, size=_rows)
    return outputs


def _ordering(nodes: Sequence[Node], upstream: Mapping[str, Sequence[str]]) -> dict[str, bool]:
    """Per node (in topological order): do its chunks come in the synchronous row order?"""
    ordered: dict[str, bool] = {}
    for node in nodes:
        ins = [ordered[u] for u in upstream[node.label]]
        if node.node_type is NodeType.FUNCTION:
            ordered[node.label] = all(ins)
        elif node.node_type is NodeType.OPERATOR and hasattr(node, "streaming_form"):
            form = node.streaming_form(ins)
            ordered[node.label] = True if form is None else form.ordered
        else:
            ordered[node.label] = True
    return ordered


async def _execute(
    node: Node,
    inputs: Sequence[Channel[pa.Table]],
    output: Output,
    *,
    max_concurrency: int | None,
    ordered: Sequence[bool],
    chunk_rows: int,
) -> NodeRunSummary:
    execute = getattr(node, "async_execute", None)
    if execute is None:  # a node without a streaming form: a barrier
        await asyncio.gather(*(drain(reader) for reader in inputs))
        summary = await in_thread(lambda: node.run(max_concurrency=max_concurrency), node.label)
        await send_table(node.as_table(FULL_INFO), output, chunk_rows)  # type: ignore[attr-defined]
        return summary
    if node.node_type is NodeType.FUNCTION:
        done: NodeRunSummary = await execute(
            inputs, output, max_concurrency=max_concurrency, chunk_rows=chunk_rows
        )
    elif node.node_type is NodeType.OPERATOR:
        done = await execute(inputs, output, ordered=ordered, chunk_rows=chunk_rows)
    else:
        done = await execute(inputs, output, chunk_rows=chunk_rows)
    return done


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
