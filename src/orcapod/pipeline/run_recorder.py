"""``RunRecorder``: writes a pipeline's run history and catalog rows to its store.

``Pipeline.run`` adds one to every run. When the run starts it writes the run's ``running``
row to ``_runs`` and one ``_catalog`` row per node (label, type, tables, schemas, upstream
labels, function and code identity); when the run ends (also after a node raised) it writes
the run's final row (status, totals, per-node counts and status, each function node's code
hash, orcapod version, host, the error if any) and the nodes' catalog rows again with their
counts, row numbers and status. Both rows name the process that runs (``pid``, ``process``:
``orcapod.pipeline.run_liveness`` tells from them whether a ``running`` run still runs).
Each node's entry in the run's ``nodes`` also has ``seconds``: the wall time from the node's
start to its end (absent for a node that did not end). Layout and status words:
``orcapod.pipeline.store_layout``. Both tables are flushed at once, so another process
(``orcapod status``) sees a run while it runs.

Decisions:

* A node's ``rows`` is the number of rows it outputs after the run (computed plus reused),
  unknown (null) for a node that stopped; a node that did not run in a run that stopped keeps
  the status ``not run`` for that run.
* A run stopped by any exception is recorded, whatever its class: a ``KeyboardInterrupt``
  (Ctrl-C) or a cancellation (``asyncio.CancelledError``) makes the node and the run
  ``interrupted``, any other exception (``SystemExit`` included) ``error``; ``error`` holds
  the first one's class and message. The exception itself propagates unchanged (the
  orchestrator only reports it).
* A node that stopped is recorded with the counts of what it did before (rows stored or
  failed, ``orcapod.nodes.node_run.partial_summary``), so a stopped run's totals say how much
  work was kept; null where they are unknown.
* A function node whose run ended normally over its whole input has its membership in its
  end-of-run catalog row (``superseded``: "" none of its records superseded, else the
  snapshot of those that are, ``orcapod.nodes.membership``; null when unknown), which the
  store's readers use to leave superseded records out.
* Nothing is read from the store here: the recorder only appends.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

import orcapod
from orcapod._lazy import lazy_module
from orcapod.databases import ArrowDatabase
from orcapod.functions.validation import type_name
from orcapod.nodes.membership import SUPERSEDED_PATH
from orcapod.nodes.node_run import partial_summary
from orcapod.nodes.summary import NodeRunSummary, NodeType
from orcapod.pipeline.observers import NoOpObserver
from orcapod.pipeline.run_liveness import process_identity
from orcapod.pipeline.run_summary import PipelineRunSummary
from orcapod.pipeline.store_layout import CATALOG_PATH, LOGS_AREA, RUNS_PATH, Status, dumps

if TYPE_CHECKING:
    import asyncio
else:
    asyncio = lazy_module("asyncio")

__all__ = ["NodeEntry", "RunRecorder"]

_HOST = socket.gethostname()
_STRING = pa.large_string()
_TIME = pa.timestamp("us", tz="UTC")


def _orcapod_version() -> str:
    return str(orcapod.__version__)


def _is_interrupt(error: BaseException) -> bool:
    """Did ``error`` interrupt the run (Ctrl-C, a cancellation) rather than fail it?"""
    return isinstance(error, (KeyboardInterrupt, asyncio.CancelledError))


def _message(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _schema_text(schema: Mapping[str, Any]) -> dict[str, str]:
    return {name: type_name(tp) for name, tp in schema.items()}


class NodeEntry:
    """What the catalog says of one node (built from the compiled node)."""

    def __init__(self, pipeline: Any, label: str, position: int) -> None:
        graph = pipeline.graph_state
        node = graph[label]
        prefix = tuple(pipeline.name_parts)
        self.label = label
        self.position = position
        self.node_type: NodeType = graph.node_type(label)
        self.upstreams = list(graph.upstream_labels(label))
        self.tables: dict[str, list[str]] = {}
        self.function: str | None = None
        self.code_hash: str | None = None
        self.node_hash: str | None = None
        tag_schema: Mapping[str, Any] = {}
        packet_schema: Mapping[str, Any] = {}
        if getattr(node, "runnable", False):
            tag_schema, packet_schema = node.output_schema()
            self.node_hash = node.pipeline_hash().to_string()
        if self.node_type is NodeType.FUNCTION and getattr(node, "runnable", False):
            path = list(node.record_path)
            pf = node.packet_function
            self.function = pf.canonical_function_name
            self.code_hash = pf.code_hash
            self.tables = {
                "records": [*prefix, *path],
                "failures": [*prefix, "_failures", *path],
                "logs": [*prefix, LOGS_AREA, *path],
                "superseded": [*prefix, *SUPERSEDED_PATH],
            }
            if pipeline.result_database is None:  # the store's shared results area
                self.tables["results"] = ["_result", *pf.uri]
        elif (
            self.node_type is NodeType.OPERATOR
            and getattr(node, "runnable", False)
            and str(getattr(node, "cache_mode", "off")) != "off"
        ):
            self.tables = {"records": [*prefix, *node.record_path]}
        self.tag_schema = _schema_text(tag_schema)
        self.packet_schema = _schema_text(packet_schema)


class RunRecorder(NoOpObserver):
    """Writes ``_runs`` and ``_catalog`` rows for the runs of ``pipeline`` (module docstring)."""

    def __init__(self, pipeline: Any, database: ArrowDatabase) -> None:
        self._pipeline = pipeline
        self._db = database
        self._lock = threading.Lock()
        self._entries: list[NodeEntry] = []
        self._started: datetime | None = None
        self._summaries: dict[str, NodeRunSummary] = {}
        self._errors: dict[str, BaseException] = {}
        self._node_started: dict[str, float] = {}
        self._node_seconds: dict[str, float] = {}
        self._pid: int | None = None
        self._process: str | None = None

    def on_run_start(self, run_id: str, pipeline_name: str) -> None:
        self._started = datetime.now(UTC)
        self._pid, self._process = process_identity()
        self._summaries.clear()
        self._errors.clear()
        self._node_started.clear()
        self._node_seconds.clear()
        labels = list(self._pipeline.graph_state.labels())
        self._entries = [NodeEntry(self._pipeline, label, i) for i, label in enumerate(labels)]
        self._write(run_id, 0, Status.RUNNING, None, {})

    def on_node_start(self, label: str, node_type: NodeType) -> None:
        with self._lock:
            self._node_started[label] = time.perf_counter()

    def on_node_end(self, label: str, summary: NodeRunSummary) -> None:
        with self._lock:
            self._summaries[label] = summary
            started = self._node_started.get(label)
            if started is not None:
                self._node_seconds[label] = round(time.perf_counter() - started, 6)

    def on_node_error(self, label: str, error: BaseException) -> None:
        partial = partial_summary(error)
        with self._lock:
            self._errors[label] = error
            if partial is not None and label not in self._summaries:
                self._summaries[label] = partial  # what it stored before it stopped

    def on_run_end(self, run_id: str, summary: PipelineRunSummary | None) -> None:
        with self._lock:
            summaries = dict(self._summaries)
            errors = dict(self._errors)
            seconds = dict(self._node_seconds)
        types = {e.label: e.node_type for e in self._entries}
        upstreams = {e.label: e.upstreams for e in self._entries}
        if summary is None:
            ordered = {e.label: summaries[e.label] for e in self._entries if e.label in summaries}
            summary = PipelineRunSummary(self._pipeline.name, ordered, types, upstreams)
        statuses: dict[str, str] = {}
        for entry in self._entries:
            if entry.label in errors:
                node_error = errors[entry.label]
                statuses[entry.label] = (
                    Status.INTERRUPTED if _is_interrupt(node_error) else Status.ERROR
                )
            elif entry.label in summary:
                statuses[entry.label] = summary.status(entry.label)
            else:
                statuses[entry.label] = Status.NOT_RUN
        error = next(iter(errors.values()), None)  # the first: the one that stopped the run
        if error is not None:
            status = Status.INTERRUPTED if _is_interrupt(error) else Status.ERROR
        elif summary.failed:
            status = Status.FAILED
        else:
            status = Status.OK
        message = None if error is None else _message(error)
        nodes = {
            e.label: {
                "type": e.node_type.value,
                "status": statuses[e.label],
                **_counts(summary.get(e.label)),
                **({"seconds": seconds[e.label]} if e.label in seconds else {}),
            }
            for e in self._entries
        }
        superseded = {label: s.superseded for label, s in summaries.items() if label not in errors}
        self._write(run_id, 1, status, message, nodes, summary, superseded)

    def _write(
        self,
        run_id: str,
        phase: int,
        status: str,
        error: str | None,
        nodes: Mapping[str, Mapping[str, Any]],
        summary: PipelineRunSummary | None = None,
        superseded: Mapping[str, str | None] | None = None,
    ) -> None:
        now = datetime.now(UTC)
        ended = now if phase else None
        pipeline = self._pipeline.name
        totals = _counts(summary) if summary is not None else dict.fromkeys(_COUNTS)
        run = {
            "__record_id": f"{run_id}:{phase}",
            "run_id": run_id,
            "pipeline": pipeline,
            "phase": phase,
            "started_at": self._started,
            "ended_at": ended,
            "status": status,
            **totals,
            "nodes": dumps(nodes),
            "code": dumps({e.label: e.code_hash for e in self._entries if e.code_hash}),
            "orcapod_version": _orcapod_version(),
            "host": _HOST,
            "pid": self._pid,
            "process": self._process,
            "error": error,
        }
        self._db.add_records(RUNS_PATH, _table([run], _RUN_TYPES), "__record_id")
        rows = []
        for e in self._entries:
            node = nodes.get(e.label, {})
            counts = {k: node.get(k) for k in _COUNTS}
            output = None
            if phase and node.get("status") not in _STOPPED:
                output = int(node.get("computed") or 0) + int(node.get("reused") or 0)
            rows.append(
                {
                    "__record_id": f"{run_id}:{phase}:{pipeline}:{e.label}",
                    "pipeline": pipeline,
                    "label": e.label,
                    "position": e.position,
                    "node_type": e.node_type.value,
                    "tables": dumps(e.tables),
                    "tag_schema": dumps(e.tag_schema),
                    "packet_schema": dumps(e.packet_schema),
                    "upstreams": dumps(e.upstreams),
                    "function": e.function,
                    "code_hash": e.code_hash,
                    "node_hash": e.node_hash,
                    "run_id": run_id,
                    "updated_at": now,
                    "rows": output,
                    **counts,
                    "status": node.get("status", status),
                    "process": self._process,
                    "superseded": (superseded or {}).get(e.label),
                }
            )
        if rows:
            self._db.add_records(CATALOG_PATH, _table(rows, _CATALOG_TYPES), "__record_id")
        self._db.flush()


_COUNTS = ("computed", "reused", "filtered", "failed")
#: node statuses whose output rows after the run are unknown
_STOPPED = (Status.NOT_RUN, Status.ERROR, Status.INTERRUPTED)


def _counts(summary: NodeRunSummary | PipelineRunSummary | None) -> dict[str, int | None]:
    if summary is None:
        return dict.fromkeys(_COUNTS)
    return {k: int(getattr(summary, k)) for k in _COUNTS}


_INT = pa.int64()
_RUN_TYPES: dict[str, pa.DataType] = {
    "__record_id": _STRING,
    "run_id": _STRING,
    "pipeline": _STRING,
    "phase": _INT,
    "started_at": _TIME,
    "ended_at": _TIME,
    "status": _STRING,
    **dict.fromkeys(_COUNTS, _INT),
    "nodes": _STRING,
    "code": _STRING,
    "orcapod_version": _STRING,
    "host": _STRING,
    "pid": _INT,
    "process": _STRING,
    "error": _STRING,
}
_CATALOG_TYPES: dict[str, pa.DataType] = {
    "__record_id": _STRING,
    "pipeline": _STRING,
    "label": _STRING,
    "position": _INT,
    "node_type": _STRING,
    "tables": _STRING,
    "tag_schema": _STRING,
    "packet_schema": _STRING,
    "upstreams": _STRING,
    "function": _STRING,
    "code_hash": _STRING,
    "node_hash": _STRING,
    "run_id": _STRING,
    "updated_at": _TIME,
    "rows": _INT,
    **dict.fromkeys(_COUNTS, _INT),
    "status": _STRING,
    "process": _STRING,
    "superseded": _STRING,
}


def _table(rows: list[dict[str, Any]], types: Mapping[str, pa.DataType]) -> pa.Table:
    columns = {name: pa.array([r[name] for r in rows], dtype) for name, dtype in types.items()}
    return pa.table(columns)
