"""Forgetting stored work so that the next run computes it again.

Three operations users ask for, on a pipeline over a local ``DeltaTableDatabase`` (the table
locations come from the nodes; other stores are refused with ``PipelineError``):

* :func:`forget_node`: delete one function node's pipeline records, its failure records and
  the results its records point to. The next run computes every row of the node again.
* :func:`forget_function`: delete every stored result of one function (by name) in a store,
  whatever pipeline computed it: every version, every output schema. The records that pointed
  to them find no result and are novel again, so every pipeline recomputes those rows.
* :func:`recompute_rows`: for chosen rows of a function node (``where``: tag values, e.g.
  ``{"subject": ["s1", "s2"]}``; a scalar means one value), delete their records and every
  stored result of their input packets, so the next run calls the function for exactly
  those rows (results of other rows are kept).

Decisions:

* Only table locations are needed, never the function: a function node loaded read-only
  (``Pipeline.load`` could not import its function) is maintained from the tables its saved
  entry names (``function.tables``: its records and, in the store's shared results area, its
  results; results in a separate ``result_database`` are found by the function's saved
  ``uri``). A file saved without them is refused, saying so.
* Results are deleted by input packet hash (``__input_packet_hash``), not only by the id a
  record points to: a result-cache lookup would otherwise find another stored result of the
  same input (say one computed with another executor) and reuse it.
* Results are shared by the pipelines of a store, so forgetting a node's or rows' results
  makes other pipelines that used them recompute those rows too. That is what "recompute"
  means for a shared cache; to keep them, give the pipeline its own ``result_database``.
* The catalog (``orcapod.pipeline.store_layout``: what ``orcapod status``, ``graph`` and
  ``ui`` show) is told: every node whose rows an operation deleted gets a new catalog row,
  a copy of its newest with ``rows`` unknown (null) and the status ``stale`` (its stored
  rows no longer are what its last run left), so it is not shown ``ok`` with rows it no
  longer has. The next run of its pipeline writes its row again. ``forget_function`` marks
  every node whose catalog entry reads that function's results area.
* Every delete is a Delta commit (history kept, readers of older versions unaffected); the
  space is freed by ``orcapod store compact --retention-hours 0``
  (``databases.maintenance.compact_store``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from orcapod.databases import ArrowDatabase, DeltaTableDatabase
from orcapod.databases.maintenance import delete_rows, find_tables
from orcapod.databases.scoped import ScopedArrowDatabase
from orcapod.errors import PipelineError
from orcapod.nodes.function_node import FunctionNode
from orcapod.nodes.summary import NodeType
from orcapod.pipeline.store_layout import CATALOG_PATH, Status, loads
from orcapod.types.columns import INPUT_PACKET_HASH, RECORD_ID

__all__ = ["Forgotten", "forget_function", "forget_node", "function_labels", "recompute_rows"]

RESULT_AREA = "_result"
FAILURES_AREA = "_failures"
_CATALOG_ID = "__record_id"


@dataclass(frozen=True)
class Forgotten:
    """How many stored rows an operation deleted."""

    records: int = 0
    failures: int = 0
    results: int = 0

    @property
    def any(self) -> bool:
        return bool(self.records or self.failures or self.results)


@dataclass(frozen=True)
class _Table:
    """One table of a node: a database and a path in it."""

    database: ArrowDatabase
    path: tuple[str, ...]

    def read(self) -> pa.Table | None:
        return self.database.get_all_records(self.path, record_id_column=RECORD_ID)

    def delete(self, column: str | None = None, values: Sequence[str] = ()) -> int:
        if column is None:
            return delete_rows(_table_dir(self.database, self.path))
        return delete_rows(_table_dir(self.database, self.path), column, list(values))


@dataclass(frozen=True)
class _NodeTables:
    """Where a function node's records, failures and results are."""

    label: str
    records: _Table
    failures: _Table
    results: _Table | None  #: None: not known (a saved entry that does not name it)


