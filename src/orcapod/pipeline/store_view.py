"""``StoreView``: read a store - its pipelines, nodes, rows, logs and runs - without user code.

    view = StoreView("./store")              # a store directory, or any ArrowDatabase
    view.pipelines()                         # [PipelineInfo(name="study", ...)]
    view.nodes()                             # [NodeInfo(label="compute_bmi", status="ok", ...)]
    view.node_rows("compute_bmi", limit=10)  # the node's current rows (Arrow table)
    view.logs("compute_bmi", failed=True)    # captured output and tracebacks (Arrow table)
    view.runs()                              # [RunInfo(run_id=..., status="partial", ...)]

Everything is read from the store's own tables (``orcapod.pipeline.store_layout``): the
catalog (``_catalog``) names every pipeline's nodes, their types, tables, schemas, upstream
edges, last run and row counts; the run history (``_runs``) one row per run; the logs one
row per executed packet. Nothing imports the user's functions, so a store can be inspected
where its code is not installed. ``pipelines()``, ``nodes()`` and ``runs()`` read only the
catalog and the run history (small tables), never a node's records, so they answer quickly
however large the nodes are.

A node is named by its label, or ``PIPELINE.LABEL`` when several pipelines of the store
have a node of that label; an unknown or ambiguous name raises ``NodeNotFoundError`` listing
the choices.

Decisions:

* ``node_rows`` gives a function node's CURRENT rows: its pipeline records joined with their
  results (record ``__packet_id`` = result ``__record_id``; matched by position, as Arrow's
  hash join cannot carry array columns), without the records the node's last complete run
  found superseded (``superseded_entries``: the entries its input no longer held - a row
  deleted, an input changed back to an earlier value, shifted positional source ids; kept
  by the run in the catalog, ``orcapod.nodes.membership``), then the newest record per tag
  (user tags and system tags) when a tag was recorded more than once (its input changed),
  filtered rows left out; columns: the tag columns, then the output columns, sorted by the
  tags. So it equals ``node.as_table()`` after that run. A store whose runs recorded no
  membership (written by an older orcapod, or every run stopped) shows the newest record
  per tag: a tag whose input changed back to an earlier value then shows the newer record.
  An operator node shows the rows it logged (``CacheMode.LOG``); a source node keeps no table
  in the store (``node_rows`` says so).
* ``logs`` covers every table the node's logs were written to (a node whose code changed has
  one per code version), newest first.
* A store a pipeline never ran in has an empty catalog: every list is empty.
* A pipeline's nodes are those its newest run cataloged (every run catalogs all of its nodes
  when it starts): a node removed from the pipeline's code is no longer listed by
  ``nodes()`` (so not by ``orcapod status``, ``graph`` or the web view), while
  ``nodes(removed=True)`` lists it too, and ``node(name)`` still finds it, so its stored
  rows stay readable (``orcapod show``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orcapod._arrow_without_pandas import column_numpy
from orcapod.databases import ArrowDatabase, DeltaTableDatabase
from orcapod.errors import NodeNotFoundError, PipelineError
from orcapod.nodes.membership import superseded_entries, without_superseded
from orcapod.pipeline.run_liveness import live_status
from orcapod.pipeline.store_layout import CATALOG_PATH, RUNS_PATH, Status, counts_of, loads

__all__ = ["NodeInfo", "PipelineInfo", "RunInfo", "StoreView"]

_PACKET_ID = "__packet_id"
_RECORD_ID = "__record_id"
_RECORDED_AT = "__recorded_at"
_SUPERSEDED = "superseded"


@dataclass(frozen=True)
class NodeInfo:
    """A node as the catalog describes it after the last run that touched it."""

    pipeline: str
    label: str
    node_type: str  #: "source", "operator" or "function"
    tables: Mapping[str, tuple[str, ...]]  #: kind ("records", "results", ...) -> store path
    tag_schema: Mapping[str, str]  #: tag column -> type
    packet_schema: Mapping[str, str]  #: packet (output) column -> type
    upstreams: tuple[str, ...]  #: labels of the nodes it reads
    last_run: str | None  #: run id
    updated_at: datetime | None
    rows: int | None  #: output rows after the last run (None: not run yet)
    computed: int = 0
    reused: int = 0
    filtered: int = 0
    failed: int = 0
    status: str = "not run"  #: ok, failed, partial, error, interrupted, running, not run
    function: str | None = None  #: a function node's function name
    code_hash: str | None = None
    node_hash: str | None = None

    @property
    def name(self) -> str:
        """``PIPELINE.LABEL``: unambiguous in any store."""
        return f"{self.pipeline}.{self.label}"


@dataclass(frozen=True)
class PipelineInfo:
    name: str
    nodes: tuple[str, ...]  #: labels, in run order
    last_run: str | None
    last_run_at: datetime | None
    status: str  #: the last run's status
    error: str | None = None  #: the last run's error, when an exception stopped it


@dataclass(frozen=True)
class RunInfo:
    """One run of a pipeline (the latest state the run history holds)."""

    run_id: str
    pipeline: str
    started_at: datetime | None
    ended_at: datetime | None  #: None while running, or when the run was interrupted
    status: str  #: ok, failed, partial, error, interrupted, running
    computed: int
    reused: int
    filtered: int
    failed: int
    nodes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  #: label -> counts
    code: Mapping[str, str] = field(default_factory=dict)  #: function node -> code hash
    orcapod_version: str | None = None
    host: str | None = None
    error: str | None = None


def _open(store: str | os.PathLike[str] | ArrowDatabase) -> ArrowDatabase:
    if isinstance(store, ArrowDatabase):
        return store
    raw = os.fspath(store)
    if "://" not in raw and not Path(raw).is_dir():
        raise PipelineError(
            f"no store at {raw!r}: pass the directory given to DeltaTableDatabase(...) by the "
            "pipeline (or set ORCAPOD_STORE)"
        )
    return DeltaTableDatabase(raw, create_base_path=False)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _pylist(table: pa.Table) -> list[dict[str, Any]]:
    """``table.to_pylist()``, with microsecond UTC timestamps converted here: pyarrow's own
    conversion of a timestamp imports pandas (~0.3 s), which ``orcapod status`` must not pay."""
    columns: dict[str, list[Any]] = {}
    for field_, column in zip(table.schema, table.columns, strict=True):
        if field_.type == pa.timestamp("us", tz="UTC"):
            micros = pc.cast(column, pa.int64()).to_pylist()
            columns[field_.name] = [
                None if m is None else _EPOCH + timedelta(microseconds=m) for m in micros
            ]
        else:
            columns[field_.name] = column.to_pylist()
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _latest(table: pa.Table | None, keys: Sequence[str], order: str) -> list[dict[str, Any]]:
    """Rows of ``table`` as dicts, the newest (by ``order``) per ``keys``."""
    if table is None or table.num_rows == 0:
        return []
    rows = _pylist(table.sort_by([(order, "descending")]))
    seen: set[tuple[Any, ...]] = set()
    out = []
    for row in rows:
        key = tuple(row[k] for k in keys)
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


class StoreView:
    """Read-only access to a store (see the module docstring)."""

    def __init__(self, store: str | os.PathLike[str] | ArrowDatabase) -> None:
        self._db = _open(store)

    @property
    def database(self) -> ArrowDatabase:
        return self._db

    def __repr__(self) -> str:
        return f"StoreView({self._db!r})"

    # -- catalog -------------------------------------------------------------------------------

    def _catalog_rows(self, removed: bool = False) -> list[dict[str, Any]]:
        """Each node's newest catalog row; without ``removed``, only the nodes of each
        pipeline's newest run (module docstring)."""
        table = self._db.get_all_records(CATALOG_PATH)
        rows = _latest(table, ("pipeline", "label"), "updated_at")
        if removed:
            return rows
        newest: dict[str, tuple[Any, Any]] = {}  # pipeline -> (updated_at, run_id)
        for row in rows:
            if row.get("status") == Status.STALE:  # written by store maintenance, not a run
                continue
            stamp = (row.get("updated_at") or _EPOCH, row.get("run_id"))
            if row["pipeline"] not in newest or stamp[0] > newest[row["pipeline"]][0]:
                newest[row["pipeline"]] = stamp
        return [
            r
            for r in rows
            if r["pipeline"] not in newest or r.get("run_id") == newest[r["pipeline"]][1]
        ]

    def nodes(self, pipeline: str | None = None, removed: bool = False) -> list[NodeInfo]:
        """Every node of the store (or of ``pipeline``), pipeline by pipeline in run order:
        the nodes of each pipeline's newest run; ``removed``: also those an earlier run of
        the pipeline had and its newest run no longer has (module docstring)."""
        rows = self._catalog_rows(removed)
        if pipeline is not None:
            rows = [r for r in rows if r["pipeline"] == pipeline]
        rows.sort(key=lambda r: (r["pipeline"], r.get("position") or 0))
        return [_node_info(r) for r in rows]

    def pipelines(self) -> list[PipelineInfo]:
        """Every pipeline the store's catalog knows, by name."""
        by_pipeline: dict[str, list[NodeInfo]] = {}
        for node in self.nodes():
            by_pipeline.setdefault(node.pipeline, []).append(node)
        latest = {r.pipeline: r for r in reversed(self.runs())}  # newest wins
        out = []
        for name in sorted(by_pipeline):
            run = latest.get(name)
            out.append(
                PipelineInfo(
                    name=name,
                    nodes=tuple(n.label for n in by_pipeline[name]),
                    last_run=None if run is None else run.run_id,
                    last_run_at=None if run is None else run.started_at,
                    status="not run" if run is None else run.status,
                    error=None if run is None else run.error,
                )
            )
        return out

    def node(self, name: str) -> NodeInfo:
        """The node named ``name`` (its label, or ``PIPELINE.LABEL``): a node of a pipeline's
        newest run, else one a pipeline no longer has (its tables are still readable)."""
        current = self.nodes()
        if any(name in (n.label, n.name) for n in current):
            return self._named(name, current)
        return self._named(name, self.nodes(removed=True))

    def _named(self, name: str, nodes: list[NodeInfo]) -> NodeInfo:
        exact = [n for n in nodes if n.label == name]
        if len(exact) == 1:
            return exact[0]
        qualified = [n for n in nodes if n.name == name]
        if len(qualified) == 1:
            return qualified[0]
        if len(exact) > 1:
            choices = ", ".join(n.name for n in exact)
            raise NodeNotFoundError(
                f"several pipelines of the store have a node {name!r}: name one of {choices}"
            )
        known = ", ".join(n.name for n in nodes) or "none: no pipeline has run in this store"
        raise NodeNotFoundError(f"no node {name!r} in the store; nodes (PIPELINE.LABEL): {known}")

    # -- rows ----------------------------------------------------------------------------------

    def node_rows(self, name: str, limit: int | None = None) -> pa.Table:
        """The node's current rows: tag columns then output columns (module docstring)."""
        return self.rows_of(self.node(name), limit)

    def rows_of(self, node: NodeInfo, limit: int | None = None) -> pa.Table:
        """``node_rows`` of a node described by ``node`` (from the catalog, or built by the
        caller, e.g. a loaded pipeline's read-only node from its saved description)."""
        records_path = node.tables.get("records")
        if records_path is None:
            raise PipelineError(
                f"node {node.name!r} is a {node.node_type} node that keeps no table in the "
                "store; its rows are those of the data it reads"
            )
        if node.node_type != "function":
            table = self._db.get_all_records(records_path)
            return _finish(table if table is not None else pa.table({}), node, limit)
        records = self._db.get_all_records(records_path, record_id_column=_RECORD_ID)
        if records is None:
            return pa.table({c: pa.array([], pa.null()) for c in (*node.tag_schema,)})
        superseded = self.superseded_entries(records_path, node.pipeline, node.label)
        if superseded is not None:
            records = without_superseded(records, _RECORD_ID, superseded)
        records = _current(records, node)
        records = records.filter(pc.is_valid(records.column(_PACKET_ID)))
        results_path = node.tables.get("results")
        if results_path is None or records.num_rows == 0:
            return _finish(records, node, limit)
        wanted = pc.unique(records.column(_PACKET_ID))
        results = self._db.get_records_by_ids(results_path, wanted, record_id_column=_RECORD_ID)
        if results is None:
            return _finish(records.slice(0, 0), node, limit)
        outputs = [c for c in node.packet_schema if c in results.column_names]
        left = records.select([c for c in records.column_names if c not in outputs])
        return _finish(_with_results(left, results.select([_RECORD_ID, *outputs])), node, limit)

    def superseded_entries(
        self,
        records_path: Sequence[str],
        pipeline: str | None = None,
        label: str | None = None,
    ) -> pa.Array | None:
        """Entry ids of the records at ``records_path`` (a function node's records table)
        that the newest run recording membership found superseded: its input no longer held
        them (``orcapod.nodes.membership``); empty when none were. None when no run of the
        node (``pipeline`` / ``label``; None: any node with that records table) recorded
        membership for that table: a store written before membership was recorded, or runs
        that all stopped."""
        table = self._db.get_all_records(CATALOG_PATH)
        if table is None or _SUPERSEDED not in table.column_names:
            return None
        wanted = list(records_path)
        keep = pc.is_valid(table.column(_SUPERSEDED))
        for column, value in (("pipeline", pipeline), ("label", label)):
            if value is not None:
                keep = pc.and_(keep, pc.equal(table.column(column), value))
        newest: dict[str, Any] | None = None
        for row in _pylist(table.filter(keep)):
            if loads(row.get("tables"), {}).get("records") != wanted:
                continue
            if newest is None or (row["updated_at"] or _EPOCH) > (newest["updated_at"] or _EPOCH):
                newest = row
        if newest is None:
            return None
        snapshot = str(newest[_SUPERSEDED])
        if not snapshot:
            return pa.array([], pa.large_string())
        path = loads(newest.get("tables"), {}).get("superseded")
        return None if not path else superseded_entries(self._db, tuple(path), snapshot)

    def logs(self, name: str, failed: bool = False, run_id: str | None = None) -> pa.Table:
        """The node's log rows (one per executed packet), newest first; ``failed``: only
        failed calls; ``run_id``: only that run's. Empty (no columns) when there are none."""
        node = self.node(name)
        constraints: dict[str, object] = {}
        if failed:
            constraints["__success"] = False
        if run_id is not None:
            constraints["__run_id"] = run_id
        parts = []
        for path in self._log_paths(node):
            part = self._db.get_records_with_column_value(path, constraints)
            if part is not None:
                parts.append(part)
        if not parts:
            return pa.table({})
        table = pa.concat_tables(parts, promote_options="permissive")
        return table.sort_by([("__timestamp", "descending")])

    def _log_paths(self, node: NodeInfo) -> list[tuple[str, ...]]:
        table = self._db.get_all_records(CATALOG_PATH)
        if table is None:
            return []
        paths: list[tuple[str, ...]] = []
        for row in table.select(["pipeline", "label", "tables"]).to_pylist():
            if row["pipeline"] == node.pipeline and row["label"] == node.label:
                path = loads(row["tables"], {}).get("logs")
                if path and tuple(path) not in paths:
                    paths.append(tuple(path))
        return paths

    # -- runs ----------------------------------------------------------------------------------

    def runs(self, pipeline: str | None = None) -> list[RunInfo]:
        """The run history, newest first (each run in its latest recorded state)."""
        rows = _latest(self._db.get_all_records(RUNS_PATH), ("run_id",), "phase")
        if pipeline is not None:
            rows = [r for r in rows if r["pipeline"] == pipeline]
        rows.sort(key=lambda r: r["started_at"], reverse=True)
        return [_run_info(r) for r in rows]


