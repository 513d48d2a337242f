"""``DeltaTableDatabase``: one Delta Lake table per record path, append-only.

Layout: the table of path ``(a, b)`` lives in ``<base_path>/a/b`` (segments made
filesystem-safe by ``paths.segment_dirname``); ``s3://``-style URIs are joined with ``/`` and
``storage_options`` are passed to deltalake untouched. On S3 the bucket is checked at
construction (a missing one raises ``InputValidationError``), and the files beside the Delta
log (lookup sidecars) go through obstore, single data-file columns through pyarrow's S3
client (made on first use), both configured from the same options (``object_stores``). Commits
on S3 are deltalake's conditional PUT of the next log file, so concurrent writers need no
lock service.

Writes. Rows are validated and duplicate-checked when they are added, then buffered per path
and committed by ``flush()`` or as soon as a path holds ``batch_size`` pending rows. Tables are
only ever appended to (``mode="error"`` to create, ``mode="append"`` with ``schema_mode="merge"``
afterwards) - never overwritten.

Parquet settings, log clean-up and the local store directory: ``orcapod.databases.delta_files``.

Checkpoints. Tables this database creates get ``delta.checkpointInterval`` =
``checkpoint_interval`` (default 10 locally, ``REMOTE_CHECKPOINT_INTERVAL`` = 8 on object
storage; Delta's own default is 100). Opening a table and committing
to it replay the JSON commits since the last checkpoint, so with 100 their cost grows with the
history: measured here, open 5 -> 34 ms and commit 6 -> 18 ms between the 1st and the 90th
commit after a checkpoint - per table, per incremental run. With 10 both stay ~5 ms; every
10th commit also writes a checkpoint (~15 ms on a small table, more with many data files).

Duplicate checks against committed rows use a committed-id index (``id_index.CommittedIds``):
record ids are random hashes, so file statistics cannot prune and a pushed-down query for the
incoming ids scans the whole ``__record_id`` column on every write (70-100 ms per 10k ids at
1M rows). Decision: per path, the first duplicate check of an instance reads the projected
``__record_id`` column once and keeps a 64-bit hash of every committed id (8 MB per million
records) with the table version and data files it reflects - one whole-column read per
process and path, to build an index (not a whole-column scan per question about some
rows). Writes of ids the caller already verified absent skip even that: ids that a read made
after ``committed_version(path)`` returned V did not find were absent at V (tables are
append-only), and ``add_records(..., absent_at=V)`` says so; they can only clash with rows
committed after V, so they are checked against a *partial* index that starts empty at V's data
files - no read at all when nobody committed since. Either index is kept current cheaply:
this instance's own commits are hashed in (a table it creates starts with the batch that
created it); when other writers moved the table, only the ``__record_id`` column of the files
added since is read (``pyarrow.parquet``, locally or from S3); if files were removed
(compaction), or the store is neither local nor on S3, the full index is rebuilt.
The index never misses a committed id (it may over-approximate), so a miss is definite and
hits are confirmed with a pushed-down query for just those ids (a small table on object
storage: its cached ids, ``delta_reads.stored_ids``): a collision can never reject or drop a
row. The ``__record_id`` column is written with a parquet bloom filter so such confirmation
queries and id lookups for a few ids skip most files.

Commits are compare-and-swap. Every pending row was checked against some table version; a
commit is attempted on top of exactly that version with ``max_commit_retries=0``, so it fails
if any other writer committed in between. The loser refreshes, re-checks its pending ids
against the new rows, drops what is now a duplicate, and tries again (up to
``max_commit_attempts``). Hence two processes writing the same path lose nothing and never
store one record id twice, also for overlapping ids under ``skip_duplicates=True`` (the first
committed row stays). The same makes refreshing before an add or a commit an optimisation, not
a condition of correctness: on object storage, where a refresh is a request, an add and the
flush after it use a snapshot read or probed within the last second as it is, unless this
process lost a commit to the path within the last minute (``PathState.fresh``). After a lost
commit the writer pauses a random time (``PathState.lost``: longer on object storage, where
an attempt takes tens of milliseconds) so that writers that lost together retry one after
another, growing so that ``max_commit_attempts`` (default 200) spans seconds of contention.
It pauses without the database's lock, so the process's other threads (look-ups while
results commit in the background) go on; the flush then resumes from the path's state.
A row added *without* ``skip_duplicates`` whose id another process committed first cannot be
stored; ``flush()`` commits the rest and then raises ``DuplicateRecordError`` naming them.

Exactly-once commits. Each commit carries a Delta application transaction
``(writer id, sequence number)``. When a write fails in a way that leaves its outcome unknown
(e.g. an I/O error after the commit file was written), the table is re-read and the rows are
dropped only if the transaction is recorded, so a retried commit can neither lose nor repeat a
batch. A failed flush raises ``FlushError`` naming the paths and keeps their rows pending.

Crash safety comes from Delta itself: a commit is a single atomic put-if-absent of a log file,
so a killed process leaves only unreferenced data files behind, which readers ignore.

Reads (``delta_reads``) refresh the table, so they also see rows other processes committed,
and go through deltalake's ``QueryBuilder`` (DataFusion) with the filter and projection in the
SQL, unless a lookup index, a column cache or a sidecar answers without a query.
``DeltaTable.to_pyarrow_*`` is never used: with deltalake 1.6.6 and pyarrow 26 a process that
used it often aborts at exit ("terminate called without an active exception"). Results are
cast back to the canonical Arrow types (DataFusion returns ``string_view`` etc.).

Notes (``write_note`` / ``read_note``) live beside the table (``table_notes``), bound to
``table_token`` = the table's Delta table id and version (a copied table keeps its notes).

Thread safety: one lock per database serialises all work on it (views share it), except
the pause after a lost commit.

deltalake is imported inside the functions that use it (it costs more to import than most of
orcapod), so importing orcapod does not import it.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orcapod.databases.backend import StoringBackend
from orcapod.databases.delta_files import (
    check_writable_dir,
    prepare_local_base,
    write_batch,
)
from orcapod.databases.delta_reads import (
    all_ids,
    all_records,
    known_stored,
    records_by_ids,
    records_where,
    remember_created_ids,
    remember_ids,
    stored_ids,
)
from orcapod.databases.delta_state import NO_TABLE, PathState, note_commit, write_errors
from orcapod.databases.id_index import CommittedIds, index_own_commit, sync_index
from orcapod.databases.object_log import ObjectLog
from orcapod.databases.object_stores import check_bucket, filesystem_of, object_store_of
from orcapod.databases.paths import (
    RecordPath,
    check_dirnames,
    segment_dirname,
    store_location,
    validate_path,
    validate_subpath,
)
from orcapod.databases.queries import with_columns
from orcapod.databases.records import (
    concat_records,
    dedupe_batch,
    drop_clashes,
    merge_schemas,
    normalize_ids,
    raise_flush_outcome,
)
from orcapod.databases.scoped import ScopedArrowDatabase
from orcapod.databases.table_files import TableFiles
from orcapod.databases.table_notes import load_note, save_note
from orcapod.errors import DatabaseError, InputValidationError, SchemaError
from orcapod.types.columns import RECORD_ID

__all__ = ["DeltaTableDatabase"]


#: checkpoint interval of tables created on object storage; requests per commit to write it /
#: to follow it from another process / to open the table: 4 -> 13.9 / 6.3 / 14-20, 8 -> 11.9 /
#: 5.1 / 16-22, 16 -> 10.3 / 4.5 / 32-38 (moto server, single-row commits)
REMOTE_CHECKPOINT_INTERVAL = 8


class DeltaTableDatabase(StoringBackend):
    """Records stored as Delta Lake tables under ``base_path`` (a directory or a URI)."""

    def __init__(
        self,
        base_path: str | os.PathLike[str],
        storage_options: Mapping[str, str] | None = None,
        batch_size: int = 10_000,
        max_commit_attempts: int = 200,
        checkpoint_interval: int | None = None,
        create_base_path: bool = True,
    ) -> None:
        for name, number in (
            ("batch_size", batch_size),
            ("max_commit_attempts", max_commit_attempts),
        ):
            if isinstance(number, bool) or not isinstance(number, int):
                raise InputValidationError(
                    f"{name} must be an int, got {number!r} ({type(number).__name__}); "
                    f"pass e.g. {name}=10000."
                )
        if batch_size < 1:
            raise InputValidationError(f"batch_size must be at least 1, got {batch_size}.")
        raw = store_location(base_path, storage_options)
        self._remote = "://" in raw
        if checkpoint_interval is None:
            checkpoint_interval = REMOTE_CHECKPOINT_INTERVAL if self._remote else 10
        if isinstance(checkpoint_interval, bool) or not isinstance(checkpoint_interval, int):
            raise InputValidationError(
                f"checkpoint_interval must be an int, got {type(checkpoint_interval).__name__}."
            )
        if checkpoint_interval < 1:
            raise InputValidationError(
                f"checkpoint_interval must be at least 1, got {checkpoint_interval}."
            )
        if max_commit_attempts < 1:
            raise InputValidationError(
                f"max_commit_attempts must be at least 1, got {max_commit_attempts}."
            )
        self._base = raw.rstrip("/") if self._remote else str(Path(raw).expanduser().absolute())
        if not self._remote:
            prepare_local_base(Path(self._base), create_base_path)
        self._storage_options = dict(storage_options) if storage_options else None
        self._filesystem = filesystem_of(self._base, self._storage_options)
        self._objects = object_store_of(self._base, self._storage_options)
        if self._remote and self._filesystem is not None:
            check_bucket(self._base, self._filesystem, self._objects)
        self._batch_size = batch_size
        self._max_commit_attempts = max_commit_attempts
        self._table_configuration = {"delta.checkpointInterval": str(checkpoint_interval)}
        self._writer_id = f"orcapod-{uuid.uuid4()}"
        self._seq = 0
        self._states: dict[RecordPath, PathState] = {}
        self._lock = threading.RLock()
        self._paused = threading.Condition(self._lock)  # (``_pause`` releases the lock)
        self._bloom_ndv = max(batch_size, 1024)

    def __repr__(self) -> str:
        return f"DeltaTableDatabase({self._base!r}, batch_size={self._batch_size})"

    @property
    def base_path(self) -> str:
        """The directory or URI holding the tables."""
        return self._base

    @property
    def batch_size(self) -> int:
        """Pending rows per path that trigger a commit."""
        return self._batch_size

    @property
    def storage_option_names(self) -> tuple[str, ...]:
        """The names of the ``storage_options`` given (their values may be secrets)."""
        return tuple(self._storage_options or ())

    def table_uri(self, path: Sequence[str]) -> str:
        """Where the Delta table of ``path`` lives."""
        key = validate_path(path)
        names = [segment_dirname(s) for s in key]
        if self._remote:
            return "/".join([self._base, *names])
        check_dirnames(key)
        return str(Path(self._base, *names))

    def object_log(self, path: Sequence[str]) -> ObjectLog | None:
        """The ``ObjectLog`` in ``<table of path>/_entries``, on local disk or S3; None for a
        store elsewhere (``gs://``, ...), whose files orcapod does not reach itself."""
        uri = self.table_uri(path)
        files = TableFiles.for_table(uri, self._filesystem, self._objects)
        return None if files is None else ObjectLog(files, "_entries")

    def check_writable(self) -> None:
        """Raise ``InputValidationError`` when a local store directory cannot be written (a
        read-only store can still be read; ``Pipeline.run`` checks this before computing)."""
        if not self._remote:
            check_writable_dir(self._base)

    def at(self, *subpath: str) -> ScopedArrowDatabase:
        """A view of the records under ``subpath`` (its names must fit in file names)."""
        if not self._remote:
            check_dirnames(validate_subpath(subpath))
        return super().at(*subpath)

    # ------------------------------------------------------------------ state and queries

    def _state(self, key: RecordPath) -> PathState:
        state = self._states.get(key)
        if state is None:
            uri = self.table_uri(key)
            state = self._states[key] = PathState(key, uri, self._storage_options)
            state.files = TableFiles.for_table(uri, self._filesystem, self._objects)
            if state.files is not None:
                state.files.know_sizes(state.size_of)
        return state

    def _committed_ids(
        self, key: RecordPath, state: PathState, ids: pa.Array, since: int = NO_TABLE
    ) -> set[str]:
        """Those of ``ids`` (known absent at version ``since``) that the committed snapshot
        holds: the id index rules out the fresh ones, a pushed-down id query confirms the
        possible hits."""
        if state.table is None or len(ids) == 0:
            return set()
        hits = self._sync_index(key, state, since).maybe_contains(ids, since)
        if not hits.any():
            return set()
        return stored_ids(state, ids.filter(pa.array(hits, pa.bool_())))

    def _sync_index(self, key: RecordPath, state: PathState, since: int) -> CommittedIds:
        """An id index of ``key`` covering ids absent at ``since``, at the snapshot's version."""
        assert state.table is not None
        state.index = sync_index(
            state.index,
            state.table,
            since,
            files=state.files,
            storage_options=self._storage_options,
            read_all=lambda: all_ids(state),
        )
        return state.index

    # ------------------------------------------------------------------ writes

    def table_token(self, path: Sequence[str]) -> str | None:
        """``delta:<Delta table id>@<version>``: a table deleted and created again gets a new
        id, and every commit (rows added, deleted or rewritten) a new version. The location is
        not part of it: a copy of a table holds the same rows, so its notes stay true. It names
        the snapshot reads use (``PathState.refresh_for_read``)."""
        key = validate_path(path)
        with self._lock:
            state = self._state(key)
            state.refresh_for_read()
            return state.token()

    def appended_token(self, path: Sequence[str], since: str | None) -> str | None:
        """The current token if every version after ``since`` (every version, for None) is
        an append this object committed (``PathState.appended_token``)."""
        key = validate_path(path)
        with self._lock:
            state = self._state(key)
            state.refresh_for_read()
            return state.appended_token(since)

    def count_records(self, path: Sequence[str]) -> int | None:
        """The rows of the snapshot this object last read or wrote, from its log
        (``PathState.row_count``): no request, even on object storage; the table is looked
        at first only when no snapshot is held (see the protocol)."""
        key = validate_path(path)
        with self._lock:
            state = self._state(key)
            if state.table is None:
                state.refresh_for_read()
            return state.row_count()

    def _save_note(self, key: RecordPath, name: str, token: str, text: str) -> None:
        with self._lock:
            files = self._state(key).files
        if files is not None:
            save_note(files, name, token, text)

    def _load_note(self, key: RecordPath, name: str) -> tuple[str, str] | None:
        with self._lock:
            files = self._state(key).files
        return None if files is None else load_note(files, name)

    def committed_version(self, path: Sequence[str]) -> int:
        """The latest committed version of the table of ``path`` (-1: no table yet). Ids that
        a read made after this call does not find were absent at this version: pass it as
        ``absent_at`` when adding them (module docstring)."""
        key = validate_path(path)
        with self._lock:
            state = self._state(key)
            state.refresh_for_read()
            return state.version

    def _add(
        self,
        key: RecordPath,
        records: pa.Table,
        skip_duplicates: bool,
        absent_at: int | None,
    ) -> None:
        records = dedupe_batch(records, key, skip_duplicates)
        with self._lock:
            state = self._state(key)
            if skip_duplicates and known_stored(state, records):
                return
            state.refresh_for_write(NO_TABLE if absent_at is None else absent_at)
            stored = merge_schemas(state.stored_schema(), records.schema, key)
            pending_schema = merge_schemas(state.pending_schema, records.schema, key)
            merge_schemas(stored, pending_schema, key)
            ids = records.column(RECORD_ID).combine_chunks()
            clashes: set[str] = set()
            if state.pending:  # ids added earlier and not committed yet
                clashes = state.pending_id_set().intersection(ids.to_pylist())
            since = NO_TABLE if absent_at is None else absent_at
            clashes |= self._committed_ids(key, state, ids, since)
            if clashes:
                incoming = ids.to_pylist()
                records, _ = drop_clashes(records, incoming, clashes, key, skip_duplicates)
            if records.num_rows == 0:
                remember_ids(state)
                return
            if not state.pending:
                state.checked_version = state.verified_since = state.version
            elif state.checked_version != state.version:
                state.checked_version = None
            state.add_pending(records)
            if not skip_duplicates:
                state.strict_ids.update(records.column(RECORD_ID).to_pylist())
            state.pending_schema = pending_schema
            if state.pending_rows >= self._batch_size:
                self._flush_paths([key])

    def flush(self) -> None:
        with self._lock:
            self._flush_paths([key for key, state in self._states.items() if state.pending])

    def _flush_paths(self, keys: Sequence[RecordPath]) -> None:
        failures: dict[RecordPath, Exception] = {}
        rejected: dict[RecordPath, set[str]] = {}
        for key in keys:
            try:
                lost = self._flush_path(key, self._states[key])
            except (DatabaseError, SchemaError) as err:
                failures[key] = err
            else:
                if lost:
                    rejected[key] = lost
        raise_flush_outcome(failures, rejected)

    def _flush_path(self, key: RecordPath, state: PathState) -> set[str]:
        """Commit the pending rows of ``key``; return the ids dropped because another writer
        committed them first although they were added without ``skip_duplicates``."""
        rejected: set[str] = set()
        attempts = 0
        while state.pending:
            # a snapshot refreshed moments ago (by the add) is as good as a new one: if the
            # table moved since, the compare-and-swap commit fails and the next turn refreshes
            if attempts or state.inflight_seq is not None or not state.fresh():
                state.refresh()
            if state.inflight_seq is not None:
                landed = self._landed(state, state.inflight_seq)
                state.inflight_seq = None
                if landed:
                    self._drop_first_batch(state)
                    continue
            if state.checked_version != state.version:
                rejected |= self._recheck(key, state)
                state.checked_version = state.version
                if not state.pending:
                    break
            attempts += 1
            if attempts > self._max_commit_attempts:
                raise DatabaseError(
                    f"Gave up committing to path {key!r} after {self._max_commit_attempts} "
                    "attempts: other writers kept committing first. Retry the flush later or "
                    "raise max_commit_attempts."
                )
            started = time.monotonic()
            if self._commit(key, state):
                self._drop_first_batch(state)
            else:
                state.checked_version = None
                self._pause(state.lost(started, attempts))
        state.clear_pending()
        return rejected

    def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` without the lock the caller holds (module docstring)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._paused.wait(left)

    def _commit(self, key: RecordPath, state: PathState) -> bool:
        """Try one compare-and-swap commit of all pending rows as one batch. True when it
        landed, False when another writer committed first; DatabaseError otherwise."""
        batch = concat_records(state.pending)
        assert batch is not None and state.pending_schema is not None
        state.pending = [with_columns(batch, state.pending_schema, state.pending_schema.names)]
        self._seq += 1
        seq = self._seq
        creating = state.table is None
        base = state.version
        before = state.files_before_commit()
        from deltalake.exceptions import CommitFailedError

        started = time.monotonic()
        note_commit(state.uri)
        try:
            write_batch(
                state.uri if state.table is None else state.table,
                state.pending[0],
                base,
                (self._writer_id, seq),
                self._table_configuration,
                self._storage_options,
                self._bloom_ndv,
            )
        except CommitFailedError:
            return False
        except write_errors() as err:
            state.inflight_seq = seq
            try:
                state.refresh()
            except DatabaseError as refresh_err:
                raise DatabaseError(
                    f"Writing to {state.uri} failed ({err}) and the table cannot be re-read "
                    f"to tell whether the commit landed ({refresh_err})."
                ) from err
            state.inflight_seq = None
            if self._landed(state, seq):
                return True
            if creating and state.table is not None:
                return False  # another writer created the table first
            raise DatabaseError(f"Writing to {state.uri} failed: {err}") from err
        if creating:
            state.refresh(reopen=True)
        if state.table is not None:  # (an append that landed is version base + 1: no retries)
            if state.version == base + 1:
                state.committed(started)
            state.own_versions.setdefault(str(state.table.metadata().id), set()).add(base + 1)
            ids = state.pending[0].column(RECORD_ID)
            if creating:  # the new table holds exactly our batch while it is at version 0
                remember_created_ids(state, ids)
                empty = CommittedIds(NO_TABLE, frozenset())
                fresh = index_own_commit(empty, state.table, base, ids)
                state.index = fresh if fresh is not None and fresh.version == base + 1 else None
            else:
                state.index = index_own_commit(state.index, state.table, base, ids)
        state.record_commit_sidecars(before, base)
        return True

    def _landed(self, state: PathState, seq: int) -> bool:
        if state.table is None:
            return False
        committed = state.table.transaction_version(self._writer_id)
        return committed is not None and committed >= seq

    def _drop_first_batch(self, state: PathState) -> None:
        """``pending[0]`` is committed: forget it (all of pending when it is the only one)."""
        first = state.pending.pop(0)
        if not state.pending:
            state.clear_pending()
            return
        state.pending_rows -= first.num_rows
        state.forget_pending_ids()
        if state.strict_ids:
            state.strict_ids -= set(first.column(RECORD_ID).to_pylist())
        state.checked_version = None

    def _recheck(self, key: RecordPath, state: PathState) -> set[str]:
        """Drop pending rows whose ids were committed since they were checked; return those
        that had been added without ``skip_duplicates``."""
        if state.table is None:
            return set()
        stored = state.stored_schema()
        assert stored is not None and state.pending_schema is not None
        merge_schemas(stored, state.pending_schema, key)
        columns = [t.column(RECORD_ID) for t in state.pending]
        ids = pa.chunked_array(
            [c for column in columns for c in column.chunks], columns[0].type
        ).combine_chunks()
        # every pending id was verified absent at ``verified_since`` (or later)
        since = NO_TABLE if state.verified_since is None else state.verified_since
        found = self._committed_ids(key, state, ids, since)
        if not found:
            return set()
        value_set = pa.array(list(found), type=pa.string())
        kept = [
            t.filter(pc.invert(pc.is_in(t.column(RECORD_ID), value_set))) for t in state.pending
        ]
        state.pending = [t for t in kept if t.num_rows]
        state.forget_pending_ids()
        state.pending_rows = sum(t.num_rows for t in state.pending)
        rejected = state.strict_ids & found
        state.strict_ids -= found
        return rejected

    # ------------------------------------------------------------------ reads (delta_reads)

    def get_records_by_ids(
        self,
        path: Sequence[str],
        ids: Collection[str] | pa.Array | pa.ChunkedArray | np.ndarray[Any, Any],
        record_id_column: str | None = None,
        *,
        locate: bool = False,
    ) -> pa.Table | None:
        """``locate``: build this table's record-id locator if needed, so a look-up of a few
        ids reads one row group instead of querying (``id_locator``; used by ``lineage``).
        Without it, a locator is used only when one is already at hand."""
        key = validate_path(path)
        wanted = normalize_ids(ids)
        with self._lock:
            return records_by_ids(self._state(key), wanted, record_id_column, locate)

    def get_all_records(
        self, path: Sequence[str], record_id_column: str | None = None
    ) -> pa.Table | None:
        key = validate_path(path)
        with self._lock:
            return all_records(self._state(key), record_id_column)

    def get_records_with_column_value(
        self,
        path: Sequence[str],
        constraints: Mapping[str, object],
        record_id_column: str | None = None,
        columns: Sequence[str] | None = None,
        *,
        statistics: bool = False,
    ) -> pa.Table | None:
        """``statistics``: read the committed rows by the data files' row-group statistics
        instead of a query (``stats_scan``: no DataFusion start; used by ``lineage`` to find
        one row by its tag)."""
        key = validate_path(path)
        with self._lock:
            return records_where(
                self._state(key), constraints, record_id_column, columns, statistics
            )
