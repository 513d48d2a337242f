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

* Results are deleted by input packet hash (``__input_packet_hash``), not only by the id a
  record points to: a result-cache lookup would otherwise find another stored result of the
  same input (say one computed with another executor) and reuse it.
* Results are shared by the pipelines of a store, so forgetting a node's or rows' results
  makes other pipelines that used them recompute those rows too. That is what "recompute"
  means for a shared cache; to keep them, give the pipeline its own ``result_database``.
* Every delete is a Delta commit (history kept, readers of older versions unaffected); the
  space is freed by ``orcapod store compact --retention-hours 0``
  (``databases.maintenance.compact_store``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
from orcapod.types.columns import INPUT_PACKET_HASH, RECORD_ID

__all__ = ["Forgotten", "forget_function", "forget_node", "recompute_rows"]

RESULT_AREA = "_result"
FAILURES_AREA = "_failures"


@dataclass(frozen=True)
class Forgotten:
    """How many stored rows an operation deleted."""

    records: int = 0
    failures: int = 0
    results: int = 0


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


def _function_node(pipeline: Any, label: str) -> FunctionNode:
    node = pipeline.nodes.get(label)
    reason = getattr(node, "load_reason", None)
    if reason:
        raise PipelineError(
            f"node {label!r} was loaded read-only ({reason}); make its function importable "
            "(or load with trusted=True) to find its stored rows"
        )
    if not isinstance(node, FunctionNode):
        function_nodes = [
            k
            for k, v in pipeline.nodes.items()
            if isinstance(v, FunctionNode) or pipeline.node_type(k) is NodeType.FUNCTION
        ]
        raise PipelineError(
            f"pipeline {pipeline.name!r} has no function node {label!r}; its function nodes: "
            f"{function_nodes}"
        )
    return node


def _databases(node: FunctionNode) -> tuple[ArrowDatabase, ArrowDatabase]:
    pipeline_db, result_db = node.pipeline_database, node.result_cache.database
    if pipeline_db is None:
        raise PipelineError(f"node {node.label!r} has no pipeline database; nothing is stored")
    return pipeline_db, result_db


def forget_node(pipeline: Any, label: str) -> Forgotten:
    """Delete the records, failures and results of the function node ``label``."""
    node = _function_node(pipeline, label)
    pipeline.flush()
    pipeline_db, result_db = _databases(node)
    records = pipeline_db.get_all_records(node.record_path, record_id_column=RECORD_ID)
    hashes = [] if records is None else _distinct(records.column(INPUT_PACKET_HASH))
    return Forgotten(
        records=delete_rows(_table_dir(pipeline_db, node.record_path)),
        failures=delete_rows(_table_dir(pipeline_db.at(FAILURES_AREA), node.record_path)),
        results=delete_rows(
            _table_dir(result_db, node.result_cache.record_path), INPUT_PACKET_HASH, hashes
        ),
    )


def forget_function(store: DeltaTableDatabase, function_name: str) -> Forgotten:
    """Delete every result of the function named ``function_name`` in ``store`` (its shared
    ``_result`` area)."""
    area = _table_dir(store, (RESULT_AREA, function_name))
    if not area.is_dir():
        return Forgotten()
    return Forgotten(results=sum(delete_rows(table) for table in find_tables(area)))


def _distinct(column: pa.ChunkedArray | pa.Array) -> list[str]:
    return [v for v in pc.unique(column).to_pylist() if v is not None]


def recompute_rows(pipeline: Any, label: str, where: Mapping[str, Any]) -> Forgotten:
    """Forget the rows of node ``label`` whose tags match ``where`` (column -> value or list
    of values), so the next run computes them again."""
    node = _function_node(pipeline, label)
    if not where:
        raise PipelineError(
            "recompute_rows needs where={tag column: value(s)}; to recompute every row of a "
            "node use forget_node"
        )
    pipeline.flush()
    pipeline_db, result_db = _databases(node)
    records = pipeline_db.get_all_records(node.record_path, record_id_column=RECORD_ID)
    if records is None:
        return Forgotten()
    mask = pa.array([True] * records.num_rows)
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
    return Forgotten(
        records=delete_rows(_table_dir(pipeline_db, node.record_path), RECORD_ID, ids),
        failures=0,
        results=delete_rows(
            _table_dir(result_db, node.result_cache.record_path), INPUT_PACKET_HASH, hashes
        ),
    )
