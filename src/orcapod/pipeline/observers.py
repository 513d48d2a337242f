"""Run observers: who is told when a pipeline run and its nodes start and end.

``PipelineObserver`` is the protocol outside code implements (every hook is called with
keyword-free positional arguments and must not raise; an exception from an observer
propagates and stops the run, because a broken observer is a bug to fix, not to hide).
``NoOpObserver`` is a convenient base with empty hooks; ``StatusObserver`` keeps per-node
state and summaries in memory (``observer.status["compute_bmi"]``).

Decision: packet-level events belong to the function node; the pipeline layer reports node
and run granularity only.
"""

from __future__ import annotations

import threading
from enum import StrEnum
from typing import Protocol, runtime_checkable

from orcapod.nodes.summary import NodeRunSummary, NodeType
from orcapod.pipeline.run_summary import PipelineRunSummary

__all__ = ["NoOpObserver", "NodeState", "PipelineObserver", "StatusObserver"]


@runtime_checkable
class PipelineObserver(Protocol):
    def on_run_start(self, run_id: str, pipeline_name: str) -> None: ...

    def on_node_start(self, label: str, node_type: NodeType) -> None: ...

    def on_node_end(self, label: str, summary: NodeRunSummary) -> None: ...

    def on_node_error(self, label: str, error: BaseException) -> None: ...

    def on_run_end(self, run_id: str, summary: PipelineRunSummary | None) -> None: ...


class NoOpObserver:
    """Implements every hook as a no-op; subclass it and override what you need."""

    def on_run_start(self, run_id: str, pipeline_name: str) -> None:
        return None

    def on_node_start(self, label: str, node_type: NodeType) -> None:
        return None

    def on_node_end(self, label: str, summary: NodeRunSummary) -> None:
        return None

    def on_node_error(self, label: str, error: BaseException) -> None:
        return None

    def on_run_end(self, run_id: str, summary: PipelineRunSummary | None) -> None:
        return None


class NodeState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class StatusObserver(NoOpObserver):
    """Keeps the latest state and summary of every node of the current run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.run_id: str | None = None
        self.status: dict[str, NodeState] = {}
        self.summaries: dict[str, NodeRunSummary] = {}
        self.errors: dict[str, BaseException] = {}

    def on_run_start(self, run_id: str, pipeline_name: str) -> None:
        with self._lock:
            self.run_id = run_id
            self.status.clear()
            self.summaries.clear()
            self.errors.clear()

    def on_node_start(self, label: str, node_type: NodeType) -> None:
        with self._lock:
            self.status[label] = NodeState.RUNNING

    def on_node_end(self, label: str, summary: NodeRunSummary) -> None:
        with self._lock:
            self.status[label] = NodeState.DONE
            self.summaries[label] = summary

    def on_node_error(self, label: str, error: BaseException) -> None:
        with self._lock:
            self.status[label] = NodeState.FAILED
            self.errors[label] = error
