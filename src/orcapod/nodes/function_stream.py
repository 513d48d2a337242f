"""Streaming run of a ``FunctionNode``: one continuous window of calls across received chunks.

``stream_function(...)`` (behind ``FunctionNode.async_execute``) reads the node's input
channel ahead of its work (``ReadAhead``: up to ``read_rows`` rows - ``READ_AHEAD_ROWS``, or
the node's ``FlushPolicy.rows`` if smaller) and runs the node in a thread of its own; the event
loop only moves chunks. Every chunk (every row read since the previous one, so a fast upstream
is met with few, large chunks and a slow one with small, early ones) goes through the engine's
identify and look-up phases (``orcapod.nodes.stream_chunk``: its recorded entries, then one
result-cache look-up of its novel packets), and its missing packets join ONE window of at
most ``max_concurrency`` calls in flight that runs across chunk boundaries:

* the next chunk is taken and looked up as soon as the current chunk's last call has
  started - while its calls run - so neither the look-ups nor a chunk's end leave the window
  idle; when calls are in flight the input is only polled (a call is never held back waiting
  for input), and when none are, everything finished is committed and passed on before the
  node waits for input;
* calls are collected in the order they started; each outcome goes to the run's one
  ``StreamingWriter`` (results, then the records pointing at them, then failures), which
  commits while the other calls of the window keep running.

A chunk whose entries or input packets also appear in an earlier chunk that is not yet fully
committed (only possible with repeated packets, or rows repeated exactly) waits until
everything in flight is committed before its look-ups, so it finds that work stored: a packet
is computed once per run however many chunks hold it (and counted as computed for every row,
as in a synchronous run), and no record or result is written twice.

Passing rows on: a finished row is passed downstream **after it is stored**. Right after each
commit, the settled rows (reused, cache hits, computed, filtered or failed) of the oldest
chunks, from the first row not yet passed on up to the first row still running, are read back
from the store (``NodeStore.stored_table``: the very rows, hidden columns included, that a
synchronous run's downstream node reads) and sent, in input order. So output order is input
order, and a downstream node never sees a row that a crash could take back: whatever it
computes from that row is derived from committed data, and after a kill every stored
downstream record points at an upstream record and result that exist (the next run of either
node finds them and recomputes nothing).

Committing often enough to pass rows on promptly (``StreamingWriter``): a finished row is
committed at once, unless the previous commit ended less than ``COMMIT_GAP`` times its own
duration (the commit and passing its rows on) ago - then it goes with a later one. Slow
functions (the reason to stream) thus commit every row as it finishes, fast ones in batches
that keep commits to a small share of the run; the node's ``FlushPolicy`` (rows and age) still
bounds every batch.

The summary is the sum of the chunks' summaries, which equals a synchronous run's: entries are
distinct across the input (system tags identify source rows), and a packet that an earlier
chunk of the same run computed is found in the result cache but counted (and recorded) as
computed. A packet that failed in an earlier chunk is called again for a later chunk's row
(and fails or not again). Only a row repeated exactly (same tags, system tags and packet -
possible in a hand-built stream without system tags) and falling into two chunks is counted as
reused the second time instead of as its first occurrence's outcome.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod.data import Packet
from orcapod.errors import ChannelClosedError, PacketFunctionError
from orcapod.executors.protocols import announce_last_call
from orcapod.functions.engine.events import current_observer
from orcapod.functions.engine.identify import InputPlan
from orcapod.functions.engine.keys import digest_keys, match_keys, string_keys
from orcapod.functions.engine.write import RunWriter
from orcapod.functions.pending import Pending
from orcapod.functions.provenance import OwnValues
from orcapod.nodes.function_run import SKIPPED, RunSettings
from orcapod.nodes.node_store import NodeStore
from orcapod.nodes.stream_chunk import StreamChunk
from orcapod.nodes.streaming import Output, ReadAhead, in_thread
from orcapod.nodes.summary import NodeRunSummary
from orcapod.operators.layout import FULL_INFO
from orcapod.streams import ArrowTableStream
from orcapod.streams.channels import Channel
from orcapod.types.columns import (
    FAILURE_ID,
    PIPELINE_ENTRY_ID,
    POD_TS,
    RECORD_ID,
    SYSTEM_TAG_PREFIX,
    source_column,
)

__all__ = ["COMMIT_GAP", "READ_AHEAD_ROWS", "StreamingWriter", "stream_function"]

#: at most this many input rows are read ahead of a function node's work (and so make up at
#: most one chunk); bounds a node's memory whatever the input's size
READ_AHEAD_ROWS = 10_000

#: a finished row waits for the next commit only while the last commit ended less than this
#: many times its duration ago (commits take at most ~1 / (1 + COMMIT_GAP) of a busy run)
COMMIT_GAP = 1.0


class StreamingWriter(RunWriter):
    """A ``RunWriter`` that commits as soon as the commit cadence allows, asks
    ``before_commit`` for the versions its rows were verified absent at, and calls
    ``after_commit`` after every commit (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.before_commit: Callable[[], None] | None = None
        #: called with (packet indices, the result rows written for them) at every write
        self.on_stored: Callable[[list[int], pa.Table], None] | None = None
        self.after_commit: Callable[[], None] | None = None
        self._commit_seconds = 0.0
        self._last_end = float("-inf")

    def _store(
        self, hashes: list[str], outputs: list[Packet | OwnValues | None], packets: list[int]
    ) -> list[str]:
        # as ``RunWriter._store``, keeping the rows written (``on_stored``): the rows passed on
        # are built from them instead of being read back
        variation, execution = self._data()
        ids = None
        fixed = self.fixed_ids
        if fixed and any(p in fixed for p in packets):
            ids = self._cache.record_ids(hashes, variation, execution)
            ids = [fixed.get(p, i) for p, i in zip(packets, ids, strict=True)]
        table = self._cache.store_outputs_table(
            hashes,
            outputs,
            variation,
            execution,
            flush=False,
            record_ids=ids,
            absent_at=self.results_absent_at,
        )
        if self.on_stored is not None:
            self.on_stored(packets, table)
        stored: list[str] = table.column(RECORD_ID).to_pylist()
        return stored

    @property
    def buffered(self) -> int:
        """Rows waiting for the next commit."""
        return self._rows

    def maybe_flush(self) -> None:
        if not self._rows:
            return
        now = time.monotonic()
        if (
            self._rows >= self._flush_rows
            or now - self._oldest >= self._flush_seconds
            or now - self._last_end >= COMMIT_GAP * self._commit_seconds
        ):
            self.flush()

    def flush(self) -> None:
        busy = self._rows > 0
        start = time.monotonic()
        if busy and self.before_commit is not None:
            self.before_commit()
        super().flush()
        if self.after_commit is not None:
            self.after_commit()
        if busy:  # the commit and passing its rows on
            self._last_end = time.monotonic()
            self._commit_seconds = self._last_end - start


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

#: the loop hands its outcomes to the writer in batches of at most this many, or older than
#: ``HAND_SECONDS`` (and always before it waits)
HAND_ROWS = 64
HAND_SECONDS = 0.005

#: batches handed to the writer and not yet taken: a writer held back by a slow reader holds
#: back the loop once about HANDED_AHEAD x HAND_ROWS finished rows wait
HANDED_AHEAD = 4

_END: Any = object()


class _Writer:
    """The run's writer thread: buffers outcomes, commits, passes rows on (module docstring).

    It owns the ``StreamingWriter`` and the chunks not yet passed on; the loop hands it work as
    batches of operations through a bounded queue (a writer that falls behind holds the loop
    back). It commits whenever it has rows and nothing more is queued (so commits batch
    themselves: what arrives during a commit goes with the next), or when the node's
    ``FlushPolicy`` says so.
    """

    def __init__(
        self,
        settings: RunSettings,
        store: NodeStore,
        template: pa.Table,
        tag_keys: Sequence[str],
        send: Callable[[pa.Table], None] | None,
    ) -> None:
        self._store = store
        self._template = template
        self._tag_keys = tag_keys
        self._send = send
        self._pf = settings.pod.packet_function
        self._label = settings.label
        self.chunks: deque[StreamChunk] = deque()  # not yet entirely passed on, oldest first
        self.called: list[np.ndarray] = []  # keys of the input hashes computed so far
        self.counts = np.zeros(4, dtype=np.int64)
        self.error: BaseException | None = None
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=HANDED_AHEAD)
        writer = StreamingWriter(
            cache=store.cache,
            variation=self._pf.get_function_variation_data,
            execution=self._pf.get_execution_data,
            pipeline_db=store.pipeline_db,
            failure_db=store.failure_db,
            record_path=store.record_path,
            record_id_column=PIPELINE_ENTRY_ID,
            failure_id_column=FAILURE_ID,
            policy=settings.flush_policy,
        )
        writer.build_records = self._build_records
        writer.input_hashes = self._input_hashes
        writer.on_unstorable = self._unstorable
        writer.before_commit = self._absent_at
        writer.after_commit = self._emit
        if send is not None:
            writer.on_stored = self._keep
        output_schema = store.output_schema
        self._outputs = [*output_schema, *(source_column(k) for k in output_schema)]
        self._keep_columns = [*self._outputs, RECORD_ID, POD_TS]
        self._writer = writer
        self._thread = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._work,),
            name=f"orcapod-{settings.label}-writer",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def hand(self, ops: list[tuple[Any, ...]]) -> None:
        """Queue a batch of operations (raises the writer's error, if it failed)."""
        if self.error is not None:
            raise self.error
        self._queue.put(ops)

    def sync(self) -> None:
        """Wait until everything handed so far is committed and passed on."""
        done = threading.Event()
        self.hand([("sync", done)])
        while not done.wait(0.05):
            if not self._thread.is_alive():
                break
        if self.error is not None:
            raise self.error

    def close(self, emit: bool) -> None:
        """Commit what is left (``emit``: and pass it on) and end the thread."""
        self._queue.put([("end", emit)])
        self._thread.join()

    # -- the thread ---------------------------------------------------------------------------

    def _work(self) -> None:
        writer = self._writer
        get = self._queue.get
        while True:
            try:
                ops = get(timeout=0.2 if writer.buffered else None)
            except queue.Empty:
                ops = []
            for op in ops:
                kind = op[0]
                try:
                    if kind == "end":
                        if not op[1] or self.error is not None:
                            writer.after_commit = None
                        writer.flush()
                        if op[1] and self.error is None and self.chunks:
                            self._emit()
                        return
                    self._do(op)
                except BaseException as err:  # noqa: BLE001 - the loop raises it
                    if self.error is None:
                        self.error = err
                    writer.after_commit = None  # commit what finished; pass nothing on
            if self._queue.empty():  # nothing more queued: commit now if the cadence allows
                try:
                    writer.maybe_flush()
                except BaseException as err:  # noqa: BLE001 - the loop raises it
                    if self.error is None:
                        self.error = err
                    writer.after_commit = None

    def _do(self, op: tuple[Any, ...]) -> None:
        kind, writer = op[0], self._writer
        if kind == "computed":
            _, chunk, packet, output = op
            chunk.mark(packet, output)
            writer.add_computed(chunk.base + packet, output)
        elif kind == "failed":
            _, chunk, packet, table = op
            chunk.mark(packet, None, failed=True)
            writer.add_failures(table)
        elif kind == "chunk":
            _, chunk, hits = op
            self.chunks.append(chunk)
            if hits is not None:
                writer.add_records(hits)
        elif kind == "flush":
            writer.flush()
        elif kind == "sync":
            writer.flush()
            op[1].set()

    # -- the writer's view of the chunks ------------------------------------------------------

    def _split(self, packets: np.ndarray) -> Iterator[tuple[StreamChunk, np.ndarray, np.ndarray]]:
        """Per chunk holding some of the (global) ``packets``: the chunk, their positions in
        ``packets`` and their indices within the chunk."""
        chunks = list(self.chunks)
        bases = np.array([c.base for c in chunks], dtype=np.int64)
        which = np.searchsorted(bases, packets, side="right") - 1
        for i in np.unique(which).tolist():
            at = np.flatnonzero(which == i)
            yield chunks[i], at, packets[at] - chunks[i].base

    def _input_hashes(self, packets: np.ndarray) -> list[str]:
        out: list[Any] = [None] * len(packets)
        for chunk, at, local in self._split(packets):
            values = chunk.distinct.take(pa.array(local)).to_pylist()
            for i, value in zip(at.tolist(), values, strict=True):
                out[i] = value
        return out

    def _build_records(self, packets: np.ndarray, ids: pa.Array, computed: bool) -> pa.Table:
        parts = [
            chunk.records_for(local, ids.take(pa.array(at)), computed)
            for chunk, at, local in self._split(packets)
        ]
        return parts[0] if len(parts) == 1 else pa.concat_tables(parts)

    def _unstorable(self, packet: int, err: Exception) -> None:  # fails only its row
        ((chunk, _, local),) = self._split(np.array([packet], dtype=np.int64))
        index = int(local[0])
        named = PacketFunctionError(f"function {self._pf.canonical_function_name!r}: {err}")
        named.__cause__ = err
        chunk.mark(index, None, failed=True, collected=False)
        self._writer.add_failures(chunk.failure_records(index, named))
        stop = chunk.fail_fast_error(index, named)
        if stop is not None:
            raise stop

    def _keep(self, packets: list[int], table: pa.Table) -> None:
        for chunk, at, local in self._split(np.asarray(packets, dtype=np.int64)):
            chunk.keep(local, table.take(pa.array(at)), self._keep_columns)

    def _absent_at(self) -> None:
        """The writer's rows were verified absent at the earliest version of their chunks."""
        writer = self._writer
        records = [c.records_absent_at for c in self.chunks]
        results = [c.results_absent_at for c in self.chunks if len(c.misses)]
        writer.records_absent_at = _earliest(records)
        writer.results_absent_at = _earliest(results)
        writer.fixed_ids = {k: v for c in self.chunks for k, v in c.fixed_ids.items()}

    # -- passing rows on ----------------------------------------------------------------------

    def _emit(self) -> None:
        """Right after a commit: pass on the settled rows of the oldest chunks, in order."""
        chunks = self.chunks
        while chunks:
            chunk = chunks[0]
            done = chunk.complete
            self._advance(chunk, None if done else chunk.settled())
            if not done:
                return
            chunks.popleft()
            chunk.release_rows()
            self.counts += chunk.summary()
            fresh = chunk.computed_hashes()
            if len(fresh):
                self.called.append(string_keys(fresh))
            chunk.passed = True

    def _advance(self, chunk: StreamChunk, settled: np.ndarray | None) -> None:
        """Send the chunk's rows settled since the last call (all remaining when None)."""
        plan = chunk.plan
        end = plan.num_rows
        if settled is not None:
            ready = settled[plan.codes[chunk.emitted :]] != SKIPPED
            waiting = np.flatnonzero(~ready)
            if len(waiting):
                end = chunk.emitted + int(waiting[0])
        if end <= chunk.emitted:
            return
        start, chunk.emitted = chunk.emitted, end
        if self._send is None:
            return
        table = chunk.written_rows(start, end, self._template, self._outputs)
        if table is None:  # some rows were stored before: read them back
            part = InputPlan(ArrowTableStream(plan.table.slice(start, end - start), self._tag_keys))
            table = self._store.stored_table(part, self._template)
        if table.num_rows:  # as a synchronous reader reads the node: every hidden column
            self._send(ArrowTableStream(table, self._tag_keys).as_table(FULL_INFO))


def _earliest(versions: list[int | None]) -> int | None:
    if not versions or any(v is None for v in versions):
        return None
    return min(v for v in versions if v is not None)


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
        writer: _Writer,
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
        hits = chunk.lookup(self._computed_earlier)
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
        self._writer = _Writer(settings, store, template, self._tag_keys, send)
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
            self._hand()
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
                self._hand()
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
            chunk.ended(packet, None, err)
            self._add(("failed", chunk, packet, chunk.failure_records(packet, err)))
            stop = chunk.fail_fast_error(packet, err)
            if stop is not None:
                raise stop from err
        else:
            chunk.ended(packet, output)
            self._add(("computed", chunk, packet, output))

    def _add(self, op: tuple[Any, ...]) -> None:
        ops = self._ops
        if not ops:
            self._oldest = time.monotonic()
        ops.append(op)
        if len(ops) >= HAND_ROWS or time.monotonic() - self._oldest >= HAND_SECONDS:
            self._hand()

    def _hand(self) -> None:
        if self._ops:
            ops, self._ops = self._ops, []
            self._writer.hand(ops)


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
