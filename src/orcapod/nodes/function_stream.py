"""Streaming run of a ``FunctionNode``: one continuous window of calls across received chunks.

``stream_function(...)`` (behind ``FunctionNode.async_execute``) runs the engine's phases as a
pipeline of three threads of the node (the event loop only moves chunks), so that neither the
look-ups nor the commits hold up the calls:

* look-ups (``_Preparer``): the input channel is read ahead of the work (``ReadAhead``: up to
  ``read_rows`` rows - ``READ_AHEAD_ROWS``, or the node's ``FlushPolicy.rows`` if smaller);
  every chunk (every row read since the previous one, so a fast upstream is met with few,
  large chunks and a slow one with small, early ones) goes through the engine's identify and
  look-up phases (``orcapod.nodes.stream_chunk``: its recorded entries, then one result-cache
  look-up of its novel packets), at most ``PREPARED_AHEAD`` chunk(s) ahead of the calls;
* calls (``_NodeStream``, the node's thread): ONE window of at most ``max_concurrency`` calls
  in flight that runs across chunk boundaries - the next chunk's calls start while the
  previous chunk's last ones run. While calls are in flight the next chunk is only polled (a
  finished call is never left waiting for input); when none are, everything finished is
  committed and passed on before the node waits. Calls are collected in the order they
  started and their outcomes handed to the writer in batches (``HAND_ROWS``, or every
  ``HAND_SECONDS``) through a bounded queue (``HANDED_AHEAD`` batches); while the queue is
  full (a commit is running) the loop keeps its outcomes and goes on calling, up to
  ``HAND_LIMIT`` of them;
* writes (``orcapod.nodes.stream_writer``): the run's one writer commits whenever it holds
  rows and nothing more is queued (within its commit cadence) and passes the committed rows
  on.

Backpressure reaches every stage: a full output channel blocks the writer, a full writer queue
the calls, a full read-ahead the upstream channel. A node thus holds at most its read-ahead,
one looked-up chunk, its uncommitted batch and the writer queue, whatever the input's size.

A chunk whose entries or input packets also appear in an earlier chunk not yet passed on (only
possible with repeated packets, or rows repeated exactly) waits until that chunk is committed
before its look-ups, so it finds that work stored: a packet is computed once per run however
many chunks hold it (and counted as computed for every row, as in a synchronous run), and no
record or result is written twice.

Passing rows on: a finished row is passed downstream **after it is stored**. Right after each
commit, the settled rows (reused, cache hits, computed, filtered or failed) of the oldest
chunks, from the first row not yet passed on up to the first row still running, are sent in
input order, as the very rows (hidden columns included) a synchronous run's downstream node
reads from the store: built from the result rows the commit just wrote, or - when some of
them were stored before this run (reused rows, cache hits) - read back from the store
(``NodeStore.stored_table``). So output order is input order, and a downstream node never sees
a row that a crash could take back: whatever it computes from that row is derived from
committed data, and after a kill every stored downstream record points at an upstream record
and result that exist (the next run of either node finds them and recomputes nothing).

The summary is the sum of the chunks' summaries, which equals a synchronous run's: entries are
distinct across the input (system tags identify source rows), and a packet that an earlier
chunk of the same run computed is found in the result cache but counted (and recorded) as
computed. A packet that failed in an earlier chunk is called again for a later chunk's row
(and fails or not again). Only a row repeated exactly (same tags, system tags and packet -
possible in a hand-built stream without system tags) and falling into two chunks is counted as
reused the second time instead of as its first occurrence's outcome. Packet events are
reported per chunk (each chunk is one engine run for observers); an output that cannot be
stored is recorded as a failed row, but its event stays the call's own outcome.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from orcapod._lazy import lazy_module
from orcapod.data import Packet
from orcapod.errors import ChannelClosedError
from orcapod.executors.protocols import announce_last_call
from orcapod.functions.engine.events import current_observer
from orcapod.functions.engine.identify import InputPlan
from orcapod.functions.engine.keys import digest_keys, match_keys, string_keys
from orcapod.functions.pending import Pending
from orcapod.nodes.node_store import NodeStore
from orcapod.nodes.run_settings import RunSettings
from orcapod.nodes.stream_chunk import StreamChunk
from orcapod.nodes.stream_writer import StreamWriter
from orcapod.nodes.streaming import Output, ReadAhead, in_thread
from orcapod.nodes.summary import NodeRunSummary
from orcapod.streams import ArrowTableStream
from orcapod.streams.channels import Channel
from orcapod.types.columns import (
    INPUT_PACKET_HASH,
    PIPELINE_ENTRY_ID,
    RECORD_ID,
    SYSTEM_TAG_PREFIX,
    source_column,
)

if TYPE_CHECKING:
    import asyncio
else:
    asyncio = lazy_module("asyncio")  # loaded on first use: import orcapod stays light

__all__ = ["READ_AHEAD_ROWS", "stream_function"]

#: at most this many input rows are read ahead of a function node's work (and so make up at
#: most one chunk); bounds a node's memory whatever the input's size
READ_AHEAD_ROWS = 10_000


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


#: what ``_Preparer.next(wait=False)`` returns when no chunk is ready yet
NOTHING: Any = object()

#: chunks looked up ahead of the window of calls
PREPARED_AHEAD = 1

#: the loop hands its outcomes to the writer once it holds this many, or once the oldest is
#: ``HAND_SECONDS`` old, and always before it waits for input; while the writer's queue is
#: full (a commit is running) it keeps them and goes on calling, until it holds
#: ``HAND_LIMIT`` (then it waits for the writer)
HAND_ROWS = 64
HAND_SECONDS = 0.005
HAND_LIMIT = 2 * HAND_ROWS


class KnownKeys:
    """What the node's store held when the run began, plus what the run itself handed on:
    a chunk whose keys meet none of them needs no look-up (module docstring)."""

    def __init__(self, store: NodeStore) -> None:
        self._store = store
        self._versions: tuple[int | None, int | None] | None = None
        self._entries = np.empty(0, dtype="<u8")  # sorted lane 0 of the entry keys
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
            self._entries = np.sort(string_keys(records.column(PIPELINE_ENTRY_ID))[:, 0])
        results = store.cache.database.get_records_with_column_value(
            store.cache.record_path, {}, record_id_column=RECORD_ID, columns=[INPUT_PACKET_HASH]
        )
        if results is not None and results.num_rows:
            self._packets = np.sort(string_keys(results.column(INPUT_PACKET_HASH))[:, 0])
        return versions

    def absent(self, plan: InputPlan) -> tuple[int | None, int | None] | None:
        """The versions at which none of the plan's entries and packets was stored, when the
        run knows (None: look them up); the plan's keys count as known from now on."""
        if self._versions is None:
            self._versions = self._load()
        entries = np.unique(plan.entry_keys[:, 0])
        packets = np.unique(digest_keys(plan.input_digests)[:, 0])
        clear = not (_meets(entries, self._entries) or _meets(packets, self._packets))
        self._entries = _merge(self._entries, entries)
        self._packets = _merge(self._packets, packets)
        return self._versions if clear else None


