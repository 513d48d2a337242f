"""The look-ups of a streaming function node run (``Preparer``): reads the node's input
chunks, takes each through the run's per-chunk path (``orcapod.nodes.stream_chunk``: identify,
then its recorded entries, then one result-cache look-up of its novel packets) and hands the
prepared chunks to the run's calls (``orcapod.nodes.function_stream``). Until ``start()`` a
chunk is read and prepared when the loop asks for it, in the loop's thread (the inline writer
committing its due rows while the input is awaited); once started, in a thread of its own, at
most ``PREPARED_AHEAD`` chunk(s) ahead, so look-ups never hold up the calls.

Known keys (``KnownKeys``): the run reads, once, the entry ids and input hashes the node's
store holds when it starts; a chunk whose keys meet none of them, nor any key of an earlier
chunk of the run, needs no look-up (its entries are novel and its packets missing as of the
versions read first).

A chunk whose entries or input packets also appear in an earlier chunk not yet passed on (only
possible with repeated packets, or rows repeated exactly) waits until that chunk is committed
before its look-ups, so it finds that work stored: a packet is computed once per run however
many chunks hold it, and no record or result is written twice.

Membership: ``KnownKeys`` also marks which stored entries some chunk held; once the input
ended, the others are the node's superseded records (``superseded``,
``orcapod.nodes.membership``).
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod.functions.engine.identify import InputPlan
from orcapod.functions.engine.keys import digest_keys, match_keys, string_keys
from orcapod.nodes.membership import HeldEntries
from orcapod.nodes.node_store import NodeStore
from orcapod.nodes.run_settings import RunSettings
from orcapod.nodes.stream_chunk import StreamChunk
from orcapod.nodes.stream_writer import StreamWriter
from orcapod.streams import ArrowTableStream
from orcapod.types.columns import (
    INPUT_PACKET_HASH,
    PIPELINE_ENTRY_ID,
    RECORD_ID,
    SYSTEM_TAG_PREFIX,
    source_column,
)

__all__ = ["NOTHING", "PREPARED_AHEAD", "KnownKeys", "Preparer"]


def _project(chunk: pa.Table, tag_keys: Sequence[str], packet_keys: Sequence[str]) -> pa.Table:
    """What the function reads of a chunk: tags, system tags, its parameters' columns and
    their source info (the columns a synchronous run identifies rows by)."""
    names = chunk.column_names
    keep = [
        *tag_keys,
        *(c for c in names if c.startswith(SYSTEM_TAG_PREFIX)),
        *packet_keys,
        *(source_column(c) for c in packet_keys if source_column(c) in names),
    ]
    return chunk.select(keep)


#: what ``Preparer.next(wait=False)`` returns when no chunk is ready yet
NOTHING: Any = object()

#: chunks looked up ahead of the window of calls
PREPARED_AHEAD = 1


class KnownKeys:
    """What the node's store held when the run began, plus what the run itself handed on:
    a chunk whose keys meet none of them needs no look-up (module docstring)."""

    def __init__(self, store: NodeStore) -> None:
        self._store = store
        self._versions: tuple[int | None, int | None] | None = None
        self._entries = np.empty(0, dtype="<u8")  # sorted lane 0 of the entry keys
        #: the stored entries, and which of them the run's input held (membership)
        self._held = HeldEntries(np.empty((0, 2), dtype="<u8"))
        self._packets = np.empty(0, dtype="<u8")  # sorted lane 0 of the input packet keys

    def _load(self) -> tuple[int | None, int | None]:
        store = self._store
        # versions first: rows committed after them can only add matches (a look-up then)
        versions = (
            store.pipeline_db.committed_version(store.record_path),
            store.cache.committed_version(),
        )
        records = store.pipeline_db.get_records_with_column_value(
            store.record_path, {}, record_id_column=PIPELINE_ENTRY_ID, columns=[]
        )
        if records is not None and records.num_rows:
            stored = string_keys(records.column(PIPELINE_ENTRY_ID))
            self._held = HeldEntries(stored)
            self._entries = self._held.lane0
        results = store.cache.database.get_records_with_column_value(
            store.cache.record_path, {}, record_id_column=RECORD_ID, columns=[INPUT_PACKET_HASH]
        )
        if results is not None and results.num_rows:
            self._packets = np.sort(string_keys(results.column(INPUT_PACKET_HASH))[:, 0])
        return versions

    def load(self) -> None:
        """Read what the store holds (once; else at the first ``absent``)."""
        if self._versions is None:
            self._versions = self._load()

    def absent(self, plan: InputPlan) -> tuple[int | None, int | None] | None:
        """The versions at which none of the plan's entries and packets was stored, when the
        run knows (None: look them up); the plan's keys count as known from now on."""
        self.load()
        self._held.rows_of(plan.entry_keys)
        entries = np.unique(plan.entry_keys[:, 0])
        packets = np.unique(digest_keys(plan.input_digests)[:, 0])
        clear = not (_meets(entries, self._entries) or _meets(packets, self._packets))
        self._entries = _merge(self._entries, entries)
        self._packets = _merge(self._packets, packets)
        return self._versions if clear else None  # set by load()

    def superseded(self) -> np.ndarray:
        """Keys of the entries stored when the run began that no chunk held (once the input
        ended: those its input no longer holds, ``orcapod.nodes.membership``)."""
        self.load()
        return self._held.superseded()