def _node_info(row: Mapping[str, Any]) -> NodeInfo:
    tables = {k: tuple(v) for k, v in loads(row.get("tables"), {}).items() if v}
    counts = counts_of(row)
    return NodeInfo(
        pipeline=row["pipeline"],
        label=row["label"],
        node_type=row["node_type"],
        tables=tables,
        tag_schema=loads(row.get("tag_schema"), {}),
        packet_schema=loads(row.get("packet_schema"), {}),
        upstreams=tuple(loads(row.get("upstreams"), [])),
        last_run=row.get("run_id"),
        updated_at=row.get("updated_at"),
        rows=row.get("rows"),
        status=live_status(row.get("status") or "not run", row.get("process")),
        function=row.get("function"),
        code_hash=row.get("code_hash"),
        node_hash=row.get("node_hash"),
        **counts,
    )


def _run_info(row: Mapping[str, Any]) -> RunInfo:
    return RunInfo(
        run_id=row["run_id"],
        pipeline=row["pipeline"],
        started_at=row.get("started_at"),
        ended_at=row.get("ended_at"),
        status=live_status(row.get("status") or "running", row.get("process")),
        nodes=loads(row.get("nodes"), {}),
        code=loads(row.get("code"), {}),
        orcapod_version=row.get("orcapod_version"),
        host=row.get("host"),
        error=row.get("error"),
        **counts_of(row),
    )


