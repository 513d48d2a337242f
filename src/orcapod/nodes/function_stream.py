"""Streaming run of a ``FunctionNode``: the engine's phases per received chunk.

``stream_function(...)`` (behind ``FunctionNode.async_execute``) reads the node's input
channel ahead of its work (``ReadAhead``: up to ``read_rows`` rows - ``READ_AHEAD_ROWS``, or
the node's ``FlushPolicy.rows`` if smaller) and, for each chunk (every row read since the
previous chunk, so a fast upstream is met with few, large chunks and a slow one with small,
early ones), runs one ``FunctionRun`` (``orcapod.nodes.function_run``): identify the chunk
(``InputPlan``: input packet hashes and entry ids of its rows, the packet projected onto the
function's parameters exactly as a synchronous run projects it), look up its recorded entries
and its novel packets in the result cache, dispatch the missing packets (at most
``max_concurrency`` in flight with a concurrent executor) and write through the engine's
``RunWriter``. The whole run happens in a thread of its own; the event loop only moves chunks.

Passing rows on: a finished row is passed downstream **after it is stored**. Right after each
commit, the rows of the chunk that are settled (reused, cache hits, computed, filtered or
failed), taken from the start of the chunk up to the first row still running, are read back
from the store (``NodeStore.stored_table``: the very rows, hidden columns included, that a
synchronous run's downstream node reads) and sent, in input order; a chunk's remaining rows
are sent once it is finished. So output order is input order, and a downstream node never
sees a row that a crash could take back: whatever it computes from that row is derived from
committed data, and after a kill every stored downstream record points at an upstream record
and result that exist (the next run of either node finds them and recomputes nothing).

Committing often enough to pass rows on promptly (``StreamingWriter``): a finished row is
committed at once, unless the previous commit ended less than ``COMMIT_GAP`` times its own
duration (the commit and passing its rows on, which both hold up the node's dispatch) ago -
then it goes with the next finished row, or at the end of the chunk. Slow functions (the
reason to stream) thus commit every row as it finishes, fast ones in batches that keep commits
to a small share of the run; the node's ``FlushPolicy`` (rows and age) still bounds every batch.

The summary is the sum of the chunks' summaries, which equals a synchronous run's: entries are
distinct across the input (system tags identify source rows), and a packet that an earlier
chunk of the same run computed is found in the result cache but counted (and recorded) as
computed, as it is when both rows are in one input (``FunctionRun.computed_earlier``; the
run keeps the 16-byte keys of the packets it computed). A packet that failed in an earlier
chunk is called again for a later chunk's row (and fails or not again). Only a row repeated
exactly (same tags, system tags and packet - possible in a hand-built stream without system
tags) and falling into two chunks is counted as reused the second time instead of as its
first occurrence's outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from orcapod._lazy import lazy_module
from orcapod.errors import ChannelClosedError
from orcapod.functions.engine.identify import InputPlan
from orcapod.functions.engine.keys import match_keys, string_keys
from orcapod.functions.engine.write import RunWriter
from orcapod.nodes.function_run import SKIPPED, FunctionRun, RunSettings
from orcapod.nodes.node_store import NodeStore
from orcapod.nodes.streaming import Output, ReadAhead, in_thread
from orcapod.nodes.summary import NodeRunSummary
from orcapod.operators.layout import FULL_INFO
from orcapod.streams import ArrowTableStream
from orcapod.streams.channels import Channel
from orcapod.types.columns import SYSTEM_TAG_PREFIX, source_column

if TYPE_CHECKING:
    import asyncio
else:
    asyncio = lazy_module("asyncio")

__all__ = ["COMMIT_GAP", "READ_AHEAD_ROWS", "StreamingWriter", "stream_function"]

#: at most this many input rows are read ahead of a function node's work (and so make up at
#: most one chunk); bounds a node's memory whatever the input's size
READ_AHEAD_ROWS = 50_000

#: a finished row waits for the next commit only while the last commit ended less than this
#: many times its duration ago (commits take at most ~1 / (1 + COMMIT_GAP) of a busy run)
COMMIT_GAP = 8.0

#: a chunk (after the first, which starts on the first rows) starts once it holds
#: CHUNK_WINDOWS x the dispatch window rows, or CHUNK_PATIENCE seconds after its first row
#: arrived, whichever comes first
CHUNK_WINDOWS = 4
CHUNK_PATIENCE = 0.05


class StreamingWriter(RunWriter):
    """A ``RunWriter`` that commits as soon as the commit cadence allows and calls
    ``after_commit`` after every commit (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.after_commit: Callable[[], None] | None = None
        self._commit_seconds = 0.0
        self._last_end = float("-inf")

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
        super().flush()
        if self.after_commit is not None:
            self.after_commit()
        if busy:  # the commit and passing its rows on
            self._last_end = time.monotonic()
            self._commit_seconds = self._last_end - start


class _Emitter:
    """Sends a chunk's stored rows downstream, in input order, as they settle."""

    def __init__(
        self,
        plan: InputPlan,
        store: NodeStore,
        template: pa.Table,
        tag_keys: Sequence[str],
        send: Callable[[pa.Table], None],
    ) -> None:
        self._plan = plan
        self._store = store
        self._template = template
        self._tag_keys = list(tag_keys)
        self._send = send
        self._done = 0

    def advance(self, settled: np.ndarray | None) -> None:
        """Send the rows settled since the last call (all remaining rows when None)."""
        n = self._plan.num_rows
        end = n
        if settled is not None:
            ready = settled[self._plan.codes[self._done :]] != SKIPPED
            waiting = np.flatnonzero(~ready)
            if len(waiting):
                end = self._done + int(waiting[0])
        if end <= self._done:
            return
        rows = self._plan.table.slice(self._done, end - self._done)
        self._done = end
        part = InputPlan(ArrowTableStream(rows, self._tag_keys))
        table = self._store.stored_table(part, self._template)
        if table.num_rows:  # as a synchronous reader reads the node: every hidden column
            self._send(ArrowTableStream(table, self._tag_keys).as_table(FULL_INFO))


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
    tag_keys, packet_keys = keys

    ahead = ReadAhead(reader, read_rows)

    # a chunk of a few windows' worth keeps the window busy across a chunk's end and spreads
    # the chunk's look-ups and final commit over several rows
    min_rows = CHUNK_WINDOWS * settings.pod.concurrency_window(max_concurrency)

    patience = [0.0]  # the first chunk starts on the first rows

    def receive() -> pa.Table | None:
        take = ahead.take(min_rows, patience[0])
        patience[0] = CHUNK_PATIENCE
        return asyncio.run_coroutine_threadsafe(take, loop).result()

    def send(table: pa.Table) -> None:
        assert output is not None
        for start in range(0, table.num_rows, chunk_rows):
            part = table.slice(start, chunk_rows)
            asyncio.run_coroutine_threadsafe(output.send(part), loop).result()

    called: list[np.ndarray] = []  # keys of the input hashes computed so far

    def computed_earlier(hashes: pa.Array) -> np.ndarray:
        if not called:
            return np.zeros(len(hashes), dtype=bool)
        reference = np.concatenate(called)
        return np.asarray(match_keys(string_keys(hashes), reference) >= 0)

    def work() -> NodeRunSummary:
        counts = np.zeros(4, dtype=np.int64)
        while (chunk := receive()) is not None:
            if not chunk.num_rows:
                continue
            plan = InputPlan(ArrowTableStream(_project(chunk, tag_keys, packet_keys), tag_keys))
            run = FunctionRun(settings, plan, store, writer_type=StreamingWriter)
            run.computed_earlier = computed_earlier
            emitter = _Emitter(plan, store, template, tag_keys, send)
            writer = run.writer
            assert isinstance(writer, StreamingWriter)
            if output is not None:
                writer.after_commit = lambda run=run, emitter=emitter: emitter.advance(
                    run.settled()
                )
            try:
                done = run.run(max_concurrency)
            finally:
                fresh = run.computed_hashes()
                if len(fresh):
                    called.append(string_keys(fresh))
            if output is not None:
                emitter.advance(None)
            counts += (done.computed, done.reused, done.filtered, done.failed)
        computed, reused, filtered, failed = (int(c) for c in counts)
        return NodeRunSummary(settings.label, computed, reused, filtered, failed)

    def cancelled() -> None:
        stop = ChannelClosedError(f"the run of node {settings.label!r} was cancelled")
        reader.close(stop)
        if output is not None:
            output.close(stop)

    ahead.start()
    try:
        return await in_thread(work, settings.label, on_cancel=cancelled)
    finally:
        await ahead.stop()
