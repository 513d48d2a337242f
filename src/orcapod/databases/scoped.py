"""``ScopedArrowDatabase``: the view returned by ``at(*subpath)`` on every backend.

It prefixes every path with its ``prefix`` and forwards to the database it wraps, so views
share the backend's pending rows, caches and locks; ``flush()`` on a view flushes the whole
backend. ``at`` on a view returns a view of the same backend with the longer prefix (views
never nest). The prefix is validated like a path (an empty prefix is the root).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod.databases.object_log import ObjectLog
from orcapod.databases.paths import RecordPath, join_path, validate_subpath
from orcapod.databases.protocol import ArrowDatabase

__all__ = ["ScopedArrowDatabase"]


class ScopedArrowDatabase:
    """A view of ``backend`` whose paths are all prefixed by ``prefix``."""

    def __init__(self, backend: ArrowDatabase, prefix: Sequence[str]) -> None:
        if isinstance(backend, ScopedArrowDatabase):
            prefix = backend.prefix + validate_subpath(prefix)
            backend = backend.backend
        self._backend = backend
        self._prefix = validate_subpath(prefix)

    @property
    def persistent(self) -> bool:
        return self._backend.persistent

    @property
    def backend(self) -> ArrowDatabase:
        """The database this view forwards to."""
        return self._backend

    @property
    def prefix(self) -> RecordPath:
        """The path prefix this view adds."""
        return self._prefix

    def __repr__(self) -> str:
        return f"ScopedArrowDatabase({self._backend!r}, {self._prefix!r})"

    def _path(self, path: Sequence[str]) -> RecordPath:
        return join_path(self._prefix, path)

    def add_record(
        self,
        path: Sequence[str],
        record_id: str,
        table: pa.Table,
        skip_duplicates: bool = False,
        flush: bool = False,
    ) -> None:
        self._backend.add_record(self._path(path), record_id, table, skip_duplicates, flush)

    def add_records(
        self,
        path: Sequence[str],
        table: pa.Table,
        record_id_column: str | None = None,
        skip_duplicates: bool = False,
        flush: bool = False,
        *,
        absent_at: int | None = None,
    ) -> None:
        self._backend.add_records(
            self._path(path), table, record_id_column, skip_duplicates, flush, absent_at=absent_at
        )

    def committed_version(self, path: Sequence[str]) -> int | None:
        return self._backend.committed_version(self._path(path))

    def get_record_by_id(
        self, path: Sequence[str], record_id: str, record_id_column: str | None = None
    ) -> pa.Table | None:
        return self._backend.get_record_by_id(self._path(path), record_id, record_id_column)

    def get_records_by_ids(
        self,
        path: Sequence[str],
        ids: Collection[str] | pa.Array | pa.ChunkedArray | np.ndarray[Any, Any],
        record_id_column: str | None = None,
    ) -> pa.Table | None:
        return self._backend.get_records_by_ids(self._path(path), ids, record_id_column)

    def get_all_records(
        self, path: Sequence[str], record_id_column: str | None = None
    ) -> pa.Table | None:
        return self._backend.get_all_records(self._path(path), record_id_column)

    def get_records_with_column_value(
        self,
        path: Sequence[str],
        constraints: Mapping[str, object],
        record_id_column: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table | None:
        return self._backend.get_records_with_column_value(
            self._path(path), constraints, record_id_column, columns
        )

    def flush(self) -> None:
        self._backend.flush()

    def table_token(self, path: Sequence[str]) -> str | None:
        return self._backend.table_token(self._path(path))

    def appended_token(self, path: Sequence[str], since: str | None) -> str | None:
        return self._backend.appended_token(self._path(path), since)

    def count_records(self, path: Sequence[str]) -> int | None:
        return self._backend.count_records(self._path(path))

    def write_note(self, path: Sequence[str], name: str, text: str) -> None:
        self._backend.write_note(self._path(path), name, text)

    def read_note(self, path: Sequence[str], name: str) -> str | None:
        return self._backend.read_note(self._path(path), name)

    def object_log(self, path: Sequence[str]) -> ObjectLog | None:
        return self._backend.object_log(self._path(path))

    def at(self, *subpath: str) -> ScopedArrowDatabase:
        return ScopedArrowDatabase(self, subpath)
