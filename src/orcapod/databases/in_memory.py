"""``InMemoryArrowDatabase``: the in-process backend for tests and notebooks.

Each path keeps its batches as a list of Arrow tables (concatenated lazily on read and cached
until the next write), a Python set of its record ids for duplicate checks (O(batch) per write,
whatever the table size), and the merged schema. Rows are visible as soon as they are added, so
``flush()`` has nothing to commit and never fails. Each write that adds rows is a new version
(``committed_version``); ids given as verified absent (``absent_at``) are still checked
against the id set, which costs no more than trusting the caller. A table's state is named by
the database instance (a random id), the path and the version (``table_token``), and notes
are kept in a dict. A lock makes the store safe to share between threads. Semantics are those
of ``orcapod.databases.protocol``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod._lazy import pc
from orcapod.databases.backend import StoringBackend
from orcapod.databases.paths import RecordPath, validate_path
from orcapod.databases.queries import (
    constraint_mask,
    finalize,
    normalize_constraints,
    resolve_columns,
    with_columns,
)
from orcapod.databases.records import (
    concat_records,
    dedupe_batch,
    drop_clashes,
    merge_schemas,
    normalize_ids,
)
from orcapod.types.columns import RECORD_ID

__all__ = ["InMemoryArrowDatabase"]


@dataclass
class _PathStore:
    chunks: list[pa.Table] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    schema: pa.Schema | None = None
    merged: pa.Table | None = None
    version: int = -1

    def table(self) -> pa.Table | None:
        if self.merged is None and self.chunks:
            merged = concat_records(self.chunks)
            assert merged is not None and self.schema is not None
            self.merged = with_columns(merged, self.schema, self.schema.names)
            self.chunks = [self.merged]
        return self.merged


class InMemoryArrowDatabase(StoringBackend):
    """Records kept in process memory; nothing survives the process."""

    persistent = False  # rows live in this process only

    def __init__(self) -> None:
        self._stores: dict[RecordPath, _PathStore] = {}
        self._notes: dict[tuple[RecordPath, str], tuple[str, str]] = {}
        self._uid = uuid.uuid4().hex
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"InMemoryArrowDatabase(paths={len(self._stores)})"

    def committed_version(self, path: Sequence[str]) -> int:
        key = validate_path(path)
        with self._lock:
            store = self._stores.get(key)
            return -1 if store is None else store.version

    def table_token(self, path: Sequence[str]) -> str | None:
        key = validate_path(path)
        with self._lock:
            store = self._stores.get(key)
            if store is None:
                return None
            return f"memory:{self._uid}:{'/'.join(key)}@{store.version}"

    def appended_token(self, path: Sequence[str], since: str | None) -> str | None:
        """Rows only ever get here through this object, and only appended."""
        token = self.table_token(path)
        if token is None or since is None or since.rpartition("@")[0] == token.rpartition("@")[0]:
            return token
        return None

    def count_records(self, path: Sequence[str]) -> int:
        key = validate_path(path)
        with self._lock:
            store = self._stores.get(key)
            return 0 if store is None else len(store.ids)

    def _save_note(self, key: RecordPath, name: str, token: str, text: str) -> None:
        with self._lock:
            self._notes[key, name] = (token, text)

    def _load_note(self, key: RecordPath, name: str) -> tuple[str, str] | None:
        with self._lock:
            return self._notes.get((key, name))

    def _add(
        self, key: RecordPath, records: pa.Table, skip_duplicates: bool, absent_at: int | None
    ) -> None:
        records = dedupe_batch(records, key, skip_duplicates)
        with self._lock:
            store = self._stores.get(key) or _PathStore()
            schema = merge_schemas(store.schema, records.schema, key)
            incoming = records.column(RECORD_ID).to_pylist()
            clashes = store.ids.intersection(incoming)
            records, incoming = drop_clashes(records, incoming, clashes, key, skip_duplicates)
            if records.num_rows == 0:
                return
            store.schema = schema
            store.chunks.append(records)
            store.ids.update(incoming)
            store.merged = None
            store.version += 1
            self._stores[key] = store

    def _table(self, path: Sequence[str]) -> tuple[RecordPath, pa.Table | None]:
        key = validate_path(path)
        with self._lock:
            store = self._stores.get(key)
            return key, None if store is None else store.table()

    def get_records_by_ids(
        self,
        path: Sequence[str],
        ids: Collection[str] | pa.Array | pa.ChunkedArray | np.ndarray[Any, Any],
        record_id_column: str | None = None,
    ) -> pa.Table | None:
        wanted = normalize_ids(ids)
        _, table = self._table(path)
        if table is None:
            return None
        matched = table.filter(pc.is_in(table.column(RECORD_ID), value_set=wanted))
        return finalize(matched, record_id_column)

    def get_all_records(
        self, path: Sequence[str], record_id_column: str | None = None
    ) -> pa.Table | None:
        _, table = self._table(path)
        return finalize(table, record_id_column)

    def get_records_with_column_value(
        self,
        path: Sequence[str],
        constraints: Mapping[str, object],
        record_id_column: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table | None:
        key, table = self._table(path)
        if table is None:
            return None
        tests = normalize_constraints(constraints, table.schema, record_id_column, key)
        selected = resolve_columns(columns, table.schema, record_id_column, key)
        if selected is not None:  # only the projected (and tested) columns are copied
            tested = {t.column for t in tests}
            table = table.select([c for c in table.column_names if c in selected or c in tested])
        # one test at a time, the one with the most values (a look-up's key list) first: the
        # others then test only the rows it kept
        for test in sorted(tests, key=lambda t: -len(t.values)):
            mask = constraint_mask(table, [test])
            if mask is not None:
                table = table.filter(mask)
        if selected is not None:
            table = table.select(selected)
        return finalize(table, record_id_column)

    def flush(self) -> None:
        """Nothing to commit: rows are visible as soon as they are added."""
