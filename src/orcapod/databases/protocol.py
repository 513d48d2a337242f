"""The ``ArrowDatabase`` protocol: the one contract every record store satisfies.

Semantics shared by every backend (checked by ``tests/databases/test_contract.py``):

* A *path* is a tuple of name segments (see ``orcapod.databases.paths``); each path holds one
  table of records keyed by a string record id, stored in the column ``__record_id``.
* Writes: a record id already stored (pending or committed) or repeated inside the batch
  raises ``DuplicateRecordError`` naming the id(s), unless ``skip_duplicates=True``, in which
  case the first stored row stays and the incoming duplicates are dropped. New columns evolve
  the schema (older rows read back as null); a column with a different type raises
  ``SchemaError`` naming the column. Tables are stored with canonical Arrow types (see
  ``orcapod.databases.records``).
* Reads see pending plus committed rows and return ``None`` when the path holds no table or
  no row matches - never an empty table. Row order is unspecified. ``record_id_column=None``
  drops ``__record_id`` from the result; a name renames it to that name.
* ``flush()`` commits pending rows of every path, including those written through scoped
  views (views share the backend); a failed flush raises ``FlushError`` naming the paths and
  keeps their rows pending. ``add_record(..., flush=True)`` / ``add_records(..., flush=True)``
  add, then flush.
* Verified writes: ``committed_version(path)`` is a version of the path's committed rows
  (-1: no table yet), or ``None`` when the backend keeps no versions. A caller that reads
  ids after taking version ``V`` and does not find them may add them with
  ``add_records(..., absent_at=V)``: the backend may then skip checking them against the rows
  committed up to ``V``, but still checks pending rows and everything committed after ``V`` (a
  concurrent writer), so ``skip_duplicates`` and ``DuplicateRecordError`` keep their meaning.
  ``absent_at`` is a promise by the caller; a backend is free to check everything anyway.
* ``add_records(..., record_id_column=None)`` takes the table's first column as the ids.
* ``persistent``: whether committed rows outlive the process and other processes see them
  (work shared between processes is coordinated only through persistent stores).
* Notes: ``table_token(path)`` names the rows committed at ``path`` now (an equal token later
  means no row was added or removed in between; ``None``: no table, rows pending, or the
  backend cannot name its states). ``write_note(path, name, text)`` keeps a short ``text``
  with the table's current state and ``read_note(path, name)`` answers it only while the
  table still has that state. Notes are a cache: a backend may keep none (``read_note``
  answers ``None``) and a note may vanish; callers must work without them.
  ``appended_token(path, since)`` is the current token when, since the state ``since``
  named (``None``: no table then), the table only received rows appended through this
  database object (views included); else ``None`` (also when the backend cannot tell).
* Row counts: ``count_records(path)`` is the number of rows a read of ``path`` returns (0
  without a table), told without reading the rows, as of a state no older than the last
  read or write of ``path`` through this object: a Delta store counts the snapshot it holds
  from its log (no request, so it may not see other processes' commits since), a SQL store
  runs ``COUNT(*)``. ``None`` when the backend cannot tell that cheaply (rows pending, a log
  without row counts). Callers treat ``None`` as unknown and read what they need.
* Object logs: ``object_log(path)`` is an ``ObjectLog`` (``orcapod.databases.object_log``:
  an append-only log of short texts, one request or file per append and one listing per
  read) kept beside ``path``'s table, for records a table would make too costly to poll;
  ``None`` when the backend has none (every store but Delta, local or on object storage):
  callers then keep such records in a table. The log is separate from the table's rows.
* ``at(*subpath)`` returns a view whose paths are prefixed by ``subpath``:
  ``db.at("a").add_records(("b",), ...)`` is ``db.add_records(("a", "b"), ...)``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pyarrow as pa

from orcapod.databases.object_log import ObjectLog

__all__ = ["ArrowDatabase"]


@runtime_checkable
class ArrowDatabase(Protocol):
    """A store of Arrow record tables addressed by path and record id."""

    @property
    def persistent(self) -> bool:
        """True when committed rows outlive this process and other processes see them (a
        directory, object or SQL store); False for in-memory and no-op databases."""
        ...

    def add_record(
        self,
        path: Sequence[str],
        record_id: str,
        table: pa.Table,
        skip_duplicates: bool = False,
        flush: bool = False,
    ) -> None:
        """Store the one-row ``table`` under ``record_id`` (then flush if ``flush``)."""
        ...

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
        """Store every row of ``table``; ``record_id_column`` holds their (string) ids (None:
        the first column). ``absent_at``: a ``committed_version`` at which the caller found
        none of these ids committed. Then flush if ``flush``."""
        ...

    def committed_version(self, path: Sequence[str]) -> int | None:
        """The version of ``path``'s committed rows (-1: no table yet), or None when this
        database keeps no versions; take it BEFORE the read that finds ids absent."""
        ...

    def get_record_by_id(
        self,
        path: Sequence[str],
        record_id: str,
        record_id_column: str | None = None,
    ) -> pa.Table | None:
        """The one-row table stored under ``record_id``, or ``None``."""
        ...

    def get_records_by_ids(
        self,
        path: Sequence[str],
        ids: Collection[str] | pa.Array | pa.ChunkedArray | np.ndarray[Any, Any],
        record_id_column: str | None = None,
    ) -> pa.Table | None:
        """The rows whose ids are in ``ids`` (a collection of strings or a string
        pyarrow/numpy array; ids not stored are ignored), or ``None``."""
        ...

    def get_all_records(
        self,
        path: Sequence[str],
        record_id_column: str | None = None,
    ) -> pa.Table | None:
        """Every row stored under ``path``, or ``None``."""
        ...

    def get_records_with_column_value(
        self,
        path: Sequence[str],
        constraints: Mapping[str, object],
        record_id_column: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table | None:
        """Rows where every constrained column equals its value (a list/tuple/set or a
        pyarrow/numpy array of values means IN; ``None`` matches null), projected to
        ``columns`` (plus the record id when ``record_id_column`` is given), or ``None``."""
        ...

    def count_records(self, path: Sequence[str]) -> int | None:
        """The number of rows stored under ``path`` (0: no table) as of this object's last
        read or write of it at the latest, or None when it cannot be told without reading
        them (see the module docstring)."""
        ...

    def flush(self) -> None:
        """Commit every pending row; raise ``FlushError`` naming the paths that failed."""
        ...

    def table_token(self, path: Sequence[str]) -> str | None:
        """A name of the rows committed at ``path`` now (see the module docstring)."""
        ...

    def appended_token(self, path: Sequence[str], since: str | None) -> str | None:
        """The current token if only this object appended rows since ``since`` (see the
        module docstring)."""
        ...

    def write_note(self, path: Sequence[str], name: str, text: str) -> None:
        """Keep ``text`` as note ``name`` of ``path``'s table in its current state."""
        ...

    def read_note(self, path: Sequence[str], name: str) -> str | None:
        """Note ``name`` of ``path``'s table if written in its current state, else None."""
        ...

    def object_log(self, path: Sequence[str]) -> ObjectLog | None:
        """The object log kept beside ``path``'s table, or None when this database keeps
        none (see the module docstring)."""
        ...

    def at(self, *subpath: str) -> ArrowDatabase:
        """A view of this database whose paths are prefixed by ``subpath``."""
        ...
