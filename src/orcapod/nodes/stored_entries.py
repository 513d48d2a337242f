"""``StoredEntries``: what a node's tables held when a chunked run started, read once.

A ``FunctionNode`` run over a large input goes a chunk at a time (``orcapod.nodes.node_run``).
Asking the store about each chunk's entries would scan the record table once per chunk, so
the run reads, once, at its start:

* the node's pipeline records, projected onto ``__record_id`` (the entry id) and
  ``__packet_id`` (one scan), with the entry ids as 128-bit keys sorted for matching
  (``orcapod.functions.engine.keys``); ``version`` is the record table's committed version
  before the read, so a chunk's novel entries are verified absent at it (their records skip
  the database's duplicate check against everything committed up to it);
* on first need, whether the result every record points at still exists
  (``results_exist_at``): the 64-bit hashes of the stored result ids, sorted, probed once
  with every record's result id. When every one exists, the record table gets a note
  (``write_note``, a cache beside the table) naming both tables' states
  (``table_token``); a later run that finds the note, with both tables still in those states,
  knows the answer without reading the result ids. Any commit to either table (rows added,
  deleted by maintenance, the table replaced) changes a state, so the next run checks again;
  so does a result store that is another one (other token) or that cannot name its states
  (no token: in-memory stores name them only within their process).
* which stored entries some chunk asked about (``recorded``); at the end of a run, the others
  are superseded (``superseded``, ``orcapod.nodes.membership``): no extra read.
* at the end of a run (``note_run``), the same note for the tables the run leaves, when it
  knows the answer without a check: every record it started with was known to have its
  result (there were none, the note said so, or the check found them all), and since the run
  started both tables only received rows this run's database objects appended
  (``appended_token``). Its own records point at results it committed first or found, and
  appends remove nothing, so every record still has its result.

Memory: per recorded entry its 16-byte key and its ``__packet_id`` string (about 45 bytes),
and 8 bytes per stored result once ``results_exist`` needs them; nothing for an empty store
(a first run). Rows this run writes are not added:
an entry repeated in a later chunk looks novel, its packet is then found by the chunk's
result look-up, and the database drops its second record (a duplicate id).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from orcapod._arrow_without_pandas import column_numpy
from orcapod._lazy import pc
from orcapod.databases.id_index import hash_ids
from orcapod.functions.engine.identify import InputPlan
from orcapod.functions.engine.keys import string_keys
from orcapod.nodes.membership import HeldEntries
from orcapod.nodes.node_store import NodeStore
from orcapod.nodes.records import FILTER_LIMIT
from orcapod.types.columns import PACKET_ID, PIPELINE_ENTRY_ID

__all__ = ["RESULTS_EXIST_NOTE", "STORED_ROW", "StoredEntries"]

#: the column of ``StoredEntries.recorded``'s answer holding each record's stored row
STORED_ROW = "stored_row"
#: the record table's note saying every record's result exists (module docstring)
RESULTS_EXIST_NOTE = "results-exist"


class StoredEntries:
    """A node's recorded entries (and, lazily, its stored result ids), read once."""

    def __init__(self, store: NodeStore) -> None:
        self._store = store
        database, path = store.pipeline_db, store.record_path
        token = database.table_token(path)
        self.version = database.committed_version(path)
        table = database.get_records_with_column_value(
            path, {}, record_id_column=PIPELINE_ENTRY_ID, columns=[PACKET_ID]
        )
        # the state the records were read in (None: unnamed, or it moved during the read)
        self._token = token if token is not None and database.table_token(path) == token else None
        results = store.cache
        #: (records, results) tokens at the start (None: no table), if the read was stable
        self._start: tuple[str | None, str | None] | None = None
        if self._token is not None or (token is None and self.version == -1 and table is None):
            self._start = (self._token, results.database.table_token(results.record_path))
        self._all_exist = table is None or table.num_rows == 0  # every record's result exists
        self._noted: str | None = None  # the note known to be stored, as read or written
        #: the records' result ids (one array; the entry ids are kept only as keys)
        self._packet_ids: pa.Array | None = None
        self._keys = np.empty((0, 2), dtype="<u8")
        if table is not None and table.num_rows:
            self._packet_ids = table.column(PACKET_ID).combine_chunks()
            self._keys = string_keys(table.column(PIPELINE_ENTRY_ID))
        #: sorted once on the first 64 bits: each chunk is then one searchsorted, marking
        #: the stored records some chunk held (``superseded``)
        self._held = HeldEntries(self._keys)
        self._result_hashes: np.ndarray | None = None
        self._exists: np.ndarray | None = None  # per stored record (``results_exist_at``)

    def recorded(self, plan: InputPlan) -> tuple[pa.Table, np.ndarray] | None:
        """Records of the plan's entries; per returned row, its entry index (as
        ``NodeStore.recorded`` answers, projected onto ``__packet_id``)."""
        if self._packet_ids is None or plan.num_entries == 0:
            return None
        row_of = self._held.rows_of(plan.entry_keys, plan.entry_order)
        entries = np.flatnonzero(row_of >= 0)
        if len(entries) == 0:
            return None
        rows = pa.array(row_of[entries])
        return pa.table({PACKET_ID: self._packet_ids.take(rows), STORED_ROW: rows}), entries

    def superseded(self) -> np.ndarray:
        """Keys of the stored entries no chunk asked about (``recorded``): once every chunk
        of the input was, the entries the input no longer holds (``orcapod.nodes.membership``)."""
        return self._held.superseded()

    def results_exist_at(self, rows: np.ndarray) -> np.ndarray:
        """Per stored record row (one pointing at a result): does its result exist? Decided
        for every record at the first call (one pass), then looked up per chunk."""
        if self._exists is None:
            assert self._packet_ids is not None
            results = self._store.cache
            results_token = results.database.table_token(results.record_path)
            note = (
                None
                if self._token is None or results_token is None
                else (f"{self._token}\n{results_token}")
            )
            database, path = self._store.pipeline_db, self._store.record_path
            if note is not None and database.read_note(path, RESULTS_EXIST_NOTE) == note:
                self._exists = np.ones(len(self._packet_ids), dtype=bool)
                self._all_exist = True
                self._noted = note
                return self._exists[rows]
            pointing = np.flatnonzero(column_numpy(pc.is_valid(self._packet_ids)))
            self._exists = np.zeros(len(self._packet_ids), dtype=bool)
            if len(pointing):
                ids = self._packet_ids.take(pa.array(pointing, pa.int64()))
                self._exists[pointing] = self.results_exist(ids)
            unchanged = results.database.table_token(results.record_path) == results_token
            self._all_exist = bool(self._exists[pointing].all())
            if note is not None and unchanged and self._all_exist:
                database.write_note(path, RESULTS_EXIST_NOTE, note)
                self._noted = note
        return self._exists[rows]

    def note_run(self) -> None:
        """Note, for the tables as the finished run leaves them, that every record's result
        exists, when the run knows it (module docstring)."""
        if self._start is None or not self._all_exist:
            return
        records_start, results_start = self._start
        database, path = self._store.pipeline_db, self._store.record_path
        results = self._store.cache
        records = database.appended_token(path, records_start)
        stored = results.database.appended_token(results.record_path, results_start)
        note = f"{records}\n{stored}"
        if records is not None and stored is not None and note != self._noted:
            database.write_note(path, RESULTS_EXIST_NOTE, note)  # (not again when unchanged)

    def results_exist(self, packet_ids: pa.Array) -> np.ndarray:
        """Per id (no nulls): is a result stored under it (see ``NodeStore.results_exist``)?"""
        if len(packet_ids) <= FILTER_LIMIT:
            return self._store.results_exist(packet_ids)
        if self._result_hashes is None:
            cache = self._store.cache
            table = cache.database.get_records_with_column_value(
                cache.record_path, {}, record_id_column=PACKET_ID, columns=[]
            )
            stored = np.empty(0, dtype=np.uint64)
            if table is not None:
                stored = np.sort(hash_ids(table.column(PACKET_ID)))
            self._result_hashes = stored
        stored = self._result_hashes
        if len(stored) == 0:
            return np.zeros(len(packet_ids), dtype=bool)
        wanted = hash_ids(packet_ids)
        # the common case first: every result exists. Sorted probes (a plain sort, no
        # argsort) answer that with one searchsorted that stays in cache
        probes = np.sort(wanted)
        at = np.minimum(np.searchsorted(stored, probes), len(stored) - 1)
        if np.array_equal(stored[at], probes):
            return np.ones(len(wanted), dtype=bool)
        order = np.argsort(wanted)
        at = np.minimum(np.searchsorted(stored, wanted[order]), len(stored) - 1)
        out = np.empty(len(wanted), dtype=bool)
        out[order] = stored[at] == wanted[order]
        return out