def _table_dir(database: ArrowDatabase, path: Sequence[str]) -> Path:
    """Where the Delta table of ``path`` in ``database`` (a view of a local Delta store) is."""
    full = tuple(path)
    while isinstance(database, ScopedArrowDatabase):
        full = database.prefix + full
        database = database.backend
    if not isinstance(database, DeltaTableDatabase) or "://" in database.base_path:
        raise PipelineError(
            f"store maintenance needs a local DeltaTableDatabase, got {database!r}; delete the "
            "rows with that store's own tools"
        )
    return Path(database.table_uri(full))


def function_labels(pipeline: Any) -> list[str]:
    """The labels of the pipeline's function nodes, loaded or read-only."""
    return [k for k in pipeline.nodes if pipeline.node_type(k) is NodeType.FUNCTION]


def _node_tables(pipeline: Any, label: str) -> _NodeTables:
    """The tables of the function node ``label``, loaded or read-only (module docstring)."""
    node = pipeline.nodes.get(label)
    if isinstance(node, FunctionNode):
        database = node.pipeline_database
        if database is None:
            raise PipelineError(f"node {label!r} has no pipeline database; nothing is stored")
        cache = node.result_cache
        return _NodeTables(
            label,
            _Table(database, node.record_path),
            _Table(database.at(FAILURES_AREA), node.record_path),
            _Table(cache.database, cache.record_path),
        )
    if node is None or pipeline.node_type(label) is not NodeType.FUNCTION:
        raise PipelineError(
            f"pipeline {pipeline.name!r} has no function node {label!r}; its function nodes: "
            f"{function_labels(pipeline)}"
        )
    return _saved_tables(pipeline, label, getattr(node, "descriptor", {}).get("function") or {})


def _saved_tables(pipeline: Any, label: str, function: Mapping[str, Any]) -> _NodeTables:
    """The tables of a read-only function node, from its saved entry ``function``."""
    tables = function.get("tables") or {}
    name = tuple(pipeline.name_parts)
    records = tuple(tables.get("records") or ())
    if records[: len(name)] != name or len(records) <= len(name):
        raise PipelineError(
            f"node {label!r} was loaded read-only ({pipeline.nodes[label].load_reason}) and its "
            "saved entry does not name its tables (a file saved by an older orcapod): make its "
            "function importable, or save the pipeline again with this orcapod"
        )
    store = pipeline.pipeline_database
    record_path = records[len(name) :]
    results = None
    if tables.get("results"):
        results = _Table(store, tuple(tables["results"]))
    elif pipeline.result_database is not None and function.get("uri"):
        results = _Table(pipeline.result_database, tuple(function["uri"]))
    return _NodeTables(
        label,
        _Table(store, records),
        _Table(store, (*name, FAILURES_AREA, *record_path)),
        results,
    )


def _delete_results(tables: _NodeTables, hashes: Sequence[str]) -> int:
    if tables.results is None:
        if not hashes:
            return 0
        raise PipelineError(
            f"the results of node {tables.label!r} are in a result database its saved entry "
            "does not locate; pass result_database= to Pipeline.load, or make its function "
            "importable"
        )
    return tables.results.delete(INPUT_PACKET_HASH, hashes)


def forget_node(pipeline: Any, label: str) -> Forgotten:
    """Delete the records, failures and results of the function node ``label``."""
    tables = _node_tables(pipeline, label)
    pipeline.flush()
    records = tables.records.read()
    hashes = [] if records is None else _distinct(records.column(INPUT_PACKET_HASH))
    forgotten = Forgotten(
        records=tables.records.delete(),
        failures=tables.failures.delete(),
        results=_delete_results(tables, hashes),
    )
    if forgotten.any:
        _mark_stale(pipeline.pipeline_database, _node_is(pipeline.name, label))
    return forgotten


