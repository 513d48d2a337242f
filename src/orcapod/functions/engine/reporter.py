"""``PacketReporter``: how one engine run reports its packets to a ``PacketObserver``.

The events and the observer protocol are in ``orcapod.functions.engine.events``; this module
is the engine's side of them: it tells the observer a run started, hands it rows settled
without a call as counts, and collects ended calls (their outcome, times, errors and
captured output, ``CallLog``) into ``PacketBatch`` es handed over at least every
``BATCH_CALLS`` calls or ``BATCH_SECONDS`` seconds and at the end. Calls the engine runs one
by one in its own thread are captured by one ``OutputCapture`` kept in place for the run
(``capture_here``) or timed (and captured) where they run by ``timed``, and reported in bulk
(``end_many``); other calls get a packet logger so the executor captures them where they run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from orcapod.executors.capture import HOST, CapturedOutput, OutputCapture, format_traceback
from orcapod.functions.engine.events import (
    PacketBatch,
    PacketObserver,
    PacketOutcome,
    PacketRun,
)

__all__ = ["BATCH_CALLS", "BATCH_SECONDS", "CallLog", "PacketReporter"]

_clock = time.perf_counter


#: ended calls are handed to the observer at least every this many calls ...
BATCH_CALLS = 1024
#: ... or once the oldest of them waited this long (seconds)
BATCH_SECONDS = 0.2


class CallLog:
    """The packet logger of one call: keeps its capture for the engine to hand on."""

    __slots__ = ("captured",)

    def __init__(self) -> None:
        self.captured: CapturedOutput | None = None

    def record(self, captured: CapturedOutput) -> None:
        self.captured = captured


class PacketReporter:
    """The engine's side of the events of one run: keeps the calls in flight, batches the
    ended ones and hands them to ``observer`` (see the module docstring).

    Ended calls are kept column-wise (a list per field, appended per call); what only some
    calls have (an error, captured output) is kept by position, for those calls only, so a
    silent call costs a few appends."""

    def __init__(self, observer: PacketObserver, run: PacketRun) -> None:
        self.observer = observer
        self.run = run
        self._capture = bool(observer.captures_output)
        # an observer may say it ignores each call's start (``hears_packet_start = False``)
        self._on_start = (
            observer.on_packet_start if getattr(observer, "hears_packet_start", True) else None
        )
        self._in_flight: dict[int, tuple[float, CallLog | None]] = {}
        #: calls run one by one in this thread (``capture_here``) ...
        self._one_by_one = False
        #: ... captured here, by one capture for the run (None: not captured here)
        self._here: OutputCapture | None = None
        self._here_key = -1  # the call running one by one (-1: none) ...
        self._here_started = 0.0  # ... and when it started (perf_counter)
        # calls run through ``timed`` whose end is not reported yet, oldest first: start
        # (perf_counter) and duration; what they wrote, by call number (``_timed_front``:
        # the number of the oldest)
        self._timed_started: list[float] = []
        self._timed_durations: list[float] = []
        self._timed_output: dict[int, tuple[str | None, str | None, str | None]] = {}
        self._timed_front = 0
        # ended calls not handed over yet (``PacketBatch`` fields, column-wise)
        self._keys: list[int] = []
        self._outcomes: list[PacketOutcome] = []
        self._rows: list[int] = []
        self._started: list[float] = []
        self._durations: list[float] = []
        #: position in the columns -> (error, stdout, stderr, python logs, traceback, host)
        self._details: dict[int, tuple[Any, ...]] = {}
        self._oldest = 0.0
        # epoch time of a perf_counter reading, without a clock call per packet
        self._epoch = time.time() - time.perf_counter()
        #: the observer's optional ``on_packets_commit`` hook (``events``)
        self._on_commit: Callable[[PacketRun], Callable[[], None] | None] | None = getattr(
            observer, "on_packets_commit", None
        )
        observer.on_packets_start(run)

    @property
    def captures(self) -> bool:
        """True when the observer wants each call's output captured."""
        return self._capture

    def capture_here(self, on: bool) -> None:
        """The calls run one by one in this thread (``begin`` .. ``end``, no executor or an
        in-process one with a window of 1): the call in flight is kept in one slot, not a
        dict entry per call, and, when the observer captures, output is captured around each
        call by one capture object for the whole run instead of a logger handed to the
        executor per call (the same capture at a fraction of the cost)."""
        self._here = None
        self._one_by_one = on
        if on and self._capture:
            here = OutputCapture()
            here.active = False  # on only around each call (``begin`` .. ``end``)
            here.resume()
            self._here = here

    def release(self) -> None:
        """Take out the capture of ``capture_here`` (also after a call that never ended);
        call it in the thread that called ``capture_here``."""
        here, self._here = self._here, None
        if here is not None:
            here.active = False
            here.pause()
        self._one_by_one = False
        self._here_key = -1
        self._in_flight.clear()
        self._timed_front += len(self._timed_started)
        self._timed_started.clear()
        self._timed_durations.clear()
        self._timed_output.clear()

    def timed(self, call: Callable[[Any], Any]) -> Callable[[Any], Any] | None:
        """For calls run one by one in this thread (after ``capture_here(True)``) whose ends
        are reported in bulk (``end_many``): ``call``, timed, and captured when the observer
        captures. None when each call must be reported on its own (the observer hears each
        call's start, or the calls do not run one by one here).

        A call that raises is reported with ``end`` right after it (its time and output
        are those ``timed`` took); calls that returned are reported with ``end_many``, in
        the order they ran."""
        if self._on_start is not None or not self._one_by_one:
            return None
        here = self._here
        started = self._timed_started
        durations = self._timed_durations
        clock = _clock
        if here is None:

            def timed_call(packet: Any) -> Any:
                begun = clock()
                try:
                    return call(packet)
                finally:
                    started.append(begun)
                    durations.append(clock() - begun)

            return timed_call
        output = self._timed_output

        def captured_call(packet: Any) -> Any:
            here.active = True
            begun = clock()
            try:
                return call(packet)
            finally:
                ended = clock()
                here.active = False
                started.append(begun)
                durations.append(ended - begun)
                if here.stdout is not None or here.stderr is not None or here.logs is not None:
                    output[self._timed_front + len(started) - 1] = here.take()

        return captured_call

    def end_many(self, keys: list[int], outputs: Sequence[object], rows: Sequence[int]) -> None:
        """The oldest ``len(keys)`` calls run through ``timed`` returned: per call its packet
        key and output (None: filtered); ``rows[key]``: the input rows a packet settles."""
        n = len(keys)
        if not n:
            return
        started, durations = self._timed_started, self._timed_durations
        if len(started) < n:
            raise RuntimeError(
                f"{n} timed calls reported ended but only {len(started)} ran through "
                "PacketReporter.timed; report each call with end() instead"
            )
        at = len(self._keys)
        if not at:
            self._oldest = _clock()
        epoch = self._epoch
        self._keys += keys
        computed, filtered = PacketOutcome.COMPUTED, PacketOutcome.FILTERED
        self._outcomes += [filtered if o is None else computed for o in outputs]
        self._rows += [rows[k] for k in keys]
        self._started += [epoch + t for t in started[:n]]
        self._durations += durations[:n]
        front = self._timed_front
        output = self._timed_output
        if output:
            for number in [c for c in output if c < front + n]:
                out, err, logs = output.pop(number)
                self._details[at + number - front] = (None, out, err, logs, None, HOST)
        del started[:n], durations[:n]
        self._timed_front = front + n
        if len(self._keys) >= BATCH_CALLS or _clock() - self._oldest >= BATCH_SECONDS:
            self.flush()

    def begin(self, key: int) -> CallLog | None:
        """A call of packet ``key`` starts; returns the logger to pass to it (or None)."""
        on_start = self._on_start
        if on_start is not None:
            on_start(self.run, key)
        here = self._here
        if here is not None or self._one_by_one:
            if here is not None:
                here.active = True
            self._here_key = key
            self._here_started = _clock()
            return None
        log = CallLog() if self._capture else None
        self._in_flight[key] = (_clock(), log)
        return log

    def end(
        self, key: int, outcome: PacketOutcome, rows: int, error: BaseException | None = None
    ) -> None:
        """The call of packet ``key`` ended with ``outcome``, settling ``rows`` input rows."""
        now = _clock()
        keys = self._keys
        if not keys:
            self._oldest = now
        here = self._here
        if self._timed_started:  # a call run through ``timed`` that raised
            started = self._timed_started.pop(0)
            duration = self._timed_durations.pop(0)
            out, err, logs = self._timed_output.pop(self._timed_front, (None, None, None))
            self._timed_front += 1
            if here is None:  # not captured: the error only
                if error is not None:
                    self._details[len(keys)] = (error, None, None, None, None, None)
            elif error is not None or out is not None or err is not None or logs is not None:
                trace = None if error is None else format_traceback(error)
                self._details[len(keys)] = (error, out, err, logs, trace, HOST)
        elif here is not None or self._one_by_one:
            if key == self._here_key:
                started = self._here_started
                self._here_key = -1
            else:  # reported after its call (an output the store could not hold)
                started = now
            duration = now - started
            if here is not None:
                here.active = False
                if error is not None or here.stdout or here.stderr or here.logs:
                    out, err, logs = here.take()
                    trace = None if error is None else format_traceback(error)
                    self._details[len(keys)] = (error, out, err, logs, trace, HOST)
            elif error is not None:
                self._details[len(keys)] = (error, None, None, None, None, None)
        else:
            entry = self._in_flight.pop(key, None)
            started, log = (now, None) if entry is None else entry
            duration = now - started
            if log is not None and log.captured is not None:
                c = log.captured
                duration = c.duration
                self._details[len(keys)] = (
                    error,
                    c.stdout or None,
                    c.stderr or None,
                    c.python_logs or None,
                    c.traceback,
                    c.host,
                )
            elif error is not None:
                self._details[len(keys)] = (error, None, None, None, None, None)
        keys.append(key)
        self._outcomes.append(outcome)
        self._rows.append(rows)
        self._started.append(self._epoch + started)
        self._durations.append(duration)
        if len(keys) >= BATCH_CALLS or now - self._oldest >= BATCH_SECONDS:
            self.flush()

    def settled(self, outcome: PacketOutcome, rows: int) -> None:
        """``rows`` rows settled without a call (in bulk)."""
        if rows:
            self.observer.on_packets_settled(self.run, outcome, int(rows))

    def flush(self) -> None:
        """Hand the ended calls batched so far to the observer."""
        keys = self._keys
        if not keys:
            return
        n = len(keys)
        details = self._details
        sparse: list[list[Any]] = [[None] * n for _ in range(6)]
        for at, values in details.items():
            for column, value in zip(sparse, values, strict=True):
                column[at] = value
        errors, stdout, stderr, python_logs, tracebacks, hosts = sparse
        batch = PacketBatch(
            keys,
            self._outcomes,
            self._rows,
            self._started,
            self._durations,
            errors,
            stdout,
            stderr,
            python_logs,
            tracebacks,
            hosts,
            quiet=not details,
        )
        self._keys, self._outcomes, self._rows, self._started, self._durations = (
            [],
            [],
            [],
            [],
            [],
        )
        self._details = {}
        self.observer.on_packets_end(self.run, batch)

    def committing(self) -> Callable[[], None] | None:
        """The run hands its buffered rows over to a commit: hand the ended calls batched so
        far to the observer and tell it (``on_packets_commit``); what it returns is to run
        once that commit has landed."""
        self.flush()
        return None if self._on_commit is None else self._on_commit(self.run)

    def close(self) -> None:
        """The run is over: the last batch, then ``on_packets_done``."""
        self.flush()
        self.observer.on_packets_done(self.run)
