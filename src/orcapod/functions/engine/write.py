"""``RunWriter``: the batched write path of a ``FunctionNode`` run.

Finished rows are buffered in memory as cheaply as possible (per computed packet: its index,
input hash and output, in parallel lists; every ``_COMPACT_ROWS`` rows the function's own
outputs are reduced to their value dicts with ``ResultCache.own_values``, so a buffered row
keeps one live object instead of a packet, its lazy source info and its input - which keeps the
garbage collector's full passes rare) and committed together (the node's ``FlushPolicy``): every
``rows`` buffered rows, once they hold about ``bytes`` bytes (estimated for outputs), once
the oldest buffered row has waited ``seconds`` (checked as rows arrive), and at the end of
the run. The deadline counts from the oldest uncommitted row, not from the previous commit:
that is the promise (a killed run loses at most about the last ``seconds`` of finished
work), and a run shorter than that commits once, at the end. Where commits are slow (object
storage, several processes committing to one table), the age limit is at least
``COMMIT_SPACING`` (4) times the last commit's duration; a killed run then loses at most that
much. Within ``committing_in_background`` (a run sharing its work with other processes) those
commits run in a thread of their own while the calls go on (``engine.commits``: one at a
time, counted in ``taken`` / ``landed``), and they write the pipeline and failure records of
the results they commit at most every ``RECORDS_SECONDS`` (10 s), holding them back meanwhile
(the next commit writes them, and ``flush`` at the latest, at the run's end): the processes
sharing the work read every commit to a table they write, and what they wait for is results
(their records follow them anyway); a process killed meanwhile leaves results without records,
which the others record as they look them up (or the next run does, as after a kill between
the two commits below). A commit writes, in this order, the results (one
``store_many`` + flush of the result database), then the pipeline records pointing at them
(built with ONE vectorised ``take`` over the input table), then the failure records, then
flushes the pipeline database, then runs what ``on_commit`` returned when the batch was handed
over (a packet observer's writes of the calls handed over by then, e.g. their logs: they reach
the store on the results' cadence, in one commit of their own per results commit). Results
and records are written as verified absent (``absent_at``) at the versions the run checked
them (``results_absent_at``, ``records_absent_at``), so a versioned database skips its
duplicate check against the rows committed up to then. A process killed between the two
flushes leaves results without records - the next run finds them in the result cache - never
a record without its result.
The function's variation and execution
data (stored with every result) are read once per run, at its first finished row: with a
concurrent executor the other calls are still running then, so the first read (a git
subprocess, hashing the source) does not add to the run's end.

An output that passed the function's type check but cannot be stored (an int beyond int64, a
string with a lone surrogate, a decimal of more than 38 digits, ...) fails only its own row:
when a batch does not convert, the rows that do not are found one by one, the others are
committed, and each bad row goes to ``on_unstorable`` (the node records it as a failure naming
the function and the tag; the next run retries it), in the calling thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from orcapod._lazy import pc
from orcapod.data import Packet
from orcapod.databases import ArrowDatabase
from orcapod.errors import PacketFunctionError, SchemaError
from orcapod.functions.engine.commits import BEAT_SECONDS, CommitThread, Unstorable
from orcapod.functions.provenance import OwnValues
from orcapod.functions.result_cache import ResultCache
from orcapod.types import FlushPolicy
from orcapod.types.columns import RECORD_ID

__all__ = ["COMMIT_SPACING", "RECORDS_SECONDS", "RecordBuilder", "RunWriter", "output_bytes"]


@dataclass(frozen=True)
class _Batch:
    """Buffered rows handed over to be committed together."""

    outputs: list[Packet | OwnValues | None]
    packets: list[int]
    hashes: pa.Array | None  # the input hashes of ``packets``
    records: list[pa.Table]
    failures: list[pa.Table]
    after: Callable[[], None] | None = None  # ``RunWriter.on_commit``'s


#: ``(packet indices, their result ids, computed flag) -> pipeline records of their entries``
RecordBuilder = Callable[[np.ndarray, pa.Array, bool], pa.Table]

#: the age limit is at least this many times the last commit's duration
COMMIT_SPACING = 4
#: commits in the background write the records of committed results at most this often
RECORDS_SECONDS = 10.0

_COMPACT_ROWS = 1024
_SAMPLE_EVERY = 64


def output_bytes(output: Packet | OwnValues | None) -> int:
    """A quick estimate of the bytes an output's values hold (strings, bytes and arrays by
    their size, lists by their items, anything else as 8 bytes)."""
    if output is None:
        return 0
    values = output.as_dict() if isinstance(output, Packet) else output
    return sum(_value_bytes(v) for v in values.values())


def _value_bytes(value: object) -> int:
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, list | tuple):
        return 8 + sum(_value_bytes(v) for v in value)
    return 8


def _sampled(before: int, start: int, end: int) -> range | list[int]:
    """Positions in ``[start, end)`` of the outputs whose size ``add_computed`` counts, when
    ``before`` outputs came earlier: numbers 1 to ``_SAMPLE_EVERY - 1``, then every multiple
    of ``_SAMPLE_EVERY``."""
    first = start + max(0, min(end - start, _SAMPLE_EVERY - 1 - before))
    number = max(_SAMPLE_EVERY, -(-(before + first - start + 1) // _SAMPLE_EVERY) * _SAMPLE_EVERY)
    every = range(start + number - before - 1, end, _SAMPLE_EVERY)
    return [*range(start, first), *every] if first > start else every


class RunWriter:
    """Buffers one run's results, records and failures and commits them in batches, in the
    calling thread or, within ``committing_in_background``, in a committing thread
    (``engine.commits``: the ``Commits`` a shared run asks of it)."""

    def __init__(
        self,
        *,
        cache: ResultCache,
        variation: Callable[[], Mapping[str, str]],
        execution: Callable[[], Mapping[str, str]],
        pipeline_db: ArrowDatabase,
        failure_db: ArrowDatabase,
        record_path: Sequence[str],
        record_id_column: str,
        failure_id_column: str,
        policy: FlushPolicy,
    ) -> None:
        self._cache = cache
        self._variation = variation
        self._execution = execution
        #: the function's variation and execution data, read once per run (module docstring)
        self._function_data: tuple[Mapping[str, str], Mapping[str, str]] | None = None
        self._pipeline_db = pipeline_db
        self._failure_db = failure_db
        self._path = tuple(record_path)
        self._id_column = record_id_column
        self._failure_id_column = failure_id_column
        #: builds the records of computed packets; set before the first ``add_computed``
        self.build_records: RecordBuilder | None = None
        #: called with (packet index, error) for an output the store cannot hold (the row
        #: then counts as failed); set before the first ``add_computed``
        self.on_unstorable: Callable[[int, Exception], None] | None = None
        #: versions at which the run verified its results' input hashes and its records' entry
        #: ids absent (``committed_version`` before the lookup; None: unverified)
        self.results_absent_at: int | None = None
        self.records_absent_at: int | None = None
        self._flush_rows = policy.rows
        self._flush_seconds = policy.seconds
        self._flush_bytes = policy.bytes
        self._bytes = 0  # buffered bytes (estimated for outputs)
        self._computed = 0  # outputs added in this run (sets which ones are measured)
        #: record ids to store some packets' results under (by packet index), e.g. the id a
        #: record whose result is gone points at; the others get the cache's own ids
        self.fixed_ids: dict[int, str] = {}
        #: called (in the calling thread) whenever buffered rows are handed over to be
        #: committed; what it returns runs once their commit has landed, in the thread that
        #: commits (the node stores its calls' logs so: on the results' cadence)
        self.on_commit: Callable[[], Callable[[], None] | None] | None = None
        #: called with (packet indices, the result rows written for them) at every write
        self.on_stored: Callable[[list[int], pa.Table], None] | None = None
        #: the input hash strings of computed packets (by index); set before ``add_computed``
        self.input_hashes: Callable[[np.ndarray], pa.Array] | None = None
        self._outputs: list[Packet | OwnValues | None] = []
        self._compacted = 0  # outputs before this index went through ``own_values``
        self._packets: list[int] = []
        self._records: list[pa.Table] = []
        self._failures: list[pa.Table] = []
        #: records and failure records of committed results, held back by background commits
        #: (module docstring), and when the oldest of them was held back
        self._held_records: list[pa.Table] = []
        self._held_failures: list[pa.Table] = []
        self._held_since = 0.0
        self._rows = 0
        self._oldest = 0.0  # when the oldest buffered row arrived (valid while _rows > 0)
        self._last_commit_seconds = 0.0  # how long the last commit took
        #: batches handed over to be committed, and those whose results landed (in order:
        #: ``engine.commits``)
        self.taken = self.landed = 0
        self._thread: CommitThread[Unstorable] | None = None  # (``committing_in_background``)
        self._wanted = False  # a flush was asked for while a commit was in flight
        self._landing = threading.Condition()
        #: a batch may join the commit in flight (its results not all landed yet), and the
        #: batch handed over to join it (``flush_results``)
        self._joinable = False
        self._joining: _Batch | None = None

    def add_computed(self, packet: int, output: Packet | OwnValues | None) -> None:
        """A freshly computed result (None: filtered) of the packet with index ``packet``
        (its input hash is read at the commit: no string per row is kept meanwhile)."""
        if not self._rows:
            self._oldest = time.monotonic()
            self._data()  # read now, while other calls may still run
        outputs = self._outputs
        outputs.append(output)
        self._packets.append(packet)
        self._rows += 1
        self._computed += 1
        if self._computed < _SAMPLE_EVERY:  # the first outputs each, then a sample
            self._bytes += output_bytes(output)
        elif self._computed % _SAMPLE_EVERY == 0:
            self._bytes += _SAMPLE_EVERY * output_bytes(output)
        if len(outputs) - self._compacted >= _COMPACT_ROWS:
            # keep only the values of the function's own outputs until the write: far fewer
            # live objects per buffered row (and far less garbage-collector work)
            start = self._compacted
            outputs[start:] = self._cache.own_values(outputs[start:], *self._data())
            self._compacted = len(outputs)

    def add_computed_many(
        self,
        packets: Sequence[int],
        outputs: Sequence[Packet | OwnValues | None],
        values: bool = False,
    ) -> None:
        """``add_computed`` of several packets, committing wherever one by one would: a
        commit due after the k-th of them (rows or bytes) comes right after it. ``values``:
        the outputs are value dicts (or None) already, with nothing to compact."""
        total, i = len(packets), 0
        while i < total:
            if not self._rows:
                self._oldest = time.monotonic()
                self._data()  # read now, while other calls may still run
            # the rows limit cuts at a fixed place; the bytes limit only where a sampled output
            # adds to the estimate (``add_computed``'s counting), so only those are visited
            computed, size = self._computed, self._bytes
            j = min(total, i + max(1, self._flush_rows - self._rows))
            for k in _sampled(computed, i, j):
                number = computed + k - i + 1
                size += output_bytes(outputs[k]) * (1 if number < _SAMPLE_EVERY else _SAMPLE_EVERY)
                if size >= self._flush_bytes:
                    j = k + 1
                    break
            computed += j - i
            as_values = values and self._compacted == len(self._outputs)
            self._outputs.extend(outputs[i:j])
            self._packets.extend(packets[i:j])
            self._rows += j - i
            self._computed, self._bytes = computed, size
            if as_values:
                self._compacted = len(self._outputs)
            elif len(self._outputs) - self._compacted >= _COMPACT_ROWS:
                start = self._compacted
                compact = self._cache.own_values(self._outputs[start:], *self._data())
                self._outputs[start:] = compact
                self._compacted = len(self._outputs)
            self.maybe_flush()
            i = j

    def add_records(self, table: pa.Table) -> None:
        if table.num_rows:
            if not self._rows:
                self._oldest = time.monotonic()
            self._records.append(table)
            self._rows += table.num_rows
            self._bytes += table.nbytes

    def add_failures(self, table: pa.Table) -> None:
        if table.num_rows:
            if not self._rows:
                self._oldest = time.monotonic()
            self._failures.append(table)
            self._rows += table.num_rows
            self._bytes += table.nbytes

    def prepare(self) -> None:
        """Read the function's variation and execution data now (else at the first row)."""
        self._data()

    def _data(self) -> tuple[Mapping[str, str], Mapping[str, str]]:
        if self._function_data is None:
            self._function_data = (self._variation(), self._execution())
        return self._function_data

    def maybe_flush(self) -> None:
        if self._wanted or (
            self._rows
            and (
                self._rows >= self._flush_rows
                or self._bytes >= self._flush_bytes
                or time.monotonic() - self._oldest
                >= max(self._flush_seconds, COMMIT_SPACING * self._last_commit_seconds)
            )
        ):
            if self._thread is None:
                self.flush()
            else:
                self._start(wait=False)

    def flush(self) -> None:
        """Commit every buffered row (after the commit in flight, if any) before returning,
        and the records held back by commits in the background."""
        unstorable = None
        if self._thread is not None:
            _, unstorable = self._thread.collect(wait=True)
        self._wanted = False
        batch = self._take()
        if batch is not None:
            unstorable = {**(unstorable or {}), **self._commit(batch)}
        elif self._held_records or self._held_failures:
            self._write_records([], [], background=False)
        if unstorable:
            self._fail_unstorable(unstorable)

    def _buffered(self) -> bool:
        return bool(self._rows or self._outputs)

    def _take(self) -> _Batch | None:
        """Hand the buffered rows over as one batch, the next ``taken`` (None: nothing
        buffered, and that batch has landed at once)."""
        self.taken += 1
        if not self._rows and not self._outputs:
            self._results_landed()
            return None
        hashes = None
        if self._outputs:
            assert self.input_hashes is not None, "set input_hashes before add_computed"
            hashes = self.input_hashes(np.array(self._packets, dtype=np.int64))
        after = None if self.on_commit is None else self.on_commit()
        batch = _Batch(self._outputs, self._packets, hashes, self._records, self._failures, after)
        self._outputs, self._packets, self._records, self._failures = [], [], [], []
        self._compacted = self._rows = self._bytes = 0
        return batch

    def _commit(self, batch: _Batch, background: bool = False) -> Unstorable:
        """Commit ``batch`` (in any thread; it counts as ``landed`` once its results are
        stored, and a batch handed over meanwhile joins it: ``engine.commits``); the rows
        whose output cannot be stored. ``background``: a commit in the committing thread,
        which holds the records back until ``RECORDS_SECONDS`` (module docstring)."""
        started = time.monotonic()
        unstorable: dict[int, PacketFunctionError] = {}
        records: list[pa.Table] = []
        failures: list[pa.Table] = []
        afters: list[Callable[[], None]] = []
        joining: _Batch | None = batch
        while joining is not None:
            if joining.after is not None:
                afters.append(joining.after)
            records.extend(joining.records)
            failures.extend(joining.failures)
            if joining.outputs:
                built, bad = self._store_results(joining)
                records.append(built)
                unstorable.update(bad)
            joining = self._results_landed()
        self._write_records(records, failures, background)
        for after in afters:
            after()
        self._last_commit_seconds = time.monotonic() - started
        return unstorable

    def _write_records(
        self, records: list[pa.Table], failures: list[pa.Table], background: bool
    ) -> None:
        """Commit ``records`` and ``failures`` with those held back before; in the
        background, hold them back instead while the oldest held has waited less than
        ``RECORDS_SECONDS`` (module docstring)."""
        if (records or failures) and not (self._held_records or self._held_failures):
            self._held_since = time.monotonic()
        self._held_records.extend(records)
        self._held_failures.extend(failures)
        if background and time.monotonic() - self._held_since < RECORDS_SECONDS:
            return
        records, self._held_records = self._held_records, []
        failures, self._held_failures = self._held_failures, []
        if records:
            self._pipeline_db.add_records(
                self._path,
                pa.concat_tables(records, promote_options="permissive"),
                self._id_column,
                skip_duplicates=True,
                absent_at=self.records_absent_at,
            )
        if failures:
            self._failure_db.add_records(
                self._path,
                pa.concat_tables(failures, promote_options="permissive"),
                self._failure_id_column,
                skip_duplicates=True,
            )
        if records or failures:
            self._pipeline_db.flush()

    def _results_landed(self) -> _Batch | None:  # (in the thread that commits)
        """Count a batch's results as landed; the batch handed over meanwhile to join this
        commit (its results are stored next, before the records of both), if any."""
        with self._landing:
            self.landed += 1
            self._landing.notify_all()
            joining, self._joining = self._joining, None
            self._joinable = joining is not None
            return joining

    @contextmanager
    def committing_in_background(self) -> Iterator[None]:
        """Within it, ``flush_soon`` (and the flush policy's commits) run in a committing
        thread while the caller goes on; ``flush`` still commits everything before it
        returns. Leaving it waits for the commit in flight."""
        thread: CommitThread[Unstorable] = CommitThread()
        self._thread = thread
        try:
            yield
        except BaseException as err:
            self._thread = None
            thread.close(err)
            raise
        self._thread = None
        _, unstorable = thread.collect(wait=True)
        thread.close(None)
        if unstorable:
            self._fail_unstorable(unstorable)

    def flush_soon(self) -> None:
        """Commit every buffered row: in the committing thread within
        ``committing_in_background`` (after the commit in flight: at the next row or flush
        once it has landed), else at once (``flush``)."""
        if self._thread is None:
            self.flush()
        else:
            self._wanted = True
            self._start(wait=False)

    def _start(self, wait: bool) -> None:
        """Start committing the buffered rows in the committing thread once the commit in
        flight has ended (``wait``: wait for it; else start only if there is none), handing
        on what the last one could not store."""
        thread = self._thread
        assert thread is not None
        if thread.busy() and not wait:
            return
        _, unstorable = thread.collect(wait=True)
        self._wanted = False
        batch = self._take()
        if batch is not None:
            with self._landing:
                self._joinable = True
            thread.start(lambda: self._commit(batch, background=True))
        if unstorable:
            self._fail_unstorable(unstorable)

    def flush_results(self, beat: Callable[[], None] | None = None) -> None:
        """Commit every buffered row; return once their results have landed (within
        ``committing_in_background``, the records pointing at them may still be committing),
        calling ``beat()`` every ``BEAT_SECONDS`` while it waits (e.g. to renew claims)."""
        thread = self._thread
        if thread is None:
            self.flush()
            return
        if self._buffered():
            with self._landing:  # join the commit in flight while its results are stored
                joined = self._joinable and thread.busy()
                if joined:
                    self._joining, self._wanted = self._take(), False
            if not joined:  # else after it
                self._wait(thread, lambda: not thread.busy(), beat)
                self._start(wait=True)
        self._wait(thread, lambda: self.landed >= self.taken, beat)
        if self.landed < self.taken:  # the commit ended before its results landed: it failed
            with self._landing:
                self._joining = None  # (lost with it: nothing of it is marked done)
            thread.collect(wait=True)

    def _wait(
        self,
        thread: CommitThread[Unstorable],
        done: Callable[[], bool],
        beat: Callable[[], None] | None,
    ) -> None:
        """Until ``done()`` or the commit in flight has ended, beating meanwhile."""
        while not done() and thread.busy():
            with self._landing:
                self._landing.wait_for(done, timeout=BEAT_SECONDS)
            if beat is not None:
                beat()

    def _store_results(self, batch: _Batch) -> tuple[pa.Table, dict[int, PacketFunctionError]]:
        """Store and commit the results of ``batch``; the records pointing at them, and the
        rows whose output cannot be stored."""
        unstorable: dict[int, PacketFunctionError] = {}
        outputs, packets, hashes = batch.outputs, batch.packets, batch.hashes
        assert hashes is not None
        try:
            stored = self._store(hashes, outputs, packets)
        except SchemaError:  # some value cannot be stored: find its rows, keep the rest
            unstorable = {packets[i]: err for i, err in self._cache.unstorable(outputs).items()}
            if not unstorable:
                raise
            keep = [i for i, p in enumerate(packets) if p not in unstorable]
            hashes = hashes.take(pa.array(keep, type=pa.int64()))
            outputs = [outputs[i] for i in keep]
            packets = [packets[i] for i in keep]
            stored = self._store(hashes, outputs, packets)
        self._cache.flush()  # results first: a record never points at a missing result
        # a filtered result is recorded with a null __packet_id
        if any(out is None for out in outputs):
            kept = pa.array([out is not None for out in outputs], type=pa.bool_())
            stored = pc.if_else(kept, stored, pa.scalar(None, pa.large_string()))
        assert self.build_records is not None, "set build_records before add_computed"
        packet_array = np.array(packets, dtype=np.int64)
        return self.build_records(packet_array, stored, True), unstorable

    def _store(
        self, hashes: pa.Array, outputs: list[Packet | OwnValues | None], packets: list[int]
    ) -> pa.Array:
        """Store the outputs (not yet committed); their result ids (large strings)."""
        variation, execution = self._data()
        ids = None
        fixed = self.fixed_ids
        if fixed and any(p in fixed for p in packets):
            ids = self._cache.record_ids(hashes.to_pylist(), variation, execution)
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
        return table.column(RECORD_ID).combine_chunks().cast(pa.large_string())

    def _fail_unstorable(self, unstorable: Mapping[int, PacketFunctionError]) -> None:
        """Hand each row whose output could not be stored to ``on_unstorable`` (which records
        it as failed), after the other rows are committed; then commit those failures. An error
        the handler raises (``fail_fast``) is raised once they are committed."""
        assert self.on_unstorable is not None, "set on_unstorable before add_computed"
        raised: Exception | None = None
        for packet, err in unstorable.items():
            try:
                self.on_unstorable(packet, err)
            except Exception as exc:  # noqa: BLE001 - re-raised below, after the commit
                raised = raised or exc
        self.flush()
        if raised is not None:
            raise raised