def _current(records: pa.Table, node: NodeInfo) -> pa.Table:
    """The newest record per tag (user tags and system tags)."""
    if _RECORDED_AT not in records.column_names:
        return records
    keys = [c for c in records.column_names if c in node.tag_schema or c.startswith("_tag_")]
    if not keys:
        return records
    indexed = records.append_column("__row", pa.array(range(records.num_rows), pa.int64()))
    ordered = indexed.sort_by([(_RECORDED_AT, "descending")])
    newest = ordered.group_by(keys, use_threads=False).aggregate([("__row", "first")])
    rows = np.sort(column_numpy(newest.column("__row_first")))
    return records.take(pa.array(rows, pa.int64()))


def _with_results(records: pa.Table, results: pa.Table) -> pa.Table:
    """``records`` with the columns of ``results`` appended: the result whose ``__record_id``
    is the record's ``__packet_id``; a record without one is left out (an inner join).

    Done by position (``index_in`` then ``take``) rather than ``Table.join``: Arrow's hash
    join cannot carry extension-typed columns (fixed-shape tensors, orcapod's ndarrays)."""
    positions = pc.index_in(records.column(_PACKET_ID), value_set=results.column(_RECORD_ID))
    found = pc.is_valid(positions)
    records = records.filter(found)
    taken = results.take(positions.filter(found))
    for name in taken.column_names:
        if name != _RECORD_ID:
            records = records.append_column(taken.schema.field(name), taken.column(name))
    return records


def _finish(table: pa.Table, node: NodeInfo, limit: int | None) -> pa.Table:
    tags = [c for c in node.tag_schema if c in table.column_names]
    outputs = [c for c in node.packet_schema if c in table.column_names and c not in tags]
    table = table.select([*tags, *outputs])
    if tags and table.num_rows:
        table = table.sort_by([(c, "ascending") for c in tags])
    if limit is not None:
        table = table.slice(0, limit)
    return table
