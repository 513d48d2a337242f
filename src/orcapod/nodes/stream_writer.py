"""The writer of a streaming function node run: commits and passes rows on.

``StreamWriter`` owns the run's one ``StreamingWriter`` (results, then the records pointing at
them, then failures; one for all chunks: each chunk numbers its packets from its ``base``) and
the chunks not yet passed on. The run's loop (``orcapod.nodes.function_stream``) hands it
outcomes in batches. Until ``start()`` the writer runs inline: ``hand`` does the batch at once
in the loop's thread and commits if the cadence allows (``INLINE_COMMIT_GAP`` while the loop
calls; ``wait`` commits within ``COMMIT_GAP`` while it waits for input). Once started it runs
in a thread of its own, fed through a bounded queue (``HANDED_AHEAD`` batches: a writer held
back by a slow reader holds back the loop). It then commits whenever it holds rows and nothing
more is queued - so what arrives during a commit goes with the next one - unless the previous
commit ended less than ``COMMIT_GAP`` times its own duration ago (commits then take at most
about half of a busy writer's time). The node's ``FlushPolicy`` bounds every batch either way
(checked per handed batch, so a batch may exceed ``rows`` by less than one handed batch).

A chunk's packet events (one engine run per chunk for observers) are closed by the writer
once its rows are passed on: inline at once, in its thread while it has nothing to commit, or
once more than ``CLOSE_AHEAD`` chunks wait (an observer's end-of-run work then never holds up
the calls, and seldom a commit).

After each commit it sends the settled rows of the oldest chunks on, in input order, as the
very rows (hidden columns included) a synchronous run's downstream node reads from the store:
built from the result rows the commit just wrote (``StreamingWriter.on_stored``), or - when
some of them were stored before this run (reused rows, cache hits) - read back from the store
(``NodeStore.stored_table``). A downstream node thus never sees an uncommitted row.

The writer's rows were verified absent at the versions their chunks' look-ups saw
(``records_absent_at`` / ``results_absent_at``); a commit claims the earliest of the chunks it
may hold, which is safe (the store then checks a few more committed rows than needed).
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from orcapod.functions.engine.identify import InputPlan
from orcapod.functions.engine.keys import SeenHashes
from orcapod.nodes.node_store import NodeStore
from orcapod.nodes.run_settings import SKIPPED, SPILL_ROWS, RunSettings, run_writer
from orcapod.nodes.stream_cadence import COMMIT_GAP, INLINE_COMMIT_GAP, StreamingWriter
from orcapod.nodes.stream_chunk import StreamChunk
from orcapod.operators.layout import FULL_INFO
from orcapod.streams import ArrowTableStream
from orcapod.types.columns import POD_TS, RECORD_ID, source_column

__all__ = ["CLOSE_AHEAD", "HANDED_AHEAD", "StreamWriter"]

T = TypeVar("T")

#: chunks passed on whose packet events are not closed yet: they are closed while the writer
#: has nothing to commit (an observer's end-of-run work, e.g. writing the calls' log, then does
#: not hold up a commit), or as soon as more than this many wait
CLOSE_AHEAD = 4

#: batches handed to the writer and not yet taken (each of at most ``HAND_LIMIT`` outcomes):
#: a writer held back by a slow reader holds back the loop once they are queued
HANDED_AHEAD = 4


class StreamWriter:
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
        self._closing: deque[StreamChunk] = deque()  # passed on, events not closed yet
        # first 64 bits of the input hashes computed so far (written here, read by the
        # look-up's thread: ``computed_earlier``)
        self._computed = SeenHashes(SPILL_ROWS)
        self._computed_lock = threading.Lock()
        self.counts = np.zeros(4, dtype=np.int64)
        self.error: BaseException | None = None
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=HANDED_AHEAD)
        self._threaded = False  # until ``start()``, the loop does the writer's work
        writer = run_writer(settings, store, StreamingWriter)
        writer.gap = INLINE_COMMIT_GAP
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
        """Go on in a thread of its own (until now the loop did the writer's work)."""
        self._writer.gap = COMMIT_GAP
        self._threaded = True
        self._thread.start()

    def hand(self, ops: list[tuple[Any, ...]]) -> None:
        """Queue a batch of operations - or, run inline, do them now (raises the writer's
        error, if it failed)."""
        if self.error is not None:
            raise self.error
        if not self._threaded:
            self._step(ops)
            self._close_events(len(self._closing))
            if self.error is not None:
                raise self.error
            return
        self._queue.put(ops)

    def try_hand(self, ops: list[tuple[Any, ...]]) -> bool:
        """Queue a batch if the queue has room now; whether it did."""
        if not self._threaded:
            self.hand(ops)
            return True
        if self.error is not None:
            raise self.error
        try:
            self._queue.put_nowait(ops)
        except queue.Full:
            return False
        return True

    def wait(self, future: Future[T]) -> T:
        """Run inline: the ``future``'s result, committing (and passing on) the rows
        buffered meanwhile once they are due."""
        while True:
            try:
                return future.result(timeout=self._writer.due_in(COMMIT_GAP))
            except TimeoutError:
                if future.done():
                    raise
            self.commit()

    def commit(self) -> None:
        """Run inline: commit and pass on every row buffered now."""
        self._guard(self._writer.flush)
        self._close_events(len(self._closing))
        if self.error is not None:
            raise self.error

    def close(self, emit: bool) -> None:
        """Commit what is left (``emit``: and pass it on) and end the thread."""
        if not self._threaded:
            self._step([("end", emit)])
            return
        self._queue.put([("end", emit)])
        self._thread.join()

    # -- the thread ---------------------------------------------------------------------------

    def _work(self) -> None:
        writer = self._writer
        get = self._queue.get
        # the function's data, read while the first calls run (else at the first row)
        self._guard(writer.prepare)
        while True:
            if self._closing and self._queue.empty() and writer.due_in() != 0.0:
                self._close_events(1)  # nothing to commit now: close a chunk's events
                continue
            try:
                ops = get(timeout=None if self.error is not None else writer.due_in())
            except queue.Empty:
                ops = []
            if self._step(ops):
                return

    def _step(self, ops: list[tuple[Any, ...]]) -> bool:
        """Do a batch of operations, then commit if nothing more is queued and the cadence
        allows; True once the run's end was done (the thread then ends)."""
        writer = self._writer
        for op in ops:
            if op[0] == "end":  # the thread ends here, whatever the last commit does
                try:
                    if not op[1] or self.error is not None:
                        writer.after_commit = None
                    writer.flush()
                    if op[1] and self.error is None and self.chunks:
                        self._emit()
                except BaseException as err:  # noqa: BLE001 - close() raises it
                    if self.error is None:
                        self.error = err
                self._close_events(len(self._closing))
                return True
            self._guard(self._do, op)
        if self._queue.empty():  # nothing more queued: commit now if the cadence allows
            self._guard(writer.maybe_flush)
        return False

    def _guard(self, action: Callable[..., None], *args: Any) -> None:
        """Do ``action``; its error is kept (the loop raises it), and from then on commits
        pass nothing on."""
        try:
            action(*args)
        except BaseException as err:  # noqa: BLE001 - the loop raises it
            if self.error is None:
                self.error = err
            self._writer.after_commit = None

    def _close_events(self, count: int) -> None:
        """Close the events of the ``count`` oldest chunks passed on (module docstring)."""
        for _ in range(count):
            try:
                self._closing.popleft().close_events()
            except BaseException as err:  # noqa: BLE001 - the loop raises it
                if self.error is None:
                    self.error = err

    def _do(self, op: tuple[Any, ...]) -> None:
        kind, writer = op[0], self._writer
        if kind == "computed":
            _, chunk, packet, output = op
            chunk.mark(packet, output)
            writer.add_computed(chunk.base + packet, output)
        elif kind == "outputs":  # several calls' outputs, their events already reported
            _, chunk, packets, outputs = op
            base = chunk.base
            writer.add_computed_many([base + p for p in packets], outputs)
            # marked once added: a commit while adding them must not pass their rows on
            chunk.mark_outputs(packets, outputs)
        elif kind == "failed":
            _, chunk, packet, table = op
            chunk.mark(packet, None, failed=True)
            writer.add_failures(table)
        elif kind == "chunk":
            _, chunk, hits = op
            self.chunks.append(chunk)
            if hits is not None:
                writer.add_records(hits)
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

    def _input_hashes(self, packets: np.ndarray) -> pa.Array:
        parts: list[pa.Array] = []
        order: list[np.ndarray] = []
        for chunk, at, local in self._split(packets):
            parts.append(chunk.distinct.take(pa.array(local, pa.int64())))
            order.append(at)
        if len(parts) == 1:
            return parts[0]
        # back into the order of ``packets``
        joined = pa.concat_arrays([p.cast(pa.large_string()) for p in parts])
        return joined.take(pa.array(np.argsort(np.concatenate(order), kind="stable"), pa.int64()))

    def _build_records(self, packets: np.ndarray, ids: pa.Array, computed: bool) -> pa.Table:
        parts = [
            chunk.records_for(local, ids.take(pa.array(at, pa.int64())), computed)
            for chunk, at, local in self._split(packets)
        ]
        return parts[0] if len(parts) == 1 else pa.concat_tables(parts)

    def _unstorable(self, packet: int, err: Exception) -> None:  # fails only its row
        ((chunk, _, local),) = self._split(np.array([packet], dtype=np.int64))
        # its event stays the call's own outcome: the chunk's events belong to the loop
        table, stop = chunk.unstorable(int(local[0]), err, report=False)
        self._writer.add_failures(table)
        if stop is not None:
            raise stop

    def _keep(self, packets: list[int], table: pa.Table) -> None:
        for chunk, at, local in self._split(np.asarray(packets, dtype=np.int64)):
            chunk.keep(local, table.take(pa.array(at, pa.int64())), self._keep_columns)

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
            # here, not in the loop: an observer's work at a run's end (e.g. writing the
            # calls' logs) never holds up the calls - and preferably while nothing is due
            self._closing.append(chunk)
            if len(self._closing) > CLOSE_AHEAD:
                self._close_events(len(self._closing) - CLOSE_AHEAD)
            self.counts += chunk.summary()
            with self._computed_lock:
                self._computed.add(chunk.computed_hashes())
            chunk.passed = True

    def computed_earlier(self, hashes: pa.Array) -> np.ndarray:
        """Which of ``hashes`` (input hashes) the chunks passed on so far computed."""
        with self._computed_lock:
            return self._computed.contains(hashes)

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
