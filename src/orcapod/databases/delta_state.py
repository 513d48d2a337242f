"""``PathState``: what a ``DeltaTableDatabase`` knows about one record path.

The cached snapshot of the path's Delta table (refreshed to the latest committed version on
every read and write; ``None`` while no table exists), its canonical schema (cached per
version), queries on it, and the rows added but not yet committed with the versions they were
checked against (see the ``delta`` module docstring for how writes use them).

Reading a whole table (``read_all``) of a local store reads its snapshot's parquet files
directly with pyarrow instead of through a DataFusion query: the first DataFusion query of a
process costs a fixed ~0.2-1 s (its runtime starting), which a command such as
``orcapod status`` that reads two small tables must not pay. The files are exactly the
snapshot's (``file_uris``; orcapod writes no deletion vectors, partitions or column mapping),
and each is cast to the table's canonical schema, a column missing from an older file (schema
evolution) read as nulls. Object stores keep the query.

deltalake is imported inside the functions that use it (it costs more to import than most of
orcapod), so importing orcapod does not import it.

Refreshing on object storage. deltalake's incremental update of a snapshot costs a listing of
the log and a read of ``_last_checkpoint``, two requests, on every read and write. The next
version's commit file is always created before any later one, so a snapshot at version V is
the latest exactly while ``_delta_log/<V+1>.json`` does not exist: one HEAD request tells,
and the log is read again only when it does (for a path without a table yet: the first
commit file). Decision: the probe is trusted only for ``REPLAY_SECONDS`` (60 s) after the log
was last read, so log clean-up (which removes old commit files, never recent ones) cannot hide
a version from a long-lived snapshot.

Reads right after a refresh. A node asks for a table's committed version and then reads it,
or reads it twice, within milliseconds; on object storage each would be a probe. A read (and
``committed_version``) therefore uses a snapshot confirmed current within the last
``READ_FRESH_SECONDS`` (0.1 s) as it is, unless this process committed to the table since,
through any database object (``note_commit``): so a process always reads its own writes,
and a commit by another process is seen by a read starting at most 0.1 s after it landed,
as if the read had started that much earlier (reads and other processes' commits are not
ordered anyway). Writes are unaffected: commits are compare-and-swap on the snapshot's
version. The same holds for ``table_token`` and ``appended_token``: a token names the
snapshot the reads use, so a note bound to it describes exactly the rows read.

After this process's own commit. A commit that lands at version V + 1 on a snapshot at V is
proof that no other commit landed before it started (it would have taken V + 1 and failed
ours), and deltalake's snapshot after the commit holds it. So the snapshot is as current as a
refresh made when the commit started: on object storage it counts as confirmed then
(``PathState.committed``), and reads right after a commit (a node's end-of-run tokens and
notes) need no probe.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa

from orcapod.databases.column_cache import ColumnCache, data_files
from orcapod.databases.column_index import PACK_AFTER, REMOTE_PACK_AFTER, LookupIndex
from orcapod.databases.delta_damage import damage_error
from orcapod.databases.id_index import CommittedIds
from orcapod.databases.id_locator import IdLocator
from orcapod.databases.paths import RecordPath
from orcapod.databases.records import canonical_schema
from orcapod.databases.table_files import TableFiles
from orcapod.types.columns import RECORD_ID

if TYPE_CHECKING:
    from deltalake import DeltaTable

__all__ = [
    "COMMIT_FRESH_SECONDS",
    "CONTENDED_SECONDS",
    "FRESH_SECONDS",
    "MAX_PAUSE",
    "NO_TABLE",
    "READ_FRESH_SECONDS",
    "REPLAY_SECONDS",
    "PathState",
    "note_commit",
    "write_errors",
]

#: the version of a table that does not exist yet
NO_TABLE = -1
#: a local snapshot refreshed this recently need not be refreshed before a commit attempt
FRESH_SECONDS = 0.1
#: on object storage, a snapshot whose log was read this recently is checked by one probe
REPLAY_SECONDS = 60.0
#: on object storage, a read uses a snapshot confirmed current this recently as it is
READ_FRESH_SECONDS = 0.1
#: on object storage, a snapshot confirmed current this recently need not be probed before a
#: commit attempt, unless a commit of this process to the path lost within
#: ``CONTENDED_SECONDS``
COMMIT_FRESH_SECONDS = 1.0
CONTENDED_SECONDS = 60.0
#: the longest pause after a lost commit on object storage
MAX_PAUSE = 1.0

#: per table location, a number that changes at every commit attempt of this process
_LAST_COMMIT: dict[str, int] = {}
_COMMIT_NUMBERS = itertools.count()


def note_commit(uri: str) -> None:
    """This process is about to attempt a commit to the table at ``uri``: its snapshots
    confirmed before must be refreshed before the next read (module docstring)."""
    _LAST_COMMIT[uri] = next(_COMMIT_NUMBERS)


@functools.cache
def write_errors() -> tuple[type[Exception], ...]:
    """What deltalake raises when a read or write of a table fails."""
    from deltalake.exceptions import DeltaError

    return (DeltaError, OSError, pa.ArrowException)


@dataclass
class PathState:
    """Everything the database knows about one path."""

    key: RecordPath
    uri: str
    storage_options: Mapping[str, str] | None = None
    table: DeltaTable | None = None
    schema_version: int | None = None
    schema: pa.Schema | None = None
    pending: list[pa.Table] = field(default_factory=list)
    pending_rows: int = 0
    strict_ids: set[str] = field(default_factory=set)
    _pending_ids: set[str] | None = None  # (``pending_id_set``)
    pending_schema: pa.Schema | None = None
    checked_version: int | None = None
    verified_since: int | None = None
    inflight_seq: int | None = None
    index: CommittedIds | None = None
    lookups: LookupIndex | None = None
    locator: IdLocator | None = None
    files: TableFiles | None = None
    columns: ColumnCache | None = None
    #: per Delta table id, the versions this database object committed (appends)
    own_versions: dict[str, set[int]] = field(default_factory=dict)
    refreshed_at: float = -math.inf
    replayed_at: float = -math.inf
    #: ``_LAST_COMMIT`` of the table when the snapshot was last confirmed current
    commits_seen: int | None = None
    #: the table's ids sidecar was asked and did not answer (``delta_reads.known_stored``)
    ids_unknown: bool = False
    #: when a commit attempt of this process last lost to another writer's
    lost_at: float = -math.inf

    @property
    def version(self) -> int:
        return NO_TABLE if self.table is None else int(self.table.version())

    def clear_pending(self) -> None:
        self.pending = []
        self.pending_rows = 0
        self._pending_ids = None
        self.strict_ids = set()
        self.pending_schema = None
        self.checked_version = None
        self.verified_since = None
        self.inflight_seq = None

    def pending_id_set(self) -> set[str]:
        """The ids of the pending rows: built on first need (a writer that adds and then
        flushes never needs it), then kept up to date by ``add_pending`` until the pending
        rows change otherwise (``forget_pending_ids``)."""
        if self._pending_ids is None:
            self._pending_ids = {i for t in self.pending for i in t.column(RECORD_ID).to_pylist()}
        return self._pending_ids

    def add_pending(self, records: pa.Table) -> None:
        """Add ``records`` to the pending rows."""
        self.pending.append(records)
        self.pending_rows += records.num_rows
        if self._pending_ids is not None:
            self._pending_ids.update(records.column(RECORD_ID).to_pylist())

    def forget_pending_ids(self) -> None:
        """Pending rows were dropped: the id set is built again when next needed."""
        self._pending_ids = None

    def token(self) -> str | None:
        """``delta:<Delta table id>@<version>`` (the database's ``table_token``); None without
        a table or with rows pending."""
        if self.table is None or self.pending:
            return None
        return f"delta:{self.table.metadata().id}@{self.version}"

    def row_count(self) -> int | None:
        """The snapshot's rows, summed from its add actions' row counts (in memory: no
        request); 0 without a table; None with rows pending or a file whose count the log
        does not record."""
        if self.pending:
            return None
        if self.table is None:
            return 0
        total = 0
        for data_file in data_files(self.table).values():
            if data_file.rows is None:
                return None
            total += data_file.rows
        return total

    def appended_token(self, since: str | None) -> str | None:
        """``token()`` if every version after the one ``since`` names (every version, for
        None) is an append this database object committed (``own_versions``), else None."""
        token = self.token()
        if token is None or self.table is None:
            return None
        first = 0
        if since is not None:
            table, _, version = since.rpartition("@")
            if table != token.rpartition("@")[0]:
                return None  # another table
            first = int(version) + 1
        table_id = str(self.table.metadata().id)  # (a UUID string, typed as int)
        own = self.own_versions.get(table_id, set())
        return token if all(v in own for v in range(first, self.version + 1)) else None

    def lookup_index(self) -> LookupIndex | None:
        """The persistent lookup indexes of the table (``column_index``); None when its store
        has no filesystem for them."""
        if self.lookups is None and self.files is not None:
            pack_after = REMOTE_PACK_AFTER if self.files.remote else PACK_AFTER
            self.lookups = LookupIndex(self.files, pack_after)
        return self.lookups

    def column_cache(self) -> ColumnCache | None:
        """The cache of whole projected columns of a table on object storage (None locally:
        ``column_cache``)."""
        if self.columns is None and self.files is not None and self.files.remote:
            self.columns = ColumnCache(self.files)
        return self.columns

    def files_before_commit(self) -> set[str] | None:
        """The table's data files before a commit, when this process keeps sidecars that
        record the files a commit adds (lookup indexes of looked-up columns, cached
        projections: ``record_commit_sidecars``); None when it keeps none."""
        lookups, cache = self.lookup_index(), self.column_cache()
        if not ((lookups is not None and lookups.columns) or (cache is not None and cache.wanted)):
            return None
        return set() if self.table is None else set(self.table.file_uris())

    def record_commit_sidecars(self, before: set[str] | None, base: int) -> None:
        """This process's commit of ``pending[0]`` on top of version ``base`` landed: the
        lookup indexes and cached projections record the data files it added (``before``:
        ``files_before_commit``). Nothing when another commit landed in between (the files
        are then indexed by the next read)."""
        if before is None or self.table is None or self.version != base + 1:
            return
        added = [f for f in self.table.file_uris() if f not in before]
        lookups, cache = self.lookup_index(), self.column_cache()
        if lookups is not None and lookups.columns:
            lookups.record_commit(added, self.pending[0])
        if cache is not None and cache.wanted:
            stored = self.stored_schema()
            assert stored is not None  # (a table has a stored schema)
            cache.record_commit(added, self.pending[0], stored, self.table)

    def size_of(self, name: str) -> int | None:
        """The size of data file ``name`` in the cached snapshot (None: not in it, or no
        table yet); what ``TableFiles`` reads a data file with on object storage."""
        if self.table is None:
            return None
        fact = data_files(self.table).get(name)
        return None if fact is None else fact.size

    @property
    def remote(self) -> bool:
        """Is the table on object storage (where every read of its log is a request)?"""
        return self.files is not None and self.files.remote

    def fresh(self) -> bool:
        """May a commit attempt start from the cached snapshot without refreshing it? Locally
        when it was refreshed within the last ``FRESH_SECONDS``; on object storage within the
        last ``COMMIT_FRESH_SECONDS``, as a refresh there is a request and the commit is a
        compare-and-swap: one made on a stale snapshot fails, and is retried after a refresh
        (``delta`` module docstring). A failed attempt costs a data file written in vain and
        two or three requests, a probe one request: so on object storage a snapshot older
        than that is probed (a small run commits well within it; a long one commits every
        few seconds), and every snapshot is while other writers are committing to the table
        (a commit of this process lost within ``CONTENDED_SECONDS``)."""
        now = time.monotonic()
        if not self.remote:
            return now - self.refreshed_at < FRESH_SECONDS
        contended = now - self.lost_at < CONTENDED_SECONDS
        return not contended and now - self.refreshed_at < COMMIT_FRESH_SECONDS

    def lost(self, started: float, attempts: int) -> float:
        """A commit attempt started at ``started`` (``time.monotonic()``), this process's
        ``attempts``-th, lost to another writer's: note it (``fresh``) and return how long to
        pause before the next, a random time so that writers that lost together retry one
        after another. Locally up to ``attempts`` ms (at most 50 ms): a lost attempt costs
        less than a longer pause (measured with 4 processes finishing together). On object
        storage up to ``attempts`` times as long as the attempt took (at most 50 times, and
        at most ``MAX_PAUSE``): an attempt there takes tens of milliseconds, so a pause of a
        few milliseconds separated nobody. Short at first, as the winner never pauses and a
        long pause lets a fast writer starve the loser."""
        self.lost_at = time.monotonic()
        took = max(self.lost_at - started, 0.001) if self.remote else 0.001
        return random.uniform(0, min(took * min(attempts, 50), MAX_PAUSE))

    def refresh_for_write(self, at_least: int) -> None:
        """``refresh`` before rows are added, except on object storage while the snapshot is
        ``fresh`` and at version ``at_least`` or later: the rows are checked against it and
        committed by compare-and-swap on top of it, so a commit another process made since
        fails that commit, which refreshes and checks them again (a request saved per add)."""
        if not (self.remote and self.fresh() and self.version >= at_least):
            self.refresh()

    def refresh_for_read(self) -> None:
        """``refresh``, except on object storage while the snapshot was confirmed current
        within ``READ_FRESH_SECONDS`` and this process has not committed to the table since
        (module docstring)."""
        recent = time.monotonic() - self.refreshed_at < READ_FRESH_SECONDS
        if not (self.remote and recent and _LAST_COMMIT.get(self.uri) == self.commits_seen):
            self.refresh()

    def committed(self, started: float) -> None:
        """This process's commit, started at ``started`` (``time.monotonic()`` before
        ``note_commit``), landed on top of the snapshot it was attempted on, and the snapshot
        now holds it: on object storage it is as current as a refresh made at ``started``
        (module docstring). Locally nothing changes (a refresh there is not a request)."""
        if self.remote and self.table is not None:
            self.refreshed_at = self.replayed_at = started
            self.commits_seen = _LAST_COMMIT.get(self.uri)

    def refresh(self, reopen: bool = False) -> None:
        """Bring the cached snapshot up to the latest committed version (module docstring:
        on object storage usually one request, when nothing was committed since).
        ``reopen``: read the log without probing first (the caller knows it changed)."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        now = time.monotonic()
        seen = _LAST_COMMIT.get(self.uri)
        if not reopen and self._unchanged(now):
            self.refreshed_at, self.commits_seen = now, seen
            return
        self.replayed_at = now
        try:
            if self.table is None:
                options = None if self.storage_options is None else dict(self.storage_options)
                self.table = DeltaTable(self.uri, storage_options=options)
            else:
                self.table.update_incremental()
        except TableNotFoundError:
            self.table = None
        except write_errors() as err:
            raise damage_error(self.key, self.uri, err, "read") from err
        # (only a refresh that succeeded makes the snapshot fresh)
        self.refreshed_at, self.commits_seen = now, seen

    def _unchanged(self, now: float) -> bool:
        """On object storage, is the snapshot (or the absence of a table) read within
        ``REPLAY_SECONDS`` still the latest? Its next commit file does not exist."""
        if self.files is None or not self.files.remote:
            return False
        if now - self.replayed_at > REPLAY_SECONDS:
            return False
        return not self.files.exists(f"_delta_log/{self.version + 1:020d}.json")

    def stored_schema(self) -> pa.Schema | None:
        """The canonical schema of the committed table (cached per version)."""
        if self.table is None:
            return None
        if self.schema_version != self.version:
            self.schema = canonical_schema(pa.schema(self.table.schema().to_arrow()))
            self.schema_version = self.version
        return self.schema

    def read_all(self) -> pa.Table:
        """Every committed row (canonical types), see the module docstring."""
        import pyarrow.parquet as pq

        assert self.table is not None
        files = self.table.file_uris()
        if any("://" in f and not f.startswith("file://") for f in files):
            return self.query("SELECT * FROM t")
        stored = self.stored_schema()
        assert stored is not None
        parts = []
        try:
            for file in files:
                part = pq.ParquetFile(file.removeprefix("file://")).read()
                columns = [
                    part.column(f.name).cast(f.type)
                    if f.name in part.column_names
                    else pa.nulls(part.num_rows, f.type)
                    for f in stored
                ]
                parts.append(pa.Table.from_arrays(columns, schema=stored))
        except (OSError, pa.ArrowException) as err:
            raise damage_error(self.key, self.uri, err, "read") from err
        if not parts:
            return stored.empty_table()
        return pa.concat_tables(parts)

    def query(self, sql: str) -> pa.Table:
        """Run ``sql`` (table name ``t``) on the committed snapshot; canonical types."""
        from deltalake import QueryBuilder

        assert self.table is not None
        try:
            reader = QueryBuilder().register("t", self.table).execute(sql)
            result = pa.RecordBatchReader.from_stream(reader).read_all()
        except write_errors() as err:
            raise damage_error(self.key, self.uri, err, "query") from err
        stored = self.stored_schema()
        assert stored is not None
        target = pa.schema([stored.field(name) for name in result.column_names])
        return result.cast(target)
