"""Maintenance of a local Delta store: compact and vacuum its tables, delete rows.

A store that grew by many small runs holds many small data files per table (one per commit),
and every read lists and opens them all. :func:`compact_store` rewrites each table's small
files into few large ones (``optimize.compact``, a new table version: readers of older
versions are unaffected; written with the store's parquet settings, ``delta_files``) and,
with ``vacuum``, then deletes the files no version newer than ``retention_hours`` still
references, together with the lookup sidecars of those files
(``_orcapod_index/``). After compacting, the lookup sidecars of every indexed column are built
for the new files at once, so the next run's look-ups are as fast as before and never read a
data file to index it; so is the record-id locator pack of a table that has one
(``id_locator``).

Decisions:

* A table is any directory holding ``_delta_log/`` under the store's base path; the report
  names it by its path relative to the base.
* ``retention_hours=None`` keeps the table's own retention (Delta's default, 7 days): files
  still readable by a process that opened an older version survive. ``retention_hours=0``
  frees the space at once; run it only when no other process uses the store.
* :func:`delete_rows` deletes the rows of one table whose ``column`` is one of ``values`` (or
  every row when ``values`` is None) as one Delta commit; the in-process caches of every
  ``DeltaTableDatabase`` see it on their next read, as any other process's commit. Space is
  freed by the next vacuum.
* Only local stores are maintained here (object stores: use the cloud provider's tools, or
  deltalake directly).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from orcapod._lazy import lazy_module
from orcapod.databases.column_index import INDEX_DIR, LookupIndex, indexable
from orcapod.databases.delta_damage import damage_error
from orcapod.databases.delta_files import ROW_GROUP_ROWS, writer_properties
from orcapod.databases.delta_state import write_errors
from orcapod.databases.id_locator import IdLocator
from orcapod.databases.sql import in_predicate
from orcapod.databases.table_files import TableFiles
from orcapod.errors import InputValidationError

if TYPE_CHECKING:
    import deltalake
    import pyarrow.fs as pafs
else:
    deltalake = lazy_module("deltalake")
    pafs = lazy_module("pyarrow.fs")

__all__ = ["TableReport", "compact_store", "compact_table", "delete_rows", "find_tables"]

DELTA_LOG = "_delta_log"


@dataclass(frozen=True)
class TableReport:
    """What maintenance did to one table."""

    table: str  #: path relative to the store's base
    files_before: int
    files_after: int
    removed_files: int  #: deleted by vacuum
    version: int


def find_tables(base: str | os.PathLike[str]) -> list[Path]:
    """Every Delta table under the store directory ``base`` (sorted)."""
    root = Path(base)
    if not root.is_dir():
        raise InputValidationError(
            f"{str(root)!r} is not a store directory; pass the base path of a DeltaTableDatabase"
        )
    found = []
    for directory, subdirs, _ in os.walk(root):
        if DELTA_LOG in subdirs:
            found.append(Path(directory))
            subdirs.remove(DELTA_LOG)
        if INDEX_DIR in subdirs:
            subdirs.remove(INDEX_DIR)
    return sorted(found)


def _prune_sidecars(table_dir: Path) -> None:
    """Delete the lookup sidecars of data files that no longer exist (after a vacuum)."""
    index = table_dir / INDEX_DIR
    if not index.is_dir():
        return
    for sidecar in index.rglob("*.h64"):
        if not (table_dir / sidecar.name[: -len(".h64")]).exists():
            sidecar.unlink(missing_ok=True)


def _reindex(table_dir: Path, table: deltalake.DeltaTable) -> None:
    """Build the sidecars of every indexed column for the table's current files."""
    access = TableFiles.for_table(str(table_dir), pafs.LocalFileSystem)
    assert access is not None
    lookups = LookupIndex(access)
    files = table.file_uris()
    schema = pa.schema(table.schema().to_arrow())
    for column in lookups.columns:
        position = schema.get_field_index(column)
        if position >= 0 and indexable(schema.field(position).type):
            lookups.narrow(column, pa.array([], schema.field(position).type), files)
    locator = IdLocator(access)
    if locator.packed_files():  # (a table whose ids were located: locate the new files)
        locator.rebuild(files)


def compact_table(
    table_dir: Path,
    vacuum: bool = True,
    retention_hours: int | None = None,
    base: Path | None = None,
) -> TableReport:
    """Compact one table (and vacuum it); see the module docstring."""
    name = str(table_dir.relative_to(base)) if base is not None else str(table_dir)
    key = tuple(name.split(os.sep))
    try:
        table = deltalake.DeltaTable(str(table_dir))
        before = len(table.file_uris())
        schema = pa.schema(table.schema().to_arrow())
        table.optimize.compact(writer_properties=writer_properties(schema, ROW_GROUP_ROWS))
        table.create_checkpoint()
        removed: list[str] = []
        if vacuum:
            removed = table.vacuum(
                retention_hours=retention_hours,
                dry_run=False,
                enforce_retention_duration=retention_hours is None,
            )
            table.cleanup_metadata()
        table.update_incremental()
        after = len(table.file_uris())
    except write_errors() as err:
        raise damage_error(key, str(table_dir), err, "compact") from err
    if removed:
        _prune_sidecars(table_dir)
    _reindex(table_dir, table)
    return TableReport(name, before, after, len(removed), int(table.version()))


def compact_store(
    base: str | os.PathLike[str], vacuum: bool = True, retention_hours: int | None = None
) -> list[TableReport]:
    """Compact (and vacuum) every table of the store at ``base``; one report per table."""
    if retention_hours is not None and (
        isinstance(retention_hours, bool) or not isinstance(retention_hours, int)
    ):
        raise InputValidationError(
            f"retention_hours={retention_hours!r} must be a whole number of hours (0 frees the "
            "space at once) or None (the table's own retention)"
        )
    root = Path(base).absolute()
    return [compact_table(t, vacuum, retention_hours, root) for t in find_tables(root)]


def delete_rows(
    table_dir: str | os.PathLike[str],
    column: str | None = None,
    values: Sequence[str] | None = None,
) -> int:
    """Delete the rows of the table at ``table_dir`` whose ``column`` is one of ``values``
    (every row when ``values`` is None); return how many were deleted (0: no such table)."""
    path = Path(table_dir)
    if not (path / DELTA_LOG).is_dir():
        return 0
    predicate: str | None = None
    if values is not None:
        if column is None:
            raise InputValidationError("delete_rows: pass the column the values are of")
        if len(values) == 0:
            return 0
        predicate = in_predicate(column, pa.array(list(values), pa.string()))
    try:
        metrics = deltalake.DeltaTable(str(path)).delete(predicate)
    except write_errors() as err:
        raise damage_error((path.name,), str(path), err, "delete rows of") from err
    return int(metrics.get("num_deleted_rows", 0))
