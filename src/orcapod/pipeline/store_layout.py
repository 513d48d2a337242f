"""The store's own tables: the catalog, the run history and the per-node logs.

Written by pipeline runs (``orcapod.pipeline.run_recorder``, ``orcapod.pipeline.log_observer``)
and read without any user code by ``orcapod.pipeline.store_view``. Paths are relative to the
store (the database given to ``Pipeline``); the store's shared areas start with ``_``, which
pipeline names may not.

* ``_catalog``: one row per node and run phase (written when a run starts and again when it
  ends): ``pipeline``, ``label``, ``node_type``, ``tables`` (JSON: kind -> path segments of
  the node's tables in the store: ``records``, ``results``, ``failures``, ``logs``,
  ``superseded``),
  ``tag_schema`` / ``packet_schema`` (JSON: column -> type), ``upstreams`` (JSON list of
  labels: the graph's edges), ``function`` / ``code_hash`` (function nodes), ``node_hash``
  (pipeline hash), ``run_id``, ``updated_at``, the last run's ``rows`` / ``computed`` /
  ``reused`` / ``filtered`` / ``failed`` and ``status``, ``process`` (as in ``_runs``),
  ``superseded`` (a function node's run that ended normally over its whole input: "" when
  its input held every record of its records table, else the snapshot id of those it no
  longer held, kept in ``tables["superseded"]``, the pipeline's ``_superseded`` table: rows
  ``snapshot``, ``entry_id``; null when unknown - a stopped run, an older store;
  ``orcapod.nodes.membership``). The newest row per (pipeline, label) describes the node
  now.
* ``_runs``: one row per run and phase (``running`` at the start, the outcome at the end; a
  run with only its ``running`` row was killed, or is still running: ``run_liveness`` tells
  which when it can): ``run_id``, ``pipeline``, ``started_at``, ``ended_at``, ``status``,
  totals ``computed`` / ``reused`` / ``filtered`` / ``failed``, ``nodes`` (JSON: label ->
  type, counts and status), ``code`` (JSON: function node label -> code hash),
  ``orcapod_version``, ``host``, ``pid`` (the running process's id), ``process`` (the
  process as ``orcapod.functions.engine.holders.this_process`` names it: machine, pid and
  start time; "" where that is unknown), ``error``. A run that stopped records the counts of
  what it stored before it stopped.
* ``<pipeline>/_logs/<node record path>``: one row per executed packet (see ``LOG_COLUMNS``)
  plus the user tag columns of the row that asked for it.

Status words: ``ok``; ``failed`` (some of the node's own rows failed); ``partial`` (the
node's rows are fine but a node upstream of it has failed rows, so it saw only part of its
input); ``error`` (the node raised and stopped the run); ``interrupted`` (the run was
stopped by ``KeyboardInterrupt`` - Ctrl-C - or cancelled, or its process is gone: killed while
it ran, ``run_liveness``); ``running``; ``not run``; ``stale`` (store maintenance deleted
some or all of the node's stored rows since its last run - ``orcapod.pipeline.maintenance``
writes that row, with ``rows`` null; the next run computes them again).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "CATALOG_PATH",
    "LOGS_AREA",
    "LOG_COLUMNS",
    "RUNS_PATH",
    "Status",
    "dumps",
    "loads",
]

CATALOG_PATH: tuple[str, ...] = ("_catalog",)
RUNS_PATH: tuple[str, ...] = ("_runs",)
#: a pipeline's logs live at ``(*pipeline name, LOGS_AREA, *node record path)``
LOGS_AREA = "_logs"

#: the columns of a log row besides the user tag columns
LOG_COLUMNS: tuple[str, ...] = (
    "__log_id",
    "__run_id",
    "__node_label",
    "__node_hash",
    "__input_packet_hash",
    "__outcome",
    "__timestamp",
    "__duration",
    "__success",
    "__stdout",
    "__stderr",
    "__python_logs",
    "__traceback",
    "__executor_type",
    "__host",
)


class Status:
    """The status words of nodes and runs (plain strings in the tables)."""

    OK = "ok"
    FAILED = "failed"
    PARTIAL = "partial"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    RUNNING = "running"
    NOT_RUN = "not run"
    STALE = "stale"


def dumps(value: Any) -> str:
    """JSON for the tables' JSON columns (mappings keep their order: schemas are ordered)."""
    return json.dumps(value, default=str)


def loads(text: str | None, default: Any) -> Any:
    """A JSON column's value (``default`` when null or empty)."""
    if not text:
        return default
    return json.loads(text)


def counts_of(mapping: Mapping[str, Any] | None) -> dict[str, int]:
    mapping = mapping or {}
    return {k: int(mapping.get(k) or 0) for k in ("computed", "reused", "filtered", "failed")}
