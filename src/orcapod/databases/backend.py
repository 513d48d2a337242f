"""``StoringBackend``: the entry points every storing backend shares.

``add_record`` / ``add_records`` validate the path and normalise the incoming rows the same
way everywhere, then hand them to the backend's ``_add``; ``get_record_by_id`` is
``get_records_by_ids`` of one id; ``at`` gives the scoped view. Backends implement ``_add`` and
the reads (one level of inheritance; ``NoOpArrowDatabase`` stores nothing and stands alone).

Versioned writes, a capability beyond the ``ArrowDatabase`` protocol (``VersionedDatabase``;
the Delta backend has it): ``committed_version(db, path)`` is the latest committed version of
the table (None when the backend has no versions), and
``add_verified_records(db, ..., absent_at=V)`` tells the backend that a read made after
``committed_version`` returned V did not find these ids, so it need not check them against
the rows committed up to V. Both see through scoped
views (``db.at(...)``) and fall back to plain ``add_records`` on other backends.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pyarrow as pa

from orcapod.databases.paths import RecordPath, join_path, validate_path
from orcapod.databases.protocol import ArrowDatabase
from orcapod.databases.records import prepare_record, prepare_records
from orcapod.databases.scoped import ScopedArrowDatabase

__all__ = ["StoringBackend", "VersionedDatabase", "add_verified_records", "committed_version"]


class StoringBackend:
    def add_record(
        self,
        path: Sequence[str],
        record_id: str,
        table: pa.Table,
        skip_duplicates: bool = False,
    ) -> None:
        key = validate_path(path)
        self._add(key, prepare_record(record_id, table), skip_duplicates)

    def add_records(
        self,
        path: Sequence[str],
        table: pa.Table,
        record_id_column: str,
        skip_duplicates: bool = False,
    ) -> None:
        key = validate_path(path)
        self._add(key, prepare_records(table, record_id_column), skip_duplicates)

    def get_record_by_id(
        self, path: Sequence[str], record_id: str, record_id_column: str | None = None
    ) -> pa.Table | None:
        return self.get_records_by_ids(path, [record_id], record_id_column)

    def at(self, *subpath: str) -> ScopedArrowDatabase:
        return ScopedArrowDatabase(self, subpath)

    # implemented by each backend -------------------------------------------------------------
    def _add(self, key: RecordPath, records: pa.Table, skip_duplicates: bool) -> None:
        raise NotImplementedError

    def get_records_by_ids(
        self,
        path: Sequence[str],
        ids: Collection[str] | pa.Array | pa.ChunkedArray | np.ndarray[Any, Any],
        record_id_column: str | None = None,
    ) -> pa.Table | None:
        raise NotImplementedError

    def get_all_records(
        self, path: Sequence[str], record_id_column: str | None = None
    ) -> pa.Table | None:
        raise NotImplementedError

    def get_records_with_column_value(
        self,
        path: Sequence[str],
        constraints: Mapping[str, object],
        record_id_column: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table | None:
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError


@runtime_checkable
class VersionedDatabase(Protocol):
    """A database whose tables are versioned, append-only snapshots (the module docstring)."""

    def committed_version(self, path: Sequence[str]) -> int:
        """The latest committed version of the table of ``path`` (-1: no table yet)."""
        ...

    def add_records(
        self,
        path: Sequence[str],
        table: pa.Table,
        record_id_column: str,
        skip_duplicates: bool = False,
        *,
        absent_at: int | None = None,
    ) -> None:
        """``ArrowDatabase.add_records`` of ids verified absent at version ``absent_at``."""
        ...


def _versioned(
    db: ArrowDatabase, path: Sequence[str]
) -> tuple[VersionedDatabase, RecordPath] | None:
    """The versioned backend behind ``db`` (a view is seen through) and the full path."""
    backend, key = db, validate_path(path)
    if isinstance(db, ScopedArrowDatabase):
        backend, key = db.backend, join_path(db.prefix, path)
    if isinstance(backend, VersionedDatabase):
        return backend, key
    return None


def committed_version(db: ArrowDatabase, path: Sequence[str]) -> int | None:
    """The latest committed version of ``path`` in ``db`` (-1: no table yet), or None when
    ``db`` keeps no versions. Take it BEFORE the read that verifies ids absent."""
    found = _versioned(db, path)
    return None if found is None else found[0].committed_version(found[1])


def add_verified_records(
    db: ArrowDatabase,
    path: Sequence[str],
    table: pa.Table,
    record_id_column: str,
    skip_duplicates: bool = False,
    *,
    absent_at: int | None,
) -> None:
    """``db.add_records`` of ids that a read made after ``committed_version`` returned
    ``absent_at`` did not find (None: unverified, or ``db`` keeps no versions)."""
    found = None if absent_at is None else _versioned(db, path)
    if found is None:
        db.add_records(path, table, record_id_column, skip_duplicates)
    else:
        backend, key = found
        backend.add_records(key, table, record_id_column, skip_duplicates, absent_at=absent_at)
