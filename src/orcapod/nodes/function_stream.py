"""Streaming run of a ``FunctionNode``: one continuous window of calls across received chunks.

``stream_function(...)`` (behind ``FunctionNode.async_execute``) runs the engine's phases - the
input channel read ahead of the work (``ReadAhead``: up to ``read_rows`` rows,
``READ_AHEAD_ROWS`` or the node's ``FlushPolicy.rows`` if smaller), each chunk (every row read
since the previous one, so a fast upstream is met with few, large chunks and a slow one with
small, early ones) identified and looked up (``orcapod.nodes.stream_lookup``), its missing
packets called, the outcomes committed and passed on (``orcapod.nodes.stream_writer``) - in
one of two ways; the event loop only moves chunks.

Inline, for cheap calls made one by one (a window of 1): the node's thread does everything,
between calls - it prepares the next chunk once the current one's calls are done, and hands
outputs to the writer in bulk (``HAND_ROWS`` or every ``HAND_SECONDS``), which commits in
this thread when its cadence allows. Decision: threads would let look-ups and commits run
beside such calls, but the calls, the look-ups and the commits all hold the interpreter lock,
so the hand-offs between threads cost more than they overlap (a streaming run of trivial
functions took 1.75 times the CPU of a synchronous one with them). While calling, a commit
waits until about ``INLINE_COMMIT_GAP`` times its own duration has passed since the previous
one (commits take a small share of a busy node's time, and are few and large as in a
synchronous run); the first rows are committed at once, and while the node waits for input,
what it holds is committed within ``COMMIT_GAP`` times a commit's duration (a slowly arriving
input is passed on promptly).

In threads, for slow calls or a concurrent window: once one-by-one calls that took
``TIMED_SECONDS`` in all averaged ``SLOW_CALL_SECONDS`` or more (the first call, which may pay
one-off costs, is not timed; a call slowed by a busy machine seldom decides alone), or from
the start when up to ``max_concurrency`` calls run at once (a concurrent executor), the run
goes on as a pipeline of three threads of the node, so that neither the look-ups nor the
commits hold up the calls:

* look-ups (``Preparer``): at most ``PREPARED_AHEAD`` chunk(s) ahead of the calls;
* calls (``_NodeStream``, the node's thread): ONE window of at most ``max_concurrency`` calls
  in flight that runs across chunk boundaries - the next chunk's calls start while the
  previous chunk's last ones run. While calls are in flight the next chunk is only polled (a
  finished call is never left waiting for input); when none are and no chunk is ready,
  everything finished is handed to the writer before the node waits. Calls are collected in
  the order they started and their outcomes handed to the writer in batches (``HAND_ROWS``,
  or every ``HAND_SECONDS``) through a bounded queue (``HANDED_AHEAD`` batches); while the
  queue is full (a commit is running) the loop keeps its outcomes and goes on calling, up to
  ``HAND_LIMIT`` of them;
* writes (``StreamWriter``): the run's one writer commits whenever it holds rows and nothing
  more is queued (within ``COMMIT_GAP``) and passes the committed rows on.

The switch happens once, between two calls, and only towards threads.

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

A run that reads its input to the end records which of the node's records the input no
longer holds (``orcapod.nodes.membership``, from the stored entry ids the look-ups read
first); a run that stops records nothing of it.

A run that stops (Ctrl-C cancels it, a node raises) starts no new call: the calls under way
end, what finished is committed, and the exception carries the counts of the committed rows
(``node_run.partial_summary``, for the run history). Without that check a cancelled node
went on through every row it had read before it looked at a channel again.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from orcapod._lazy import lazy_module
from orcapod.data import Packet
from orcapod.errors import ChannelClosedError
from orcapod.executors.protocols import announce_last_call
from orcapod.functions.engine.events import current_observer
from orcapod.functions.pending import Pending
from orcapod.nodes.membership import record_membership
from orcapod.nodes.node_run import attach_partial_summary
from orcapod.nodes.node_store import NodeStore
from orcapod.nodes.run_settings import RunSettings
from orcapod.nodes.stream_chunk import StreamChunk
from orcapod.nodes.stream_lookup import NOTHING, Preparer
from orcapod.nodes.stream_writer import StreamWriter
from orcapod.nodes.streaming import Output, ReadAhead, in_thread, send_table
from orcapod.nodes.summary import NodeRunSummary
from orcapod.streams.channels import Channel

if TYPE_CHECKING:
    import asyncio
else:
    asyncio = lazy_module("asyncio")  # loaded on first use: import orcapod stays light

__all__ = ["READ_AHEAD_ROWS", "stream_function"]

#: at most this many input rows are read ahead of a function node's work (and so make up at
#: most one chunk); bounds a node's memory whatever the input's size
READ_AHEAD_ROWS = 20_000


#: a chunk read from the input takes every row that arrives less than this apart (a table an
#: upstream node sends in channel-sized pieces is one chunk: per-chunk work is paid once)
SETTLE_SECONDS = 0.001

#: the loop hands its outcomes to the writer once it holds this many, or once the oldest is
#: ``HAND_SECONDS`` old, and always before it waits for input; while the writer's queue is
#: full (a commit is running) it keeps them and goes on calling, until it holds
#: ``HAND_LIMIT`` (then it waits for the writer)
HAND_ROWS = 64
HAND_SECONDS = 0.005
HAND_LIMIT = 2 * HAND_ROWS

#: calls made one by one that take less than this on average run look-ups and commits inline
#: (module docstring); the average is taken over calls that took ``TIMED_SECONDS`` in all
SLOW_CALL_SECONDS = 0.001
TIMED_SECONDS = 0.05


class _NodeStream:
    """The run's loop (see the module docstring); runs in the node's thread."""

    def __init__(
        self,
        settings: RunSettings,
        store: NodeStore,
        template: pa.Table,
        keys: tuple[Sequence[str], Sequence[str]],
        request: Callable[[], Future[pa.Table | None]],
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
        self._call: Callable[..., Any] = self._pf.call if values is None else values[0]
        self._packet_schema = settings.read_stream.output_schema()[1]
        self._writer = StreamWriter(settings, store, template, self._tag_keys, send)
        self._preparer = Preparer(settings, store, keys, request, self._writer, current_observer())
        #: the chunk whose calls are being started, and its remaining calls
        self._current: tuple[StreamChunk, Iterator[tuple[int, Packet]]] | None = None
        self._in_flight: deque[tuple[StreamChunk, int, Pending[Any]]] = deque()
        self._ended = False
        self._ops: list[tuple[Any, ...]] = []  # outcomes not yet handed to the writer
        self._oldest = 0.0
        self._threaded = False  # look-ups and commits in threads of their own
        #: calls timed (one by one) and the seconds they took; -1: the first, which may pay
        #: one-off costs (imports, connections), is not timed
        self._timing = [-1, 0.0]
        #: set when the run is cancelled (Ctrl-C): no new call starts, the finished ones are
        #: committed (``stop``)
        self._stop: ChannelClosedError | None = None
        #: what a run that stopped had committed (None: it did not stop, or it is unknown)
        self.partial: NodeRunSummary | None = None

    def stop(self, reason: ChannelClosedError) -> None:
        """Start no call from now on (called from another thread when the run is cancelled):
        the loop raises ``reason`` before its next call, after the calls under way end."""
        self._stop = reason

    def _check_stop(self) -> None:
        if self._stop is not None:
            raise self._stop

    def _threads(self) -> None:
        """From now on, look-ups and commits run in threads of their own."""
        self._threaded = True
        self._writer.start()
        self._preparer.start()

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> NodeRunSummary:
        writer = self._writer
        if self._window > 1:  # calls run elsewhere: look-ups and commits go beside them
            self._threads()
        try:
            while True:
                self._fill()
                if self._in_flight:
                    self._hand()  # before waiting for the call
                    self._collect(*self._in_flight.popleft())
                elif self._ended and self._current is None:
                    break
            self._hand(wait=True)
        except BaseException as err:
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
                    chunk.release_capture()
                    chunk.close_events()
            if writer.error is None:  # what was committed before the stop, for the run history
                self.partial = _stored_counts(self._settings.label, writer)
                attach_partial_summary(err, self.partial)
            raise
        writer.close(emit=True)
        if writer.error is not None:
            raise writer.error
        membership = record_membership(self._store, self._preparer.superseded())
        computed, reused, filtered, failed = (int(c) for c in writer.counts)
        return NodeRunSummary(self._settings.label, computed, reused, filtered, failed, membership)

    def _fill(self) -> None:
        """Start calls until the window is full or no call can start without waiting."""
        window = self._window
        while len(self._in_flight) < window:
            current = self._current
            if current is not None:
                chunk, calls = current
                if not self._threaded:  # one by one, look-ups and commits inline
                    self._call_inline(chunk, calls)
                    if not self._threaded:  # else the rest go the threaded way
                        self._current = None
                    continue
                item = next(calls, None)
                if item is not None:
                    self._check_stop()
                    self._start(chunk, *item)
                    if window == 1:  # the thin path: the call ran; collect it now
                        self._collect(*self._in_flight.popleft())
                    continue
                self._current = None
            if self._ended:
                return
            got = self._preparer.next(False)
            if got is NOTHING and not self._in_flight:
                # nothing runs and no chunk is ready: hand everything finished to the writer
                # (which commits it and passes it on within its cadence) before waiting
                self._hand(wait=True)
                got = self._preparer.next(True)
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

    def _call_inline(self, chunk: StreamChunk, calls: Iterator[tuple[int, Packet]]) -> None:
        """Call the chunk's packets one by one in this thread, handing their outputs to the
        (inline) writer in bulk. Returns at the calls' end - or once calls that took
        ``TIMED_SECONDS`` in all averaged ``SLOW_CALL_SECONDS`` or more: look-ups and commits
        then move to threads of their own, and the remaining calls go the threaded way."""
        self._hand(wait=True)  # the chunk reaches the writer before its outputs
        call, clock, timing = self._call, time.perf_counter, self._timing
        packets: list[int] = []
        outputs: list[Any] = []
        since = clock()
        slow = False
        try:
            for packet, value in calls:
                self._check_stop()
                started = clock()
                logger = chunk.begin(packet)
                try:
                    output = call(value) if logger is None else call(value, logger=logger)
                except Exception as err:  # noqa: BLE001 - recorded; raised under fail_fast
                    if packets:  # in order: the outputs before the failure
                        self._writer.hand([("outputs", chunk, packets, outputs)])
                        packets, outputs = [], []
                    self._collect(chunk, packet, Pending.failed(err))
                else:
                    if chunk.ended(packet, output):
                        chunk.release_capture()
                    packets.append(packet)
                    outputs.append(output)
                now = clock()
                if timing[0] >= 0:
                    timing[1] += now - started
                timing[0] += 1
                if len(packets) >= HAND_ROWS or now - since >= HAND_SECONDS:
                    since = now
                    if packets:
                        self._writer.hand([("outputs", chunk, packets, outputs)])
                        packets, outputs = [], []
                if timing[1] >= TIMED_SECONDS:
                    slow = timing[1] >= SLOW_CALL_SECONDS * timing[0]
                    timing[0], timing[1] = 0, 0.0
                    if slow:
                        break
        finally:  # the outputs finished so far are committed, whatever comes next
            if packets and self._writer.error is None:
                self._writer.hand([("outputs", chunk, packets, outputs)])
        if slow:
            self._threads()

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
                chunk.release_capture()
            self._add(("failed", chunk, packet, chunk.failure_records(packet, err)))
            stop = chunk.fail_fast_error(packet, err)
            if stop is not None:
                raise stop from err
        else:
            if chunk.ended(packet, output):
                chunk.release_capture()
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

    def request() -> Future[pa.Table | None]:
        return asyncio.run_coroutine_threadsafe(ahead.take(settle=SETTLE_SECONDS), loop)

    def send(table: pa.Table) -> None:
        # one hand-off to the event loop per table, which sends it in channel-sized chunks:
        # a hand-off per chunk cost two thread switches per ``chunk_rows`` rows
        asyncio.run_coroutine_threadsafe(send_table(table, output, chunk_rows), loop).result()

    stream = _NodeStream(
        settings,
        store,
        template,
        keys,
        request,
        None if output is None else send,
        max_concurrency,
    )

    def cancelled() -> None:
        stop = ChannelClosedError(f"the run of node {settings.label!r} was cancelled")
        stream.stop(stop)  # no new call; the ones under way end and are committed
        reader.close(stop)
        if output is not None:
            output.close(stop)

    ahead.start()
    try:
        return await in_thread(stream.run, settings.label, on_cancel=cancelled)
    except asyncio.CancelledError as err:  # (the thread's own error stays in the thread)
        if stream.partial is not None:
            attach_partial_summary(err, stream.partial)
        raise
    finally:
        await ahead.stop()


def _stored_counts(label: str, writer: StreamWriter) -> NodeRunSummary:
    """Rows computed, reused, filtered and failed that a stopped streaming run committed: the
    chunks passed on, and the settled rows of those it held (never-called rows not counted)."""
    counts = writer.counts.copy()
    for chunk in writer.chunks:
        counts += chunk.summary(never_called_filtered=False)
    computed, reused, filtered, failed = (int(c) for c in counts)
    return NodeRunSummary(label, computed, reused, filtered, failed)
