"""One page of a node's rows, read from the store without loading the node's table.

``read_page(database, node, offset, limit, sort, descending)`` returns a ``RowsPage``: the
node's tag columns first, then its output columns, ``limit`` rows from ``offset``, and the
number of rows in all.

How it pages in the store. A local Delta store's tables are scanned lazily with polars
(``pl.scan_delta``): only the columns a page shows are read, the page's slice is pushed down
to the scan, and a function node's outputs are fetched only for the page's rows (by result
id, ``ArrowDatabase.get_records_by_ids``). Sorting by a tag column sorts the projected
records (polars' top-k for the first pages); sorting by an output column joins that one
result column to the records first. Other databases (in memory, SQL) give their whole table
through ``get_all_records`` and are paged in Arrow: fine for the small stores they hold.

Decisions:

* A function node's rows are its pipeline records that have a result (filtered rows - the
  function returned None - are counted in the graph but not listed), in the order they were
  recorded unless a sort is asked for, without the records the node's last complete run
  found superseded (``superseded``: its input no longer held them, from
  ``StoreView.superseded_entries``; ``orcapod.nodes.membership``): after such a run each
  tag has one record left, its current one, and the page lists what ``orcapod show``
  shows. Leaving them out is a filter on the scan, so a page then costs one pass over the
  id column (for the total). Without membership (an older store) a tag recorded more than
  once (its input changed) shows each record, newest first within the tag when sorted by
  it; ``orcapod show`` shows only the newest. Keeping every record is what lets the page be
  read without a pass over the whole table.
* The records table of a function node is shared by every node of the pipeline applying the
  same function to inputs of the same schema (it is keyed by the function and the schema),
  so such nodes list the same rows.
* An operator node that logs its rows (``CacheMode.LOG``) lists them; a source node, and an
  operator that stores nothing, have no rows in the store (``RowsPage.stored`` is False).
* Outputs are fetched by input packet hash (the column the store's lookup index covers),
  so a page costs a few file reads however large the results table.
* Each listed row carries its pipeline entry id (``record_id``): the row page's address.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from orcapod.databases import ArrowDatabase, DeltaTableDatabase
from orcapod.nodes.membership import without_superseded
from orcapod.pipeline import NodeInfo
from orcapod.types.columns import INPUT_PACKET_HASH

__all__ = ["RowsPage", "read_page", "scan_table"]

_PACKET_ID = "__packet_id"
_RECORD_ID = "__record_id"


@dataclass(frozen=True)
class RowsPage:
    """One page of a node's rows (see the module docstring)."""

    columns: tuple[str, ...]
    tag_columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    record_ids: tuple[str | None, ...]
    total: int
    offset: int
    limit: int
    sort: str | None
    descending: bool
    stored: bool = True

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.limit))

    @property
    def page(self) -> int:
        return self.offset // self.limit + 1


def scan_table(database: ArrowDatabase, path: Sequence[str]) -> pl.LazyFrame | None:
    """A lazy polars scan of the Delta table at ``path`` of a local Delta store (None when
    the table does not exist or the store is not a local Delta store)."""
    if not isinstance(database, DeltaTableDatabase) or "://" in database.base_path:
        return None
    uri = database.table_uri(path)
    if not (Path(uri) / "_delta_log").is_dir():
        return None
    return pl.scan_delta(uri)


def _empty(node: NodeInfo, offset: int, limit: int, stored: bool) -> RowsPage:
    tags = tuple(node.tag_schema)
    return RowsPage(
        (*tags, *node.packet_schema), tags, (), (), 0, offset, limit, None, False, stored
    )


