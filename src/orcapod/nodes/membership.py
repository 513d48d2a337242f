"""Membership: which of a function node's records its last complete run no longer saw.

A node's records table keeps a record per entry (tags, system tags and input packet hash)
the node ever stored; a run reuses a record whose entry comes back and never writes it
again. A live node knows its input, so it shows exactly the records of that input. A reader
that has only the store (``orcapod show``, ``StoreView``, lineage from the store) needs to be
told which records the node's last run left behind: its input no longer held their entries
(a row deleted, an input changed back to an earlier value, positional source ids shifted).
Those are *superseded*; readers drop them before taking the newest record per tag.

How a run finds them, without costing the common runs anything:

* Only a run that saw its node's WHOLE current input and ended normally records membership
  (a synchronous ``run()`` and a streaming run that read its input to the end); ``verify``
  and a run that raised do not, and readers keep the last recorded membership.
* A run over one chunk first compares counts (``ChunkWork.every_record_held``): right
  after its look-up read the records of its input's entries, it counts the table's rows
  (``ArrowDatabase.count_records``: on Delta the snapshot the read used, from its log, with
  no data read and no request; on SQL a ``COUNT(*)``, of a state at least as new). When the
  table holds no more rows than the read found, every record is one of the input's (rows
  are only added, and the count is of a state at least as new as the read's), and the
  records the run then writes are its input's: nothing is superseded, nothing more is read.
  So an unchanged rerun and an append-only one read and write nothing more. Otherwise, at
  its end, it reads the recorded entry ids once (projected on the id,
  ``superseded_of_plan``) and keeps those the input does not hold (numpy on the 128-bit
  keys).
* A chunked run reads every recorded entry at its start anyway (``StoredEntries``) and a
  streaming run reads their ids (``KnownKeys``): each marks the stored rows some chunk of
  the input matched (a streaming run through ``HeldEntries``); superseded are those never
  matched. Records the run wrote itself are held by definition.
* ``record_membership`` turns the set into the value the run history's catalog row keeps
  (``NodeRunSummary.superseded``): "" when nothing is superseded (nothing written), else the
  id of a *snapshot* of the set, stored as rows ``(snapshot, entry_id)`` in the pipeline's
  ``_superseded`` table (``SUPERSEDED_PATH`` under the pipeline database). The snapshot id is
  the digest of the set, and the records table gets a note naming it (``write_note``), so a
  rerun that finds the same set and an unchanged table does not write it again; the note is
  a cache, and without it the snapshot is written again (the rows are the same ids,
  dropped as duplicates).

What remains: a records table is shared by the nodes of a pipeline that apply one function
to inputs of the same schema and topology. A node's superseded set then holds the other
node's entries as of its run, so its rows stop showing the other node's (right); records
the other node writes after that run show in this node's rows until this node runs again.
Records committed by another process during the run, for entries the run's input does not
hold, are not in the set either (as if the run had ended before them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from orcapod._lazy import pc
from orcapod.databases import ArrowDatabase
from orcapod.functions.engine.identify import InputPlan, digest_strings
from orcapod.functions.engine.keys import keys_to_binary, match_keys, string_keys
from orcapod.nodes.node_store import NodeStore
from orcapod.types.columns import PIPELINE_ENTRY_ID, RECORD_ID

__all__ = [
    "NO_KEYS",
    "SUPERSEDED_NOTE",
    "SUPERSEDED_PATH",
    "HeldEntries",
    "record_membership",
    "superseded_entries",
    "superseded_of_plan",
    "without_superseded",
]

#: where a pipeline keeps the snapshots of superseded entries (under its database)
SUPERSEDED_PATH: tuple[str, ...] = ("_superseded",)
#: the records table's note naming the snapshot of its superseded entries
SUPERSEDED_NOTE = "superseded"
_SNAPSHOT = "snapshot"
_ENTRY = "entry_id"
#: no keys: nothing superseded
NO_KEYS = np.empty((0, 2), dtype="<u8")


class HeldEntries:
    """Stored entry keys, sorted once on their first 64 bits, and which of them the run's
    input held: each look-up (``rows_of``) is one ``searchsorted`` and marks what it found."""

    def __init__(self, keys: np.ndarray) -> None:
        self._keys = keys
        self._order = np.argsort(keys[:, 0]) if len(keys) else np.empty(0, dtype=np.int64)
        #: the keys' first 64 bits, sorted
        self.lane0 = keys[self._order, 0]
        self._distinct = bool(np.all(self.lane0[1:] != self.lane0[:-1]))
        self._held = np.zeros(len(keys), dtype=bool)

    def rows_of(self, wanted: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
        """Per key of ``wanted``, the row of the stored key equal to it (-1: none), marked
        held; ``order``: the argsort of ``wanted``'s first lane, when the caller has it (sorted
        probes keep the search in cache)."""
        row_of = np.full(len(wanted), -1, dtype=np.int64)
        if not len(self._keys) or not len(wanted):
            return row_of
        if self._distinct:
            if order is None:
                order = np.argsort(wanted[:, 0])
            probes = wanted[order]
            at = np.minimum(np.searchsorted(self.lane0, probes[:, 0]), len(self.lane0) - 1)
            rows = self._order[at]
            hit = (self.lane0[at] == probes[:, 0]) & (self._keys[rows, 1] == probes[:, 1])
            row_of[order[hit]] = rows[hit]
        else:  # two stored ids share their first 64 bits: match on all 128
            row_of = match_keys(wanted, self._keys)
        self._held[row_of[row_of >= 0]] = True
        return row_of

    def superseded(self) -> np.ndarray:
        """Keys of the stored entries the input never held."""
        return self._keys[~self._held]


def superseded_of_plan(store: NodeStore, plan: InputPlan) -> np.ndarray:
    """Keys of the entries recorded at the node's record path that ``plan`` (the whole
    input, after its run) does not hold: one read of the recorded entry ids."""
    database, path = store.pipeline_db, store.record_path
    table = database.get_records_with_column_value(
        path, {}, record_id_column=PIPELINE_ENTRY_ID, columns=[]
    )
    if table is None or table.num_rows == 0:
        return NO_KEYS
    recorded = string_keys(table.column(PIPELINE_ENTRY_ID))
    held = match_keys(recorded, plan.entry_keys) >= 0
    return recorded[~held]


def _snapshot_id(keys: np.ndarray) -> str:
    """The digest of a set of keys (``keys`` sorted)."""
    return hashlib.blake2b(
        np.ascontiguousarray(keys, dtype="<u8").tobytes(), digest_size=16
    ).hexdigest()


def record_membership(store: NodeStore, superseded: np.ndarray) -> str:
    """Store the superseded entries ``superseded`` (keys) of the node's complete run; the
    value for the catalog: "" when there are none, else their snapshot's id (module
    docstring)."""
    if not len(superseded):
        return ""
    keys = np.unique(superseded, axis=0)  # sorted, so the digest names the set
    snapshot = _snapshot_id(keys)
    database, path = store.pipeline_db, store.record_path
    if database.read_note(path, SUPERSEDED_NOTE) == snapshot:
        return snapshot
    ids = digest_strings(keys_to_binary(keys))
    rows = pa.table(
        {
            RECORD_ID: pc.binary_join_element_wise(
                pa.scalar(snapshot, pa.large_string()), ids, pa.scalar(":", pa.large_string())
            ),
            _SNAPSHOT: pa.repeat(pa.scalar(snapshot, pa.large_string()), len(keys)),
            _ENTRY: ids,
        }
    )
    database.add_records(SUPERSEDED_PATH, rows, RECORD_ID, skip_duplicates=True, flush=True)
    database.write_note(path, SUPERSEDED_NOTE, snapshot)
    return snapshot


def superseded_entries(
    database: ArrowDatabase, table: Sequence[str], snapshot: str
) -> pa.Array | None:
    """The entry ids of snapshot ``snapshot`` kept in ``table`` (a pipeline's
    ``_superseded``); None when it holds none (e.g. the table was removed)."""
    found = database.get_records_with_column_value(table, {_SNAPSHOT: snapshot}, columns=[_ENTRY])
    if found is None or found.num_rows == 0:
        return None
    return found.column(_ENTRY).combine_chunks()


def without_superseded(records: pa.Table, id_column: str, superseded: pa.Array) -> pa.Table:
    """``records`` without those whose ``id_column`` (the entry id) is in ``superseded``."""
    if records.num_rows == 0 or len(superseded) == 0:
        return records
    dropped = match_keys(string_keys(records.column(id_column)), string_keys(superseded)) >= 0
    return records.filter(pa.array(~dropped, pa.bool_()))