def _meets(keys: np.ndarray, known: np.ndarray) -> bool:
    """Does any of the sorted ``keys`` appear in the sorted ``known``?"""
    if not len(keys) or not len(known):
        return False
    at = np.minimum(np.searchsorted(known, keys), len(known) - 1)
    return bool((known[at] == keys).any())


def _merge(known: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The sorted union (with repeats) of sorted ``known`` and sorted ``keys``."""
    return np.insert(known, np.searchsorted(known, keys), keys) if len(known) else keys


class Preparer:
    """The run's look-up thread: reads the input, identifies and looks up each chunk, and
    hands the prepared chunks (at most ``PREPARED_AHEAD`` ahead) to the loop, so look-ups
    never hold up the window of calls (module docstring)."""

    def __init__(
        self,
        settings: RunSettings,
        store: NodeStore,
        keys: tuple[Sequence[str], Sequence[str]],
        request: Callable[[], Future[pa.Table | None]],
        writer: StreamWriter,
        observer: Any,
    ) -> None:
        self._settings = settings
        self._store = store
        self._tag_keys, self._packet_keys = keys
        self._request = request
        self._threaded = False  # until ``start()``, the loop prepares each chunk itself
        self._writer = writer
        self._observer = observer
        self._ready: queue.Queue[Any] = queue.Queue(maxsize=PREPARED_AHEAD)
        self._stopped = threading.Event()
        #: chunks prepared and not yet passed on (for the overlap check)
        self._open: list[StreamChunk] = []
        self._next_base = 0
        self._known = KnownKeys(store)
        self._thread = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._work,),
            name=f"orcapod-{settings.label}-lookup",
            daemon=True,
        )

    def start(self) -> None:
        """Go on in a thread of its own, ahead of the calls."""
        self._threaded = True
        self._thread.start()

    def stop(self) -> None:
        """The loop stopped: stop at the next chunk (the input's end also ends the wait)."""
        self._stopped.set()

    def next(self, wait: bool) -> Any:
        """The next prepared ``(chunk, hit records)``; None at the input's end; ``NOTHING``
        when ``wait`` is False and none is ready. Raises what the look-ups raised.

        Before ``start()`` the chunk is read and prepared here, in the caller's thread (only
        when ``wait``), the writer committing its due rows while the input is awaited."""
        if not self._threaded:
            while wait:
                table = self._writer.wait(self._request())
                if table is None:
                    return None
                if table.num_rows:
                    return self._prepare(table)
            return NOTHING
        try:
            got = self._ready.get(timeout=None) if wait else self._ready.get_nowait()
        except queue.Empty:
            return NOTHING
        if isinstance(got, BaseException):
            raise got
        return got

    def superseded(self) -> np.ndarray:
        """Keys of the stored entries no chunk held (``KnownKeys.superseded``)."""
        return self._known.superseded()

    def _put(self, item: Any) -> bool:
        while not self._stopped.is_set():
            try:
                self._ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            # what the store holds is read while the input's first rows are on their way
            self._known.load()
            while not self._stopped.is_set():
                table = self._request().result()
                if table is None:
                    self._put(None)
                    return
                if table.num_rows and not self._put(self._prepare(table)):
                    return
        except BaseException as err:  # noqa: BLE001 - raised by the loop
            self._put(err)

    def _prepare(self, table: pa.Table) -> tuple[StreamChunk, pa.Table | None]:
        projected = _project(table, self._tag_keys, self._packet_keys)
        plan = InputPlan(ArrowTableStream(projected, self._tag_keys))
        self._open = [c for c in self._open if not c.passed]
        if self._overlaps(plan):  # wait until the earlier rows are committed and passed on
            if not self._threaded:  # every call of theirs was handed: commit them now
                self._writer.commit()
            while any(not c.passed for c in self._open) and self._writer.error is None:
                if self._stopped.wait(0.005):
                    break
            self._open = []
        chunk = StreamChunk(self._settings, plan, self._store, self._next_base, self._observer)
        absent = self._known.absent(plan)
        # known absent: no look-up finds a hit, so none can be one this run computed earlier
        earlier = self._writer.computed_earlier if absent is None else None
        hits = chunk.lookup(earlier, absent_at=absent)
        self._next_base += len(chunk.outcome)
        self._open.append(chunk)
        if not len(chunk.misses):
            chunk.close_events()
        return chunk, hits

    def _overlaps(self, plan: InputPlan) -> bool:
        """Do the plan's entries or packets also appear in a chunk not yet passed on?"""
        if not self._open:
            return False
        entries = np.concatenate([c.plan.entry_keys for c in self._open])
        packets = np.concatenate([digest_keys(c.plan.input_digests) for c in self._open])
        return bool(
            (match_keys(plan.entry_keys, entries) >= 0).any()
            or (match_keys(digest_keys(plan.input_digests), packets) >= 0).any()
        )
