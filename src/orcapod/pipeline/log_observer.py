"""``LoggingObserver``: stores one log row per executed packet in the store.

For every call of a function node's function it writes, at
``database.at("_logs")`` + the node's record path (``orcapod.pipeline.store_layout``), a row
with the user tag columns of the row that asked for it (none for an input with no tag
columns: its rows are told apart by ``__input_packet_hash``) and ``__log_id`` (a random 64-bit
token per engine run, in hex, ``.`` and the packet's key in that run: short, so the store's
per-id work stays cheap), ``__run_id``,
``__node_label``, ``__node_hash``, ``__input_packet_hash`` (joins the node's records and the
function's results), ``__outcome`` (computed, filtered or failed), ``__timestamp`` (start,
UTC), ``__duration`` (seconds), ``__success``, ``__stdout``, ``__stderr``, ``__python_logs``
(``LEVEL:logger:message`` lines; each null when the call wrote nothing there, which keeps a
silent call's row cheap to store), ``__traceback`` (null on success), ``__executor_type``
and ``__host`` (where the call ran: the Ray worker's host for Ray). Rows that needed no call
(reused, or filtered earlier) have no log row. Environment variables and executor options
are never stored.

It asks the engine to capture each call's output (``captures_output``): the executor
captures in the process that runs the call (the Ray worker for ``RayExecutor``).

When rows are committed. The logs of a node's calls are committed on its results' cadence
(the node's ``FlushPolicy``): whenever the run commits results it first hands over the calls
ended so far (``on_packets_commit``), and once that commit has landed their rows are built
column-wise, added and committed, in the thread that commits (in the background while the
calls go on, for a run that commits there). So a process killed mid-run (SIGKILL, out of
memory) loses at most the logs of the calls whose results it loses too - the next run reuses
those results and calls nothing again, so their logs could never be written later. A commit
with no new calls writes nothing; at most one logs commit follows each results commit (batches
joined into one results commit have their logs committed together, by the last hook), so a
run shorter than the policy's ``seconds`` commits its logs once, with its results at its end,
and a long run adds one logs commit per results commit (on object storage each commit costs
requests: the cadence is the results', never faster). Calls of a node run that does not
commit this way (a streaming run's chunks, a node run without a writer) are written when
their engine run ends (``on_packets_done``); rows of more than ``batch_calls`` calls waiting
are added to the store's buffer meanwhile (bounded memory; committed with the next flush).

Cost. A call that wrote nothing costs a few list appends while it runs and a share of the
columnar build and the write: a column nothing was written to is stored as an all-null array,
and the write tells the store its ids are new (they carry a fresh random token), so they are
never checked against the rows the logs table already holds.
"""

from __future__ import annotations

import socket
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from orcapod._lazy import pc
from orcapod.databases import ArrowDatabase
from orcapod.functions.engine.events import PacketBatch, PacketOutcome, PacketRun
from orcapod.pipeline.observers import NoOpObserver
from orcapod.pipeline.store_layout import LOGS_AREA

__all__ = ["LoggingObserver"]

_HOST = socket.gethostname()
_STRING = pa.string()  #: the stored string type


