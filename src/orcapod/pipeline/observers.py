"""Run observers: who is told when a pipeline run, its nodes and their packets start and end.

``PipelineObserver`` is the protocol outside code implements for run and node events (every
hook is called with positional arguments and must not raise; an exception from an observer
propagates and stops the run, because a broken observer is a bug to fix, not to hide). An
observer that also implements ``orcapod.functions.engine.events.PacketObserver`` hears the
packets of every function node (the orchestrators pass it to the nodes they run).
``NoOpObserver`` is a convenient base with empty hooks of both kinds; ``StatusObserver``
keeps per-node state, summaries and rows settled so far in memory
(``observer.status["compute_bmi"]``, ``observer.progress["compute_bmi"]``);
``CompositeObserver`` fans hooks out (packet hooks only to the observers that have them).
The progress bars are ``orcapod.pipeline.progress.ProgressObserver``; the store's logs,
run history and catalog are written by ``orcapod.pipeline.log_observer`` and
``orcapod.pipeline.run_recorder``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Protocol, runtime_checkable

from orcapod.functions.engine.events import PacketBatch, PacketObserver, PacketOutcome, PacketRun
from orcapod.nodes.summary import NodeRunSummary, NodeType
from orcapod.pipeline.run_summary import PipelineRunSummary

__all__ = [
    "CompositeObserver",
    "NoOpObserver",
    "NodeState",
    "PipelineObserver",
    "StatusObserver",
    "packet_listener",
]

_PACKET_HOOKS = (
    "on_packets_start",
    "on_packets_settled",
    "on_packet_start",
    "on_packets_end",
    "on_packets_done",
    "on_packets_commit",
)


@runtime_checkable
class PipelineObserver(Protocol):
    def on_run_start(self, run_id: str, pipeline_name: str) -> None: ...

    def on_node_start(self, label: str, node_type: NodeType) -> None: ...

    def on_node_end(self, label: str, summary: NodeRunSummary) -> None: ...

    def on_node_error(self, label: str, error: BaseException) -> None: ...

    def on_run_end(self, run_id: str, summary: PipelineRunSummary | None) -> None: ...


class NoOpObserver:
    """Implements every hook (run, node and packet) as a no-op; subclass it and override what
    you need. ``captures_output`` is False: calls' output is not captured for it."""

    captures_output: bool = False

    @property
    def hears_packet_start(self) -> bool:
        """False unless a subclass overrides ``on_packet_start``: the engine then skips the
        call per packet."""
        return type(self).on_packet_start is not NoOpObserver.on_packet_start

    def on_packets_start(self, run: PacketRun) -> None:
        return None

    def on_packets_settled(self, run: PacketRun, outcome: PacketOutcome, rows: int) -> None:
        return None

    def on_packet_start(self, run: PacketRun, key: int) -> None:
        return None

    def on_packets_end(self, run: PacketRun, batch: PacketBatch) -> None:
        return None

    def on_packets_done(self, run: PacketRun) -> None:
        return None

    def on_packets_commit(self, run: PacketRun) -> Callable[[], None] | None:
        """The run is about to commit the results of the calls handed over so far; return
        what to run once that commit has landed (in the thread that commits), if anything
        (``orcapod.functions.engine.events``)."""
        return None

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


def packet_listener(observer: object) -> PacketObserver | None:
    """``observer`` when it listens to packets (a ``PacketObserver`` that captures output or
    has a packet hook of its own, not only ``NoOpObserver``'s), else None: a run reports
    packet events only when someone listens, so observers that do not cost nothing per row."""
    if isinstance(observer, CompositeObserver):
        return observer if observer.packet_observers else None
    if not isinstance(observer, PacketObserver):
        return None
    if observer.captures_output:
        return observer
    cls = type(observer)
    if any(getattr(cls, h, None) is not getattr(NoOpObserver, h) for h in _PACKET_HOOKS):
        return observer
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
        #: per function node: input rows and rows settled so far, by outcome ("total",
        #: "computed", "reused", "filtered", "failed")
        self.progress: dict[str, dict[str, int]] = {}

    def on_run_start(self, run_id: str, pipeline_name: str) -> None:
        with self._lock:
            self.run_id = run_id
            self.status.clear()
            self.summaries.clear()
            self.errors.clear()
            self.progress.clear()

    def on_packets_start(self, run: PacketRun) -> None:
        with self._lock:
            self.progress[run.label] = {"total": run.total, **{o.value: 0 for o in PacketOutcome}}

    def on_packets_settled(self, run: PacketRun, outcome: PacketOutcome, rows: int) -> None:
        with self._lock:
            self.progress[run.label][outcome.value] += rows

    def on_packets_end(self, run: PacketRun, batch: PacketBatch) -> None:
        by_outcome = batch.rows_by_outcome()
        with self._lock:
            counts = self.progress[run.label]
            for outcome, rows in by_outcome.items():
                counts[outcome.value] += rows

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
    """Calls every hook on each of ``observers``, in order (packet hooks on those that are
    ``PacketObserver``s; it captures calls' output when any of them does)."""

    def __init__(self, *observers: PipelineObserver) -> None:
        self.observers: tuple[PipelineObserver, ...] = tuple(observers)
        listening = (packet_listener(o) for o in observers)
        #: the observers that listen to packets (the packet hooks go to them only)
        self.packet_observers: tuple[PacketObserver, ...] = tuple(
            o for o in listening if o is not None
        )
        self.captures_output = any(o.captures_output for o in self.packet_observers)
        self._starters = tuple(  # only those that hear each call's start
            o for o in self.packet_observers if getattr(o, "hears_packet_start", True)
        )
        #: the ``on_packets_commit`` hooks of those that have one (it is optional)
        self._committers: tuple[Callable[[PacketRun], Callable[[], None] | None], ...] = tuple(
            hook
            for hook in (getattr(o, "on_packets_commit", None) for o in self.packet_observers)
            if hook is not None
        )

    @property
    def hears_packet_start(self) -> bool:
        return bool(self._starters)

    def on_packets_start(self, run: PacketRun) -> None:
        for obs in self.packet_observers:
            obs.on_packets_start(run)

    def on_packets_settled(self, run: PacketRun, outcome: PacketOutcome, rows: int) -> None:
        for obs in self.packet_observers:
            obs.on_packets_settled(run, outcome, rows)

    def on_packet_start(self, run: PacketRun, key: int) -> None:
        for obs in self._starters:
            obs.on_packet_start(run, key)

    def on_packets_end(self, run: PacketRun, batch: PacketBatch) -> None:
        for obs in self.packet_observers:
            obs.on_packets_end(run, batch)

    def on_packets_done(self, run: PacketRun) -> None:
        for obs in self.packet_observers:
            obs.on_packets_done(run)

    def on_packets_commit(self, run: PacketRun) -> Callable[[], None] | None:
        afters = [after for after in (hook(run) for hook in self._committers) if after is not None]
        if len(afters) < 2:
            return afters[0] if afters else None

        def after_all() -> None:
            for after in afters:
                after()

        return after_all

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
