"""``FunctionRun``: one synchronous ``run()`` of a ``FunctionNode`` over its current input (or
one chunk of a large input, ``orcapod.nodes.node_run``) - the engine's phases, with the node's
pipeline records as the sink.

1. Identify and look up (``orcapod.nodes.chunk_work.ChunkWork``, the per-chunk path every run
   shares): recorded entries are reused or filtered, novel entries' distinct packets are
   looked up in the result cache once, and hits become new pipeline records
   (``__computed=False``) without computing.
2. Dispatch: each distinct missing packet is computed once, however many tags it appears
   under (``orcapod.functions.engine.dispatch``: up to ``max_concurrency`` calls in flight
   with a concurrent executor); processes sharing a persistent store may split the work
   (``orcapod.nodes.shared_work``).
3. Write: the batched ``RunWriter`` (results before the records pointing at them), its writes
   verified absent at the versions the look-ups saw (``absent_at``), so the store checks new
   ids only against rows committed after the run looked.
4. Failures, per the node's ``error_policy``: recorded in the failures table and never
   recorded as done, so the next run retries exactly those rows; ``fail_fast`` raises
   ``ExecutionError`` naming the row's tag once the finished work is written. An output the
   store cannot hold fails only its own row (its packet event is then a failure too).

Every input row is counted once in the returned ``NodeRunSummary`` (rows of an inactive
function, ``set_active(False)``, count as filtered: nothing is computed or recorded for them).
A run that raises (``fail_fast``, a ``KeyboardInterrupt``) first commits what it finished;
``counts_so_far()`` then tells what it did: only the rows settled and committed are counted,
rows never called are not.

Events: with a packet observer (``orcapod.functions.engine.events.observing``), calls run one
by one in this thread (no executor or a ``LocalExecutor``, window 1) are captured around each
call by one reused capture (and, when the observer does not hear each call's start, timed
there and reported in bulk with the outputs: ``PacketReporter.timed``); other calls get a
logger, so the executor captures them where they run (a Ray worker). Every commit of the
writer first hands the calls ended so far to the observer (``PacketReporter.committing``),
which may store them after that commit (the logs table: on the results' cadence). Without an
observer nothing of this runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod.data import Packet
from orcapod.functions.engine.dispatch import call_each, call_rows_in_bulk
from orcapod.functions.engine.events import current_observer
from orcapod.functions.engine.identify import InputPlan
from orcapod.functions.engine.write import RunWriter
from orcapod.nodes.chunk_work import ChunkWork
from orcapod.nodes.node_store import NodeStore
from orcapod.nodes.run_settings import (
    RunSettings,
    run_writer,
)
from orcapod.nodes.shared_work import compute_shared
from orcapod.nodes.stored_entries import StoredEntries
from orcapod.nodes.summary import NodeRunSummary

__all__ = ["FunctionRun"]


def _no_op() -> None:
    return None


class FunctionRun:
    """One run of a function node (see the module docstring)."""

    def __init__(
        self,
        node: RunSettings,
        plan: InputPlan,
        store: NodeStore,
        stored: StoredEntries | None = None,
    ) -> None:
        self._node = node
        #: what the node's tables held when a chunked run started (None: ask the store)
        self._stored = stored
        self._work = ChunkWork(node, plan, store, observer=current_observer())
        #: which of some distinct input hashes this run computed already (a chunked run's
        #: earlier chunks); None: none
        self.computed_earlier: Callable[[pa.Array], np.ndarray] | None = None
        #: which chunk of a chunked run this is (None: the whole input); it scopes work claims
        self.chunk: int | None = None
        #: a later version of the record table at which the run knows its entries absent
        #: (a chunked run's later chunk, ``node_run``); None: the look-up's
        self.records_absent_since: int | None = None
        self._writer = run_writer(node, store, RunWriter)
        if self._work.reporter is not None:  # the observer stores its calls' logs per commit
            self._writer.on_commit = self._work.reporter.committing
        #: the final commit of ``run()`` succeeded (the settled rows are stored)
        self._committed = False

    def run(self, max_concurrency: int | None) -> NodeRunSummary:
        work, writer = self._work, self._writer
        try:
            hits = work.lookup(self.computed_earlier, self._stored)
            writer.records_absent_at = work.records_absent_at
            if work.records_absent_at is not None and self.records_absent_since is not None:
                writer.records_absent_at = max(work.records_absent_at, self.records_absent_since)
            writer.results_absent_at = work.results_absent_at
            writer.fixed_ids = work.fixed_ids
            if hits is not None:
                writer.add_records(hits)
            if len(work.misses):
                self._compute(max_concurrency)
        finally:
            try:
                writer.flush()
                self._committed = True
            finally:
                work.release_capture()
                work.close_events()
                # the writer's callbacks point back at this run: without them the run is
                # freed as soon as it is dropped, not at the next full garbage collection (a
                # chunked run would otherwise keep every chunk's)
                writer.build_records = None
                writer.on_unstorable = None
                writer.on_commit = None
        computed, reused, filtered, failed = (int(c) for c in work.summary())
        return NodeRunSummary(self._node.label, computed, reused, filtered, failed)

    def counts_so_far(self) -> tuple[int, int, int, int] | None:
        """Rows computed, reused, filtered and failed so far, for a run that raised: only rows
        whose outcome is settled and committed count (never-called rows do not). None when
        unknown: the run's final commit failed, or it stopped before its rows were known."""
        if not self._committed:
            return None
        work = self._work
        try:
            counts = work.summary(never_called_filtered=False)
        except (IndexError, ValueError):  # stopped while its look-up was filling the arrays
            return None
        computed, reused, filtered, failed = (int(c) for c in counts)
        return computed, reused, filtered, failed

    def every_record_held(self) -> bool:
        """Known from counts alone: every record the node's table held at the look-up is one
        of this run's entries (``ChunkWork.every_record_held``)."""
        return self._work.every_record_held()

    def computed_hashes(self) -> pa.Array:
        """Input hashes of the packets this run called and stored (outputs and filtered)."""
        return self._work.computed_hashes()

    def _compute(self, max_concurrency: int | None) -> None:
        """Call the function once per distinct missing packet (windowed when concurrent)."""
        work, writer, node = self._work, self._writer, self._node
        pod = node.pod
        pf = pod.packet_function
        window = pod.concurrency_window(max_concurrency)

        def done(miss: int, output: Packet | dict[str, Any] | None) -> None:
            work.mark(miss, output)
            writer.add_computed(miss, output)
            work.ended(miss, output)
            writer.maybe_flush()

        def failed(miss: int, err: Exception) -> None:
            work.mark(miss, None, failed=True)
            work.ended(miss, None, err)
            writer.add_failures(work.failure_records(miss, err))
            stop = work.fail_fast_error(miss, err)
            if stop is not None:
                raise stop from err

        def unstorable(miss: int, err: Exception) -> None:  # fails only its row
            table, stop = work.unstorable(miss, err, report=True)
            writer.add_failures(table)
            if stop is not None:
                raise stop

        _, packet_schema = node.read_stream.output_schema()
        # input hashes are taken per commit (vectorised), not kept as a string per row
        writer.input_hashes = lambda packets: work.distinct.take(pa.array(packets, pa.int64()))
        writer.build_records = work.records_for
        writer.on_unstorable = unstorable
        # one by one, a plain function's outputs are kept as values (no packet per row): the
        # writer derives their source info from the stored record ids
        values = pod.sequential_values() if window == 1 else None
        call = None if values is None else values[0]
        # ... and where the function runs right here, called straight from the input's
        # column values, with no packet object per row
        rows_call = pod.sequential_rows(packet_schema) if values is not None else None
        begin = None if work.reporter is None else work.begin
        finished_at: list[float] = []  # when the first two calls finished

        def compute(
            items: np.ndarray, heartbeat: Callable[[], None] = _no_op, flush: bool = True
        ) -> list[float]:
            def done_beating(miss: int, output: Packet | dict[str, Any] | None) -> None:
                if len(finished_at) < 2:
                    finished_at.append(time.monotonic())
                done(miss, output)
                heartbeat()

            def failed_beating(miss: int, err: Exception) -> None:
                if len(finished_at) < 2:
                    finished_at.append(time.monotonic())
                failed(miss, err)

            def done_in_bulk(
                misses: list[int], outputs: list[dict[str, Any] | None], values: bool = False
            ) -> None:
                work.mark_many(misses, outputs)
                work.report_many(misses, outputs)  # (packet events of ``timed`` calls)
                writer.add_computed_many(misses, outputs, values)
                heartbeat()

            def done_values_in_bulk(misses: list[int], outputs: list[Any]) -> None:
                done_in_bulk(misses, outputs, values=True)

            # outputs in bulk, except for the first calls, which are timed one by one; with
            # packet events, calls are timed (and captured) here and reported in bulk too
            in_bulk = window == 1 and len(items) > 2
            reporter = work.reporter if in_bulk else None
            timed = None if reporter is None else reporter.timed(call or pf.call)
            bulk = done_in_bulk if in_bulk and (begin is None or timed is not None) else None
            if bulk is not None and timed is None and rows_call is not None:
                slices = work.column_slices(packet_schema, items)
                call_rows_in_bulk(
                    items,
                    ((rows_call(cols), n) for cols, n in slices),
                    done_values_in_bulk,
                    failed_beating,
                )
            else:
                call_each(
                    pf,
                    items,
                    work.packets(packet_schema, items),
                    window,
                    done_beating,
                    failed_beating,
                    call=call if timed is None else timed,
                    begin=begin if timed is None else None,
                    done_many=bulk,
                )
            if flush:
                writer.flush()  # now, so rows that fail only at the write count as failed
            return finished_at

        work.capture_here(window)  # one by one in this thread: captured here, not per call
        try:
            compute_shared(compute, work, writer, window, self.chunk)
        finally:
            work.release_capture()
