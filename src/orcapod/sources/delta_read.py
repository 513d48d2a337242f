"""Reading a Delta Lake table into Arrow in a stable row order.

A source without a ``record_id_column`` names its rows by position (``row_<i>``), so the
order rows are read in is part of their provenance. A Delta table has no row order of its
own: it is a set of Parquet files listed by its transaction log. Decision: the rows are read
in the order their files were written (the ``modificationTime`` of each file's add action in
the log, then the file's path for files written in the same millisecond), each file's rows in
their order in the file. Appending to a table (a new commit adding files) therefore puts the
new rows after the old ones, and the old rows keep their positions, as appending lines to a
CSV file does (also across checkpoints: the write times are kept in them). A rewrite is
different: deleting, updating or merging rows rewrites the files holding them, so the rows
left in such a file move to the end, after the files left alone; compaction
(``DeltaTable.optimize.compact``) replaces small files with new ones holding their rows in
an order of its own (deltalake 1.6 writes the newest first), and Z-ordering sorts them. Each
of these changes the positions of rows that did not change. A ``record_id_column`` (a
column of unique keys) names rows by value and survives every one of them.

The files are read by polars (``pl.read_delta``: partition columns, deletion vectors and
schema evolution included), which reads them in the order ``DeltaTable.file_uris()`` lists
them; delta-rs lists the newest commit's files first. ``_WriteOrderedTable`` is a
``DeltaTable`` whose ``file_uris()`` lists them in write order, and polars is handed that
table. Only the file list is sorted (per file, not per row). A file's write time comes from
``get_add_actions()``, whose paths are the log's URI-encoded paths (``file_uris()`` gives
them decoded, behind the table's root).

With deltalake 1.6.6 and pyarrow 26, reading through ``DeltaTable.to_pyarrow_*`` makes the
process abort at exit, which is another reason the rows go through polars.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from orcapod.errors import InputValidationError

__all__ = ["read_delta_table"]


def read_delta_table(
    location: str, storage_options: Mapping[str, str] | None = None
) -> tuple[pa.Table, pa.Schema]:
    """The rows of the Delta table at ``location`` (its current version) in write order, and
    the table's Arrow schema as the Delta log records it (field metadata included)."""
    options = dict(storage_options or {}) or None
    try:
        table = _WriteOrderedTable(location, storage_options=options)
        frame = pl.read_delta(table)
        delta_schema = pa.schema(table.schema().to_arrow())
    except (OSError, pl.exceptions.PolarsError, DeltaError) as err:
        raise InputValidationError(
            f"DeltaTableSource: cannot read a Delta table at {location!r}: {err}"
        ) from err
    return frame.to_arrow(), delta_schema


class _WriteOrderedTable(DeltaTable):
    """A ``DeltaTable`` whose ``file_uris()`` lists its files in the order they were written
    (see the module docstring)."""

    def file_uris(self, *args: Any, **kwargs: Any) -> list[str]:
        uris: list[str] = super().file_uris(*args, **kwargs)
        actions = pa.table(self.get_add_actions())
        by_name: dict[str, list[tuple[str, int]]] = {}
        for path, written in zip(
            actions.column("path").to_pylist(),
            actions.column("modification_time").to_pylist(),
            strict=True,
        ):
            relative = unquote(path)
            by_name.setdefault(relative.rsplit("/", 1)[-1], []).append((relative, written))

        def write_order(uri: str) -> tuple[int, int, str]:
            for relative, written in by_name.get(uri.rsplit("/", 1)[-1], ()):
                if uri.endswith(relative):
                    return (0, written, relative)
            return (1, 0, uri)  # not in the log's add actions (never seen): last, by name

        return sorted(uris, key=write_order)