class LoggingObserver(NoOpObserver):
    """Writes the logs table of every function node it hears (see the module docstring)."""

    captures_output = True

    def __init__(self, database: ArrowDatabase, batch_calls: int = 50_000) -> None:
        self._db = database.at(LOGS_AREA)
        self._batch_calls = batch_calls
        #: the pipeline run being observed (None outside one: each node run gets its own id)
        self.run_id: str | None = None
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        #: per engine run, the commit hooks handed out whose results commit has not run them
        self._waiting: dict[int, int] = {}

    def on_run_start(self, run_id: str, pipeline_name: str) -> None:
        self.run_id = run_id

    def on_run_end(self, run_id: str, summary: object) -> None:
        self.run_id = None

    def on_packets_start(self, run: PacketRun) -> None:
        # a node's run may be several engine runs (a streaming node runs one per chunk), each
        # numbering its packets from 0: a random 64-bit token per engine run keeps their log
        # ids apart (the run id has its own column, so the id need not repeat it)
        with self._lock:
            run_id = self.run_id or str(uuid.uuid4())
            self._pending[id(run)] = _Pending(run_id, f"{uuid.uuid4().hex[:16]}.")

    def on_packets_end(self, run: PacketRun, batch: PacketBatch) -> None:
        with self._lock:
            pending = self._pending[id(run)]
            pending.batches.append(batch)
            pending.calls += len(batch)
            if pending.calls < self._batch_calls:
                return
            self._pending[id(run)] = _Pending(pending.run_id, pending.prefix, unflushed=True)
        self._write(run, pending)

    def on_packets_commit(self, run: PacketRun) -> Callable[[], None] | None:
        with self._lock:
            pending = self._pending.get(id(run))
            if pending is None or not (pending.batches or pending.unflushed):
                return None
            self._pending[id(run)] = _Pending(pending.run_id, pending.prefix)
            self._waiting[id(run)] = self._waiting.get(id(run), 0) + 1

        def commit() -> None:  # once the results of these calls are committed
            if pending.batches:
                self._write(run, pending)
            with self._lock:  # batches joined into one results commit: one logs commit
                self._waiting[id(run)] -= 1
                last = not self._waiting[id(run)]
                if not last and id(run) in self._pending:
                    self._pending[id(run)].unflushed = True  # (flushed by a later hook or the end)
            if last:
                self._db.flush()

        return commit

    def on_packets_done(self, run: PacketRun) -> None:
        with self._lock:
            pending = self._pending.pop(id(run))
            self._waiting.pop(id(run), None)
        if pending.batches:
            self._write(run, pending)
        if pending.batches or pending.unflushed:
            self._db.flush()

    def _write(self, run: PacketRun, pending: _Pending) -> None:
        table = log_table(run, pending.batches, pending.run_id, pending.prefix)
        # the ids carry a fresh random token: absent from the table at any version, so the
        # store checks them only against rows committed since now (usually none), never
        # against the whole table
        absent_at = self._db.committed_version(run.record_path)
        self._db.add_records(
            run.record_path, table, "__log_id", skip_duplicates=True, absent_at=absent_at
        )


@dataclass
class _Pending:
    """The calls of one engine run not written yet."""

    run_id: str
    prefix: str  #: of their log ids
    batches: list[PacketBatch] = field(default_factory=list)
    calls: int = 0
    #: rows of earlier calls were added to the store's buffer (``batch_calls``), not committed
    unflushed: bool = False