def forget_function(store: DeltaTableDatabase, function_name: str) -> Forgotten:
    """Delete every result of the function named ``function_name`` in ``store`` (its shared
    ``_result`` area)."""
    area = _table_dir(store, (RESULT_AREA, function_name))
    if not area.is_dir():
        return Forgotten()
    forgotten = Forgotten(results=sum(delete_rows(table) for table in find_tables(area)))
    if forgotten.any:
        area_path = [RESULT_AREA, function_name]
        _mark_stale(store, lambda _p, _label, tables: tables.get("results", [])[:2] == area_path)
    return forgotten


def _distinct(column: pa.ChunkedArray | pa.Array) -> list[str]:
    return [v for v in pc.unique(column).to_pylist() if v is not None]


def recompute_rows(pipeline: Any, label: str, where: Mapping[str, Any]) -> Forgotten:
    """Forget the rows of node ``label`` whose tags match ``where`` (column -> value or list
    of values), so the next run computes them again."""
    tables = _node_tables(pipeline, label)
    if not where:
        raise PipelineError(
            "recompute_rows needs where={tag column: value(s)}; to recompute every row of a "
            "node use forget_node"
        )
    pipeline.flush()
    records = tables.records.read()
    if records is None:
        return Forgotten()
    mask = pa.array([True] * records.num_rows, pa.bool_())
    for column, wanted in where.items():
        if column not in records.column_names or column.startswith("_"):
            tags = [c for c in records.column_names if not c.startswith("_")]
            raise PipelineError(
                f"recompute_rows: {column!r} is not a tag column of node {label!r}; its tag "
                f"columns: {tags}"
            )
        values = list(wanted) if isinstance(wanted, list | tuple | set | frozenset) else [wanted]
        typed = pa.array(values).cast(records.schema.field(column).type)
        mask = pc.and_(mask, pc.is_in(records.column(column), value_set=typed))
    chosen = records.filter(mask)
    ids = _distinct(chosen.column(RECORD_ID))
    hashes = _distinct(chosen.column(INPUT_PACKET_HASH))
    forgotten = Forgotten(
        records=tables.records.delete(RECORD_ID, ids),
        failures=0,
        results=_delete_results(tables, hashes),
    )
    if forgotten.any:
        _mark_stale(pipeline.pipeline_database, _node_is(pipeline.name, label))
    return forgotten


#: (pipeline, label, tables of its newest catalog row) -> is that node's row to be marked
_Chooser = Callable[[str, str, Mapping[str, Any]], bool]


def _node_is(pipeline: str, label: str) -> _Chooser:
    return lambda p, lbl, _tables: (p, lbl) == (pipeline, label)


def _mark_stale(store: ArrowDatabase, chosen: _Chooser) -> None:
    """Add a catalog row for each node ``chosen`` picks: a copy of its newest row (every
    column kept) with ``rows`` null and the status ``stale`` (module docstring)."""
    catalog = store.get_all_records(CATALOG_PATH, record_id_column=_CATALOG_ID)
    if catalog is None or catalog.num_rows == 0:
        return
    order = pc.sort_indices(catalog, [("updated_at", "descending")]).to_pylist()
    pipelines = catalog.column("pipeline").to_pylist()
    labels = catalog.column("label").to_pylist()
    newest: dict[tuple[str, str], int] = {}
    for i in order:
        newest.setdefault((pipelines[i], labels[i]), i)
    tables = catalog.column("tables")
    picked = [i for (p, lbl), i in newest.items() if chosen(p, lbl, loads(tables[i].as_py(), {}))]
    if not picked:
        return
    rows = catalog.take(picked)
    n = rows.num_rows
    stamp = uuid.uuid4().hex
    replaced = {
        _CATALOG_ID: [f"{old}:stale:{stamp}" for old in rows.column(_CATALOG_ID).to_pylist()],
        "updated_at": [datetime.now(UTC)] * n,
        "rows": [None] * n,
        "status": [Status.STALE] * n,
    }
    for name, values in replaced.items():
        index = rows.schema.get_field_index(name)
        rows = rows.set_column(index, name, pa.array(values, rows.schema.field(name).type))
    store.add_records(CATALOG_PATH, rows, _CATALOG_ID)
    store.flush()
