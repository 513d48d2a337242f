"""Run observers: who is told when a pipeline run and its nodes start and end.

``PipelineObserver`` is the protocol outside code implements (every hook is called with
keyword-free positional arguments and must not raise; an exception from an observer
propagates and stops the run, because a broken observer is a bug to fix, not to hide).
``NoOpObserver`` is a convenient base with empty hooks; ``StatusObserver`` keeps per-node
state and summaries in memory (``observer.status["compute_bmi"]``); ``ProgressObserver`` shows
one rich progress line per node in a terminal (``Pipeline.run`` uses it by default when
stderr is a TTY, and shows nothing otherwise); ``CompositeObserver`` fans hooks out.

Decision: packet-level events belong to the function node; the pipeline layer reports node
and run granularity only.

rich is imported by ``ProgressObserver`` when it is created or a run starts, not with this
module, so importing orcapod does not import it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from orcapod.nodes.summary import NodeRunSummary, NodeType
from orcapod.pipeline.run_summary import PipelineRunSummary

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = [
    "CompositeObserver",
    "NoOpObserver",
    "NodeState",
    "PipelineObserver",
    "ProgressObserver",
    "StatusObserver",
]


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


class CompositeObserver(NoOpObserver):
    """Calls every hook on each of ``observers``, in order."""

    def __init__(self, *observers: PipelineObserver) -> None:
        self.observers: tuple[PipelineObserver, ...] = tuple(observers)

    def _each(self) -> Iterable[PipelineObserver]:
        return self.observers

    def on_run_start(self, run_id: str, pipeline_name: str) -> None:
        for obs in self._each():
            obs.on_run_start(run_id, pipeline_name)

    def on_node_start(self, label: str, node_type: NodeType) -> None:
        for obs in self._each():
            obs.on_node_start(label, node_type)

    def on_node_end(self, label: str, summary: NodeRunSummary) -> None:
        for obs in self._each():
            obs.on_node_end(label, summary)

    def on_node_error(self, label: str, error: BaseException) -> None:
        for obs in self._each():
            obs.on_node_error(label, error)

    def on_run_end(self, run_id: str, summary: PipelineRunSummary | None) -> None:
        for obs in self._each():
            obs.on_run_end(run_id, summary)


class ProgressObserver(NoOpObserver):
    """One progress line per node on a rich console: a spinner while the node runs, then its
    counts. Packet-level progress belongs to the function node and is not shown."""

    def __init__(self, console: Console | None = None, transient: bool = False) -> None:
        if console is None:
            from rich.console import Console

            console = Console(stderr=True)
        self._console = console
        self._transient = transient
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def on_run_start(self, run_id: str, pipeline_name: str) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with self._lock:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=self._console,
                transient=self._transient,
            )
            self._progress.start()
            self._tasks.clear()

    def on_node_start(self, label: str, node_type: NodeType) -> None:
        with self._lock:
            if self._progress is not None:
                self._tasks[label] = self._progress.add_task(
                    f"{label} ({node_type.value})", total=1
                )

    def _finish(self, label: str, text: str) -> None:
        with self._lock:
            if self._progress is not None and label in self._tasks:
                self._progress.update(self._tasks[label], description=text, completed=1)

    def on_node_end(self, label: str, summary: NodeRunSummary) -> None:
        counts = f"{summary.computed} computed, {summary.reused} reused, {summary.failed} failed"
        self._finish(label, f"{label}: {counts}")

    def on_node_error(self, label: str, error: BaseException) -> None:
        self._finish(label, f"{label}: [red]error[/] {type(error).__name__}")

    def on_run_end(self, run_id: str, summary: PipelineRunSummary | None) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
