"""``ProgressObserver``: a rich progress bar per running node.

A function node's bar counts its input rows settled so far out of its total, with the
computed / reused / filtered / failed counts, the rate (rows per second) and the time left;
it advances as the engine hands over its packet events (reused and filtered rows in bulk,
computed ones in batches), so drawing costs nothing per row. Source and operator nodes show
one line that ends with their row count. Finished nodes keep their final line unless
``transient``.

``Pipeline.run`` adds one when stderr is a terminal (and ``progress=True``, the default);
when stderr is not a terminal (a log file, CI, a pipe) nothing is drawn. Given a console
explicitly, it draws there whatever the console is.
"""

from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from orcapod.functions.engine.events import PacketBatch, PacketOutcome, PacketRun
from orcapod.nodes.summary import NodeRunSummary, NodeType
from orcapod.pipeline.observers import NoOpObserver
from orcapod.pipeline.run_summary import PipelineRunSummary

__all__ = ["ProgressObserver"]


class _RateColumn(ProgressColumn):
    """Rows per second (rich's estimate over the last seconds), e.g. ``1,250/s``."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text("", style="progress.data.speed")
        text = f"{speed:,.0f}/s" if speed >= 10 else f"{speed:.1f}/s"
        return Text(text, style="progress.data.speed")


def _counts_text(counts: dict[str, int]) -> str:
    text = f"{counts['computed']} computed, {counts['reused']} reused"
    if counts["filtered"]:
        text += f", {counts['filtered']} filtered"
    if counts["failed"]:
        text += f", [red]{counts['failed']} failed[/]"
    return text


class ProgressObserver(NoOpObserver):
    """Progress bars on a rich console (stderr by default); see the module docstring."""

    def __init__(self, console: Console | None = None, transient: bool = False) -> None:
        self._console = console if console is not None else Console(stderr=True)
        self._transient = transient
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._counts: dict[str, dict[str, int]] = {}
        self._types: dict[str, NodeType] = {}
        self._lock = threading.Lock()

    def on_run_start(self, run_id: str, pipeline_name: str) -> None:
        with self._lock:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"),
                _RateColumn(),
                TimeRemainingColumn(compact=True, elapsed_when_finished=True),
                console=self._console,
                transient=self._transient,
            )
            self._progress.start()
            self._tasks.clear()
            self._counts.clear()

    def on_node_start(self, label: str, node_type: NodeType) -> None:
        with self._lock:
            if self._progress is not None:
                self._counts[label] = {o.value: 0 for o in PacketOutcome}
                self._types[label] = node_type
                self._tasks[label] = self._progress.add_task(
                    f"{label} ({node_type.value})", total=None, counts=""
                )

    def on_packets_start(self, run: PacketRun) -> None:
        with self._lock:
            task = self._tasks.get(run.label)
            if self._progress is not None and task is not None:
                self._progress.update(task, total=run.total, completed=0)

    def _advance(self, label: str, rows: dict[str, int]) -> None:
        with self._lock:
            task = self._tasks.get(label)
            if self._progress is None or task is None:
                return
            counts = self._counts[label]
            for outcome, n in rows.items():
                counts[outcome] += n
            self._progress.update(task, advance=sum(rows.values()), counts=_counts_text(counts))

    def on_packets_settled(self, run: PacketRun, outcome: PacketOutcome, rows: int) -> None:
        self._advance(run.label, {outcome.value: rows})

    def on_packets_end(self, run: PacketRun, batch: PacketBatch) -> None:
        rows = {outcome.value: n for outcome, n in batch.rows_by_outcome().items()}
        self._advance(run.label, rows)

    def on_node_end(self, label: str, summary: NodeRunSummary) -> None:
        with self._lock:
            task = self._tasks.get(label)
            if self._progress is None or task is None:
                return
            counts = {
                "computed": summary.computed,
                "reused": summary.reused,
                "filtered": summary.filtered,
                "failed": summary.failed,
            }
            text = (
                _counts_text(counts)
                if self._types.get(label) is NodeType.FUNCTION
                else f"{summary.total} rows"
            )
            self._progress.update(task, total=summary.total, completed=summary.total, counts=text)

    def on_node_error(self, label: str, error: BaseException) -> None:
        with self._lock:
            task = self._tasks.get(label)
            if self._progress is not None and task is not None:
                self._progress.update(task, counts=f"[red]error[/] {type(error).__name__}: {error}")
                self._progress.stop_task(task)

    def on_run_end(self, run_id: str, summary: PipelineRunSummary | None) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