def _traceback_of(error: BaseException | None) -> str | None:
    if error is None:
        return None
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def log_table(
    run: PacketRun, batches: list[PacketBatch], run_id: str, id_prefix: str | None = None
) -> pa.Table:
    """The log rows of the calls in ``batches`` (see the module docstring); ``__log_id`` is
    ``id_prefix`` (default ``"<run id>:"``) + the packet's key in the engine run.

    Built column-wise: the per-call lists of the batches are joined and converted once per
    column. The common case costs no list work per column beyond the keys and times: a
    batch whose calls all wrote nothing and raised nothing (``PacketBatch.quiet``, or its
    detail lists all None) adds nothing to the detail columns, which are all-null arrays
    when no batch has details; an outcome column that is all "computed", and the columns
    with one value per run (run id, label, hash, executor, host), are one value repeated,
    built straight from its bytes. String columns are built as ``pa.string()``, the stored
    type, so the store casts nothing."""
    keys: list[int] = []
    started: list[float] = []
    durations: list[float] = []
    for batch in batches:
        keys += batch.keys
        started += batch.started
        durations += batch.durations
    computed = PacketOutcome.COMPUTED
    outcomes: list[PacketOutcome] | None = None  # None: every call computed
    if any(b.outcomes.count(computed) != len(b) for b in batches):
        outcomes = [o for b in batches for o in b.outcomes]
    details = _details(batches)
    key_array = np.array(keys, dtype=np.int64)
    if len(key_array) > 1 and not (np.diff(key_array) > 0).all():
        # a call reported twice (computed, then an output the store could not hold): keep
        # its last report
        last = len(key_array) - 1 - np.unique(key_array[::-1], return_index=True)[1]
        if len(last) < len(key_array):
            keep = np.sort(last)
            key_array = key_array[keep]
            picked = keep.tolist()
            started, durations = ([c[i] for i in picked] for c in (started, durations))
            if outcomes is not None:
                outcomes = [outcomes[i] for i in picked]
            if details is not None:
                details = [[c[i] for i in picked] for c in details]
    n = len(key_array)
    described = run.describe(key_array)
    if outcomes is None:  # the usual case: one value
        outcome = _repeat(computed.value, n)
        failed = False
    else:
        outcome = pa.array(outcomes, _STRING)
        failed = PacketOutcome.FAILED in outcomes
    micros = np.round(np.array(started, dtype=np.float64) * 1_000_000.0).astype(np.int64)
    if details is None:  # no call wrote or raised anything
        nulls = pa.nulls(n, _STRING)
        stdout = stderr = logs = traces = nulls
        host = _repeat(_HOST, n)
    else:
        stdout, stderr, logs, traces = (_strings(c) for c in details[:4])
        host = pc.fill_null(_strings(details[4]), pa.scalar(_HOST, _STRING))
    columns = {
        "__log_id": pc.binary_join_element_wise(
            pa.scalar(id_prefix or f"{run_id}:", _STRING),
            pa.array(key_array).cast(_STRING),
            pa.scalar("", _STRING),
        ),
        "__run_id": _repeat(run_id, n),
        "__node_label": _repeat(run.label, n),
        "__node_hash": _repeat(run.node_hash, n),
        "__outcome": outcome,
        "__timestamp": pa.array(micros, pa.timestamp("us", tz="UTC")),
        "__duration": pa.array(np.array(durations, dtype=np.float64)),
        "__success": (
            pc.not_equal(outcome, pa.scalar(PacketOutcome.FAILED.value, _STRING))
            if failed
            else pa.array(np.ones(n, dtype=np.bool_))
        ),
        "__stdout": stdout,
        "__stderr": stderr,
        "__python_logs": logs,
        "__traceback": traces,
        "__executor_type": _repeat(run.executor_type, n),
        "__host": host,
    }
    return pa.Table.from_arrays(
        [*described.columns, *columns.values()], names=[*described.column_names, *columns]
    )


def _details(batches: list[PacketBatch]) -> list[list[str | None]] | None:
    """Per call of ``batches``: stdout, stderr, python logs, traceback (formatted from the
    error when none was captured) and host; None when no call has any of them."""
    if all(
        b.quiet
        or all(
            column.count(None) == len(column)
            for column in (b.errors, b.stdout, b.stderr, b.python_logs, b.tracebacks, b.hosts)
        )
        for b in batches
    ):
        return None
    stdout: list[str | None] = []
    stderr: list[str | None] = []
    logs: list[str | None] = []
    traces: list[str | None] = []
    hosts: list[str | None] = []
    for batch in batches:
        stdout += batch.stdout
        stderr += batch.stderr
        logs += batch.python_logs
        hosts += batch.hosts
        trace = batch.tracebacks
        if batch.errors.count(None) != len(batch.errors):  # an error without a traceback
            trace = [
                t if t is not None or e is None else _traceback_of(e)
                for t, e in zip(trace, batch.errors, strict=True)
            ]
        traces += trace
    return [stdout, stderr, logs, traces, hosts]


def _repeat(value: str, n: int) -> pa.Array:
    """``value`` ``n`` times, built from its bytes (no value object per row)."""
    data = value.encode()
    if n * len(data) >= 2**31:  # beyond 32-bit offsets
        return pa.repeat(pa.scalar(value, _STRING), n)
    offsets = np.arange(n + 1, dtype=np.int32) * np.int32(len(data))
    return pa.Array.from_buffers(_STRING, n, [None, pa.py_buffer(offsets), pa.py_buffer(data * n)])


def _strings(values: list[str | None]) -> pa.Array:
    """``values`` as a string column (all-null without building one value per row)."""
    if values.count(None) == len(values):
        return pa.nulls(len(values), _STRING)
    return pa.array(values, _STRING)
