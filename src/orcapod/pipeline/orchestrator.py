"""``SyncOrchestrator``: run a compiled pipeline's nodes one after another.

Nodes are run in the topological order the pipeline compiled them in, so every node reads
upstream results that are already stored. A function node runs with the concurrency limit
resolved from its ``NodeConfig`` (if it has one) and the run's ``PipelineConfig``; within a
node, a concurrent executor keeps a bounded window of packets in flight (the node's job).

Provenance is never rewritten here: nodes read their upstream nodes directly (their tables
carry every row's own system tags and source info), unlike the earlier implementation's
orchestrator, which re-materialised buffers with the first row's source info.

A function node whose input lies below another function node is re-bound to that input
before it runs (its view of the input is rebuilt), so a second run in the same process sees
rows the upstream added in between.

A node that raises (``ErrorPolicy.FAIL_FAST``, a database failure, …) stops the run: the
observer hears ``on_node_error`` and the exception propagates unchanged. Flushing is the
pipeline's job (``Pipeline.run`` flushes in a ``finally``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from orcapod.nodes.operator_node import is_immutable_stream
from orcapod.nodes.summary import NodeRunSummary, NodeType
from orcapod.pipeline.observers import NoOpObserver, PipelineObserver
from orcapod.pipeline.run_summary import PipelineRunSummary
from orcapod.types import NodeConfig, PipelineConfig
from orcapod.types.configs import resolve_concurrency

__all__ = ["SyncOrchestrator"]


class SyncOrchestrator:
    """Runs nodes sequentially in the given (topological) order."""

    def run(
        self,
        nodes: Sequence[tuple[str, NodeType, Any]],
        *,
        pipeline_name: str,
        config: PipelineConfig | None = None,
        observer: PipelineObserver | None = None,
        node_configs: Mapping[str, NodeConfig] | None = None,
    ) -> PipelineRunSummary:
        config = config if config is not None else PipelineConfig()
        obs: PipelineObserver = observer if observer is not None else NoOpObserver()
        node_configs = node_configs or {}
        run_id = str(uuid.uuid4())
        summaries: dict[str, NodeRunSummary] = {}
        types = {label: node_type for label, node_type, _ in nodes}
        obs.on_run_start(run_id, pipeline_name)
        result: PipelineRunSummary | None = None
        try:
            for label, node_type, node in nodes:
                obs.on_node_start(label, node_type)
                try:
                    if node_type is NodeType.FUNCTION:
                        _refresh_input(node)
                        limit = resolve_concurrency(node_configs.get(label), config)
                        summary = node.run(max_concurrency=limit)
                    else:
                        summary = node.run()
                except Exception as err:
                    obs.on_node_error(label, err)
                    raise
                summaries[label] = summary
                obs.on_node_end(label, summary)
            result = PipelineRunSummary(pipeline_name, summaries, types)
            return result
        finally:
            obs.on_run_end(run_id, result)


def _refresh_input(node: Any) -> None:
    """Make a function node re-read an input that may have changed since it last looked.

    A function node identifies its input rows once per input stream; an input below another
    function node grows when that node runs, so it is re-bound before every run.
    """
    (upstream,) = node.upstreams
    if not is_immutable_stream(upstream):
        node.upstreams = (upstream,)
