"""``StoringBackend``: the entry points every storing backend shares.

``add_record`` / ``add_records`` validate the path and normalise the incoming rows the same
way everywhere, then hand them to the backend's ``_add``; ``get_record_by_id`` is
``get_records_by_ids`` of one id; ``at`` gives the scoped view. Backends implement ``_add`` and
the reads (one level of inheritance; ``NoOpArrowDatabase`` stores nothing and stands alone).

Notes (``table_token`` / ``write_note`` / ``read_note``, see the protocol) are kept as
``(token, text)`` pairs by the backend's ``_save_note`` / ``_load_note``; a note is answered
only while its token is still the table's. A backend that cannot name its states (its
``table_token`` answers ``None``, the default here) keeps no notes.

``flush=True`` on a write flushes after adding. ``absent_at`` (verified writes, see
``orcapod.databases.protocol``) is handed to ``_add``; a backend without versions reports
``committed_version() -> None`` and callers then pass no ``absent_at``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod.databases.object_log import ObjectLog
from orcapod.databases.paths import RecordPath, validate_note_name, validate_path
from orcapod.databases.records import prepare_record, prepare_records
from orcapod.databases.scoped import ScopedArrowDatabase

__all__ = ["StoringBackend"]


class StoringBackend:
    #: committed rows outlive the process and other processes see them (see the protocol)
    persistent: bool = True

    def add_record(
        self,
        path: Sequence[str],
        record_id: str,
        table: pa.Table,
        skip_duplicates: bool = False,
        flush: bool = False,
    ) -> None:
        key = validate_path(path)
        self._add(key, prepare_record(record_id, table), skip_duplicates, None)
        if flush:
            self.flush()

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
        key = validate_path(path)
        self._add(key, prepare_records(table, record_id_column), skip_duplicates, absent_at)
        if flush:
            self.flush()

    def get_record_by_id(
        self, path: Sequence[str], record_id: str, record_id_column: str | None = None
    ) -> pa.Table | None:
        return self.get_records_by_ids(path, [record_id], record_id_column)

    def at(self, *subpath: str) -> ScopedArrowDatabase:
        return ScopedArrowDatabase(self, subpath)

    def write_note(self, path: Sequence[str], name: str, text: str) -> None:
        key = validate_path(path)
        validate_note_name(name)
        token = self.table_token(key)
        if token is not None:  # nothing to bind the note to otherwise
            self._save_note(key, name, token, text)

    def read_note(self, path: Sequence[str], name: str) -> str | None:
        key = validate_path(path)
        validate_note_name(name)
        token = self.table_token(key)
        if token is None:
            return None
        stored = self._load_note(key, name)
        return stored[1] if stored is not None and stored[0] == token else None

    def object_log(self, path: Sequence[str]) -> ObjectLog | None:
        """None: only a store on object storage keeps object logs."""
        validate_path(path)
        return None

    def table_token(self, path: Sequence[str]) -> str | None:
        """None: this backend does not name its tables' states (so it keeps no notes)."""
        validate_path(path)
        return None

    def appended_token(self, path: Sequence[str], since: str | None) -> str | None:
        """None: this backend does not name its tables' states."""
        validate_path(path)
        return None

    def count_records(self, path: Sequence[str]) -> int | None:
        """None: this backend cannot count a table's rows without reading them."""
        validate_path(path)
        return None

    def _save_note(self, key: RecordPath, name: str, token: str, text: str) -> None:
        """Keep ``(token, text)`` as note ``name`` of ``key`` (default: keep nothing)."""

    def _load_note(self, key: RecordPath, name: str) -> tuple[str, str] | None:
        """The ``(token, text)`` kept as note ``name`` of ``key``, or None."""
        return None

    # implemented by each backend -------------------------------------------------------------
    def _add(
        self, key: RecordPath, records: pa.Table, skip_duplicates: bool, absent_at: int | None
    ) -> None:
        raise NotImplementedError

    def committed_version(self, path: Sequence[str]) -> int | None:
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