def read_page(
    database: ArrowDatabase,
    node: NodeInfo,
    offset: int = 0,
    limit: int = 50,
    sort: str | None = None,
    descending: bool = False,
    superseded: pa.Array | None = None,
) -> RowsPage:
    """Rows ``offset`` to ``offset + limit`` of ``node`` (module docstring); ``superseded``:
    entry ids of a function node's records to leave out."""
    offset = max(0, offset)
    limit = max(1, limit)
    records_path = node.tables.get("records")
    if records_path is None:
        return _empty(node, offset, limit, stored=False)
    tags = [c for c in node.tag_schema]
    outputs = [c for c in node.packet_schema if c not in tags]
    if sort is not None and sort not in (*tags, *outputs):
        sort = None
    if node.node_type != "function" or superseded is None or not len(superseded):
        superseded = None
    lazy = scan_table(database, records_path)
    if lazy is None:
        return _page_in_arrow(database, node, offset, limit, sort, descending, superseded)
    present = set(lazy.collect_schema().names())
    tags = [c for c in tags if c in present]
    if node.node_type != "function":
        shown = [c for c in (*tags, *outputs) if c in present]
        if sort is not None and sort not in present:
            sort = None
        frame = lazy.select(shown)
        total = _count(frame)
        if sort is not None:
            frame = frame.sort(sort, descending=descending, nulls_last=True)
        data = frame.slice(offset, limit).collect()
        rows = tuple(tuple(r) for r in data.rows())
        return RowsPage(
            tuple(shown), tuple(tags), rows, (None,) * len(rows), total, offset, limit, sort,
            descending,
        )  # fmt: skip
    if _PACKET_ID not in present:
        return _empty(node, offset, limit, stored=True)
    if superseded is not None:
        lazy = lazy.filter(~pl.col(_RECORD_ID).is_in(pl.Series(superseded)))
    # filtered rows (no result) are left out; counting them reads only the row groups whose
    # statistics show nulls, and with none (the usual case) the page needs no filter
    filtered = _count(lazy.filter(pl.col(_PACKET_ID).is_null()))
    records = lazy.select([_RECORD_ID, *tags, _PACKET_ID, INPUT_PACKET_HASH])
    total = _count(lazy) - filtered
    if filtered:
        records = records.filter(pl.col(_PACKET_ID).is_not_null())
    results_path = node.tables.get("results")
    if sort is not None and sort in outputs:
        results = None if results_path is None else scan_table(database, results_path)
        if results is None:
            sort = None
        else:
            column = results.select([pl.col(_RECORD_ID).alias(_PACKET_ID), pl.col(sort)])
            records = records.join(column, on=_PACKET_ID, how="left").sort(
                sort, descending=descending, nulls_last=True
            )
    elif sort is not None:
        records = records.sort(sort, descending=descending, nulls_last=True)
    page = records.slice(offset, limit).collect()
    values = _outputs_of(database, results_path, page[INPUT_PACKET_HASH].to_list(), outputs)
    listed: list[tuple[Any, ...]] = []
    for row in page.select([*tags, _PACKET_ID]).rows():
        found = values.get(row[-1], {})
        listed.append((*row[:-1], *(found.get(c) for c in outputs)))
    return RowsPage(
        (*tags, *outputs),
        tuple(tags),
        tuple(listed),
        tuple(page[_RECORD_ID].to_list()),
        total,
        offset,
        limit,
        sort,
        descending,
    )


def _count(frame: pl.LazyFrame) -> int:
    return int(frame.select(pl.len()).collect().item())


def _outputs_of(
    database: ArrowDatabase,
    results_path: Sequence[str] | None,
    input_hashes: list[str],
    outputs: Sequence[str],
) -> dict[str, dict[str, Any]]:
    """Result id -> {output column: value} for the results of ``input_hashes``.

    Looked up by input packet hash, the column the store's lookup index covers (a result id
    would scan the whole id column), then keyed by result id: a function's results table
    holds one result per input and code version."""
    if results_path is None or not input_hashes:
        return {}
    table = database.get_records_with_column_value(
        results_path,
        {INPUT_PACKET_HASH: input_hashes},
        record_id_column=_RECORD_ID,
        columns=[c for c in outputs],
    )
    if table is None:
        return {}
    columns = [c for c in outputs if c in table.column_names]
    out: dict[str, dict[str, Any]] = {}
    for row in table.select([_RECORD_ID, *columns]).to_pylist():
        out[row.pop(_RECORD_ID)] = row
    return out


def _page_in_arrow(
    database: ArrowDatabase,
    node: NodeInfo,
    offset: int,
    limit: int,
    sort: str | None,
    descending: bool,
    superseded: pa.Array | None,
) -> RowsPage:
    """``read_page`` for stores polars cannot scan: the whole table, paged in Arrow."""
    records_path = node.tables["records"]
    table = database.get_all_records(records_path, record_id_column=_RECORD_ID)
    if table is None:
        return _empty(node, offset, limit, stored=True)
    if superseded is not None:
        table = without_superseded(table, _RECORD_ID, superseded)
    tags = [c for c in node.tag_schema if c in table.column_names]
    outputs = [c for c in node.packet_schema if c not in tags]
    results_path = node.tables.get("results")
    if node.node_type == "function" and _PACKET_ID in table.column_names:
        table = table.filter(table.column(_PACKET_ID).is_valid())
        results = None
        if results_path is not None:
            results = database.get_all_records(results_path, record_id_column=_RECORD_ID)
        if results is not None:
            # each record's result by position (a left join): Arrow's hash join refuses
            # array, list and map payload columns
            at = pc.index_in(table.column(_PACKET_ID), value_set=results.column(_RECORD_ID))
            table = table.select([_RECORD_ID, *tags, _PACKET_ID])
            for column in (c for c in outputs if c in results.column_names):
                table = table.append_column(column, results.column(column).take(at))
    shown = [c for c in (*tags, *outputs) if c in table.column_names]
    if sort is not None and sort in table.column_names:
        table = table.sort_by([(sort, "descending" if descending else "ascending")])
    else:
        sort = None
    part = table.slice(offset, limit)
    ids: list[str | None] = (
        part.column(_RECORD_ID).to_pylist()
        if node.node_type == "function" and _RECORD_ID in part.column_names
        else [None] * part.num_rows
    )
    data = part.select(shown).to_pylist() if shown else [{}] * part.num_rows
    return RowsPage(
        tuple(shown),
        tuple(tags),
        tuple(tuple(r.values()) for r in data),
        tuple(ids),
        table.num_rows,
        offset,
        limit,
        sort,
        descending,
    )