def _meets(keys: np.ndarray, known: np.ndarray) -> bool:
    """Does any of the sorted ``keys`` appear in the sorted ``known``?"""
    if not len(keys) or not len(known):
        return False
    at = np.minimum(np.searchsorted(known, keys), len(known) - 1)
    return bool((known[at] == keys).any())


def _merge(known: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The sorted union (with repeats) of sorted ``known`` and sorted ``keys``."""
    return np.insert(known, np.searchsorted(known, keys), keys) if len(known) else keys


class _Preparer:
    """The run's look-up thread: reads the input, identifies and looks up each chunk, and
    hands the prepared chunks (at most ``PREPARED_AHEAD`` ahead) to the loop, so look-ups
    never hold up the window of calls (module docstring)."""

    def __init__(
        self,
        settings: RunSettings,
        store: NodeStore,
        keys: tuple[Sequence[str], Sequence[str]],
        receive: Callable[[], pa.Table | None],
        writer: StreamWriter,
        observer: Any,
    ) -> None:
        self._settings = settings
        self._store = store
        self._tag_keys, self._packet_keys = keys
        self._receive = receive
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
        self._thread.start()

    def stop(self) -> None:
        """The loop stopped: stop at the next chunk (the input's end also ends the wait)."""
        self._stopped.set()

    def next(self, wait: bool) -> Any:
        """The next prepared ``(chunk, hit records)``; None at the input's end; ``NOTHING``
        when ``wait`` is False and none is ready. Raises what the look-ups raised."""
        try:
            got = self._ready.get(timeout=None) if wait else self._ready.get_nowait()
        except queue.Empty:
            return NOTHING
        if isinstance(got, BaseException):
            raise got
        return got

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
            while not self._stopped.is_set():
                table = self._receive()
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
            while any(not c.passed for c in self._open) and self._writer.error is None:
                if self._stopped.wait(0.005):
                    break
            self._open = []
        chunk = StreamChunk(self._settings, plan, self._store, self._next_base, self._observer)
        hits = chunk.lookup(self._computed_earlier, absent_at=self._known.absent(plan))
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

    def _computed_earlier(self, hashes: pa.Array) -> np.ndarray:
        called = list(self._writer.called)
        if not called:
            return np.zeros(len(hashes), dtype=bool)
        reference = np.concatenate(called)
        return np.asarray(match_keys(string_keys(hashes), reference) >= 0)


class _NodeStream:
    """The run's loop (see the module docstring); runs in the node's thread."""

    def __init__(
        self,
        settings: RunSettings,
        store: NodeStore,
        template: pa.Table,
        keys: tuple[Sequence[str], Sequence[str]],
        receive: Callable[[], pa.Table | None],
        send: Callable[[pa.Table], None] | None,
        max_concurrency: int | None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._tag_keys, self._packet_keys = keys
        pod = settings.pod
        self._pf = pod.packet_function
        self._window = pod.concurrency_window(max_concurrency)
        values = pod.sequential_values() if self._window == 1 else None
        self._call = self._pf.call if values is None else values[0]
        self._packet_schema = settings.read_stream.output_schema()[1]
        self._writer = StreamWriter(settings, store, template, self._tag_keys, send)
        self._preparer = _Preparer(settings, store, keys, receive, self._writer, current_observer())
        #: the chunk whose calls are being started, and its remaining calls
        self._current: tuple[StreamChunk, Iterator[tuple[int, Packet]]] | None = None
        self._in_flight: deque[tuple[StreamChunk, int, Pending[Any]]] = deque()
        self._ended = False
        self._ops: list[tuple[Any, ...]] = []  # outcomes not yet handed to the writer
        self._oldest = 0.0

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> NodeRunSummary:
        writer = self._writer
        writer.start()
        self._preparer.start()
        try:
            while True:
                self._fill()
                if self._in_flight:
                    self._hand()  # before waiting for the call
                    self._collect(*self._in_flight.popleft())
                elif self._ended and self._current is None:
                    break
            self._hand(wait=True)
        except BaseException:
            for _, _, pending in self._in_flight:  # calls still running are dropped
                pending.cancel()
            self._in_flight.clear()
            try:
                if self._ops and writer.error is None:
                    writer.hand(self._ops)
            finally:
                self._preparer.stop()
                writer.close(emit=False)  # commit what finished; pass nothing on
                for chunk in writer.chunks:
                    chunk.close_events()
            raise
        writer.close(emit=True)
        if writer.error is not None:
            raise writer.error
        computed, reused, filtered, failed = (int(c) for c in writer.counts)
        return NodeRunSummary(self._settings.label, computed, reused, filtered, failed)

    def _fill(self) -> None:
        """Start calls until the window is full or no call can start without waiting."""
        window = self._window
        while len(self._in_flight) < window:
            current = self._current
            if current is not None:
                chunk, calls = current
                item = next(calls, None)
                if item is not None:
                    self._start(chunk, *item)
                    if window == 1:  # the thin path: the call ran; collect it now
                        self._collect(*self._in_flight.popleft())
                    continue
                self._current = None
            if self._ended:
                return
            waiting = not self._in_flight
            if waiting:  # nothing runs: pass everything finished on before waiting
                self._add(("flush",))
                self._hand(wait=True)
            got = self._preparer.next(waiting)
            if got is NOTHING:
                return
            if got is None:
                self._ended = True
                announce_last_call(self._pf.executor)
                return
            chunk, hits = got
            self._add(("chunk", chunk, hits))
            if len(chunk.misses):
                chunk.capture_here(self._window)
                packets = chunk.packets(self._packet_schema)
                self._current = (chunk, zip(chunk.misses.tolist(), packets, strict=True))

    def _start(self, chunk: StreamChunk, packet: int, value: Packet) -> None:
        logger = chunk.begin(packet)
        kwargs = {} if logger is None else {"logger": logger}
        if self._window == 1:
            pending: Pending[Any] = Pending.run(self._call, value, **kwargs)
        else:
            pending = self._pf.submit_call(value, **kwargs)
        self._in_flight.append((chunk, packet, pending))

    def _collect(self, chunk: StreamChunk, packet: int, pending: Pending[Any]) -> None:
        try:
            output = pending.result()
        except Exception as err:  # recorded; raised under fail_fast
            if chunk.ended(packet, None, err):
                chunk.close_events()
            self._add(("failed", chunk, packet, chunk.failure_records(packet, err)))
            stop = chunk.fail_fast_error(packet, err)
            if stop is not None:
                raise stop from err
        else:
            if chunk.ended(packet, output):
                chunk.close_events()
            self._add(("computed", chunk, packet, output))

    def _add(self, op: tuple[Any, ...]) -> None:
        ops = self._ops
        if not ops:
            self._oldest = time.monotonic()
        ops.append(op)
        if len(ops) >= HAND_ROWS or time.monotonic() - self._oldest >= HAND_SECONDS:
            self._hand()

    def _hand(self, wait: bool = False) -> None:
        """Hand the outcomes held to the writer; unless ``wait`` or ``HAND_LIMIT`` are
        held, only if its queue has room now (a commit never holds up the calls)."""
        ops = self._ops
        if not ops:
            return
        if wait or len(ops) >= HAND_LIMIT:
            self._writer.hand(ops)
        elif not self._writer.try_hand(ops):
            return
        self._ops = []


async def stream_function(
    settings: RunSettings,
    store: NodeStore,
    template: pa.Table,
    keys: tuple[Sequence[str], Sequence[str]],
    inputs: Sequence[Channel[pa.Table]],
    output: Output,
    *,
    max_concurrency: int | None,
    read_rows: int,
    chunk_rows: int,
) -> NodeRunSummary:
    """Run a function node over its input channel (see the module docstring).

    ``keys``: the tag and packet columns the function reads (its projected input's keys);
    ``template``: the node's stored-row table layout; ``chunk_rows``: rows per chunk sent.
    """
    loop = asyncio.get_running_loop()
    (reader,) = inputs
    ahead = ReadAhead(reader, read_rows)

    def receive() -> pa.Table | None:
        return asyncio.run_coroutine_threadsafe(ahead.take(), loop).result()

    def send(table: pa.Table) -> None:
        assert output is not None
        for start in range(0, table.num_rows, chunk_rows):
            part = table.slice(start, chunk_rows)
            asyncio.run_coroutine_threadsafe(output.send(part), loop).result()

    stream = _NodeStream(
        settings,
        store,
        template,
        keys,
        receive,
        None if output is None else send,
        max_concurrency,
    )

    def cancelled() -> None:
        stop = ChannelClosedError(f"the run of node {settings.label!r} was cancelled")
        reader.close(stop)
        if output is not None:
            output.close(stop)

    ahead.start()
    try:
        return await in_thread(stream.run, settings.label, on_cancel=cancelled)
    finally:
        await ahead.stop()
