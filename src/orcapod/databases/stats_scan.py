"""``read_where``: the committed rows of a Delta table that equal given values, read with the
data files' parquet row-group statistics instead of a query.

The problem. ``lineage`` starts from one row named by its tag (``{"id": 3}``): one equality
test on a table of a million rows. A DataFusion query answers it well once running, but the
first query of a process starts DataFusion's runtime (0.1-1 s), which a command run once
(``orcapod lineage``) pays in full.

The approach: for each data file of the snapshot, read its footer, keep the row groups whose
min/max statistics of every tested column may hold one of the wanted values, read those row
groups whole and filter them exactly (``queries.constraint_mask``). Data files are written in
row groups of ``delta_files.ROW_GROUP_ROWS`` rows, so a tag that is ordered within the
written batches (a sequence number, a subject id) costs a few footers and one small row group;
a tag in no order costs reading every row group (as the query would). Files written before
row groups were that small hold one group per commit, which is read whole (see the
``id_locator`` docstring for ``orcapod store compact``).

Decisions:

* Only columns of integer, string and boolean types are pruned by statistics (their parquet
  order is Python's order); a test on any other type reads every row group, still exactly.
* A row group without statistics for a tested column is read.
* A file that lacks a tested column (written before the column existed) holds only nulls
  there, so it matches no value and is skipped; a test that also matches null is not
  answered here (``None``: the caller queries).
* Files are read through ``table_files.TableFiles`` (local disk or S3); each file's rows are
  cast to the table's canonical schema, columns missing from older files as nulls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from orcapod.databases.queries import Constraint, constraint_mask
from orcapod.databases.table_files import TableFiles

if TYPE_CHECKING:
    import pyarrow.parquet as pq

__all__ = ["conform", "prunable", "read_where"]


def prunable(dtype: pa.DataType) -> bool:
    """Are a column's parquet statistics in Python's order (so a group can be skipped)?"""
    return bool(
        pa.types.is_integer(dtype)
        or pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_boolean(dtype)
    )


def read_where(
    files: TableFiles, snapshot: Sequence[str], schema: pa.Schema, tests: Sequence[Constraint]
) -> pa.Table | None:
    """The rows of the data files ``snapshot`` (as deltalake lists them) that pass every test
    of ``tests``, in ``schema``; ``None`` when this cannot answer (a test matching null)."""
    if any(t.match_null for t in tests):
        return None
    wanted = [(t.column, t.values.to_pylist(), prunable(t.values.type)) for t in tests]
    parts = []
    for file in snapshot:
        table = files.read_groups(file, lambda meta: _groups(meta, wanted))
        if table is None or table.num_rows == 0:
            continue
        # conformed first: a file rewritten by deltalake itself (a maintenance delete) holds
        # view types (``string_view``), which the filter kernels do not take
        table = conform(table, schema)
        mask = constraint_mask(table, tests)
        parts.append(table if mask is None else table.filter(mask))
    rows = [p for p in parts if p.num_rows]
    if not rows:
        return schema.empty_table()
    return pa.concat_tables(rows)


def _groups(meta: pq.FileMetaData, wanted: Sequence[tuple[str, list[Any], bool]]) -> list[int]:
    """The row groups of a file whose statistics may hold every test's values."""
    names = meta.schema.names
    positions = []
    for column, _, _ in wanted:
        if column not in names:
            return []  # (a column the file lacks is null in every row)
        positions.append(names.index(column))
    out = []
    for group in range(meta.num_row_groups):
        chunk = meta.row_group(group)
        if all(
            _may_hold(chunk.column(p).statistics, values, prune)
            for p, (_, values, prune) in zip(positions, wanted, strict=True)
        ):
            out.append(group)
    return out


def _may_hold(stats: Any, values: list[Any], prune: bool) -> bool:
    if not prune or stats is None or not stats.has_min_max:
        return True
    low, high = stats.min, stats.max
    try:
        return any(low <= v <= high for v in values)
    except TypeError:  # (statistics of an unexpected type: read the group)
        return True


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with the columns of ``schema`` in its types (missing ones as nulls)."""
    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)
