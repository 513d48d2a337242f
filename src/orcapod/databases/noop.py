"""``NoOpArrowDatabase``: accepts every write and stores nothing.

Paths are still validated (a path that another backend would refuse is refused here too), but
tables are not inspected. Every read returns ``None`` (notes too); ``flush()`` does nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod.databases.object_log import ObjectLog
from orcapod.databases.paths import validate_note_name, validate_path
from orcapod.databases.scoped import ScopedArrowDatabase

__all__ = ["NoOpArrowDatabase"]


class NoOpArrowDatabase:
    """A database that discards writes; use it to switch storage off."""

    persistent = False  # nothing is kept

    def __repr__(self) -> str:
        return "NoOpArrowDatabase()"

    def add_record(
        self,
        path: Sequence[str],
        record_id: str,
        table: pa.Table,
        skip_duplicates: bool = False,
        flush: bool = False,
    ) -> None:
        validate_path(path)

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
        validate_path(path)

    def committed_version(self, path: Sequence[str]) -> None:
        """No versions: nothing is ever stored."""
        validate_path(path)

    def get_record_by_id(
        self, path: Sequence[str], record_id: str, record_id_column: str | None = None
    ) -> pa.Table | None:
        validate_path(path)
        return None

    def get_records_by_ids(
        self,
        path: Sequence[str],
        ids: Collection[str] | pa.Array | pa.ChunkedArray | np.ndarray[Any, Any],
        record_id_column: str | None = None,
    ) -> pa.Table | None:
        validate_path(path)
        return None

    def get_all_records(
        self, path: Sequence[str], record_id_column: str | None = None
    ) -> pa.Table | None:
        validate_path(path)
        return None

    def get_records_with_column_value(
        self,
        path: Sequence[str],
        constraints: Mapping[str, object],
        record_id_column: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table | None:
        validate_path(path)
        return None

    def flush(self) -> None:
        """Nothing is ever pending."""

    def table_token(self, path: Sequence[str]) -> None:
        """No tables, so no states to name."""
        validate_path(path)

    def appended_token(self, path: Sequence[str], since: str | None) -> None:
        validate_path(path)

    def count_records(self, path: Sequence[str]) -> int:
        """Nothing is kept: every read finds no row."""
        validate_path(path)
        return 0

    def write_note(self, path: Sequence[str], name: str, text: str) -> None:
        """Notes are dropped like everything else."""
        validate_path(path)
        validate_note_name(name)

    def read_note(self, path: Sequence[str], name: str) -> None:
        validate_path(path)
        validate_note_name(name)

    def object_log(self, path: Sequence[str]) -> ObjectLog | None:
        validate_path(path)
        return None

    def at(self, *subpath: str) -> ScopedArrowDatabase:
        return ScopedArrowDatabase(self, subpath)
