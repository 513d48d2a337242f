"""Packet events: what one run of a function node tells an observer about its rows.

A ``PacketObserver`` hears, for one node run (described by a ``PacketRun``):

* ``on_packets_start(run)``: the run starts; ``run.total`` input rows will be settled;
* ``on_packets_settled(run, outcome, rows)``: ``rows`` rows settled without a call, in bulk
  (``REUSED``: a recorded entry or a result-cache hit; ``FILTERED``: a stored ``None``);
* ``on_packet_start(run, key)``: a call of the function starts for the packet ``key``;
* ``on_packets_end(run, batch)``: calls that ended (``COMPUTED``, ``FILTERED`` or ``FAILED``),
  handed over in batches (a ``PacketBatch``: per call its key, outcome, rows settled, start
  time, duration, error and captured output);
* ``on_packets_done(run)``: the run is over (every batch was handed over).

An observer may also have ``on_packets_commit(run)`` (optional: looked up by name, so an
observer without it is still a ``PacketObserver``): the run is about to commit the results
of every call handed over so far (the engine hands its ended calls over first). It may
return a callable, which runs once that commit has landed - in the thread that commits,
which may not be the node's - to store what it keeps of those calls (the logs table is
written so: a killed run loses at most the logs of the results it loses too); at most once
per commit, so on the results' cadence (the node's ``FlushPolicy``).

``captures_output``: when True each call's stdout, stderr, log records and traceback are
captured and the batch carries them (``PacketBatch.stdout``, ``stderr``, ``python_logs``,
``tracebacks``, ``hosts``): calls the engine runs one by one in its own thread are captured
around each call by one capture kept in place for the run (``reporter.PacketReporter``);
every other call gets a packet logger, so the executor captures it where it runs (the
worker, for Ray). ``PacketBatch.quiet`` says no call of a batch failed or wrote anything.

Decisions:

* Cost. Rows that need no call are reported as counts, never one Python call per row, and
  ended calls in batches (at most ``reporter.BATCH_CALLS`` calls or ``BATCH_SECONDS`` old, at the
  end; ``reporter.PacketReporter`` hands them over), so an observer costs a few list appends
  per call. Only ``on_packet_start`` is a call
  per packet (it is what a live display needs); an observer that ignores it says so with an
  optional ``hears_packet_start = False`` (``NoOpObserver`` works it out), and then it is not
  called at all - and calls run one by one in the engine's thread need no per-call report
  either: ``reporter.PacketReporter.timed`` wraps the function so each call is timed (and captured)
  where it runs, and the engine reports the calls that returned in bulk (``end_many``) when
  it hands their outputs on in bulk; a call that raises is reported on its own (``end``).
* A packet is the distinct input packet of one call: the same packet under several tags is
  one call settling several rows (``rows``); ``run.describe(keys)`` gives, per key, the tags
  of the first row that asked for it and its input packet hash.
* Failure is an outcome (``FAILED``, with the error), not a separate hook.
* The observer reaches the engine through a context variable (``observing(observer)``,
  read by the node run when it starts), like the recording hook of pipelines: nodes keep one
  ``run()`` signature and an orchestrator sets it around each node it runs. Every hook is
  called from the thread that runs the node (the callable ``on_packets_commit`` returns runs
  in the thread that commits); an exception from a hook propagates (a broken observer is a
  bug to fix, not to hide).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np
import pyarrow as pa

__all__ = [
    "PacketBatch",
    "PacketObserver",
    "PacketOutcome",
    "PacketRun",
    "current_observer",
    "observing",
]


class PacketOutcome(StrEnum):
    """What happened to a packet (or a row) in one run."""

    COMPUTED = "computed"
    REUSED = "reused"
    FILTERED = "filtered"
    FAILED = "failed"


@dataclass(frozen=True)
class PacketRun:
    """One run of a function node, as its observer sees it."""

    label: str
    node_hash: str  #: the node's pipeline hash (schema and topology)
    record_path: tuple[str, ...]  #: where the node's pipeline records are stored
    total: int  #: input rows this run settles
    executor_type: str  #: the executor's type id ("local", "ray"), "none" without one
    #: per packet key: user tag columns of its first row and ``__input_packet_hash`` (one row
    #: per key, in the order given)
    describe: Callable[[Sequence[int] | np.ndarray], pa.Table] = field(repr=False)


@dataclass
class PacketBatch:
    """Calls that ended, column-wise (parallel lists, one item per call).

    The captured output is kept as its plain string fields (None where nothing was
    captured or written), not as one object per call: a batch of a long run then holds no
    objects the garbage collector has to walk."""

    keys: list[int] = field(default_factory=list)
    outcomes: list[PacketOutcome] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  #: input rows the call settled
    started: list[float] = field(default_factory=list)  #: epoch seconds
    durations: list[float] = field(default_factory=list)  #: seconds
    errors: list[BaseException | None] = field(default_factory=list)
    stdout: list[str | None] = field(default_factory=list)
    stderr: list[str | None] = field(default_factory=list)
    python_logs: list[str | None] = field(default_factory=list)
    tracebacks: list[str | None] = field(default_factory=list)  #: as captured (None: none)
    hosts: list[str | None] = field(default_factory=list)  #: where the call ran, if captured
    #: True when no call of the batch failed or had anything captured (every item of
    #: ``errors`` .. ``hosts`` is None): a reader can skip those lists
    quiet: bool = False

    def __len__(self) -> int:
        return len(self.keys)

    def rows_with(self, outcome: PacketOutcome) -> int:
        """Input rows settled with ``outcome`` by the calls of this batch."""
        if self.rows.count(1) == len(self.rows):  # one row per call (the usual case)
            return self.outcomes.count(outcome)
        return sum(r for r, o in zip(self.rows, self.outcomes, strict=True) if o is outcome)

    def rows_by_outcome(self) -> dict[PacketOutcome, int]:
        """Input rows settled by the calls of this batch, per outcome (those with any)."""
        counts = {o: self.rows_with(o) for o in _ENDED}
        return {o: n for o, n in counts.items() if n}


@runtime_checkable
class PacketObserver(Protocol):
    """Hears what happens to the packets of function node runs (see the module docstring)."""

    @property
    def captures_output(self) -> bool: ...

    def on_packets_start(self, run: PacketRun) -> None: ...

    def on_packets_settled(self, run: PacketRun, outcome: PacketOutcome, rows: int) -> None: ...

    def on_packet_start(self, run: PacketRun, key: int) -> None: ...

    def on_packets_end(self, run: PacketRun, batch: PacketBatch) -> None: ...

    def on_packets_done(self, run: PacketRun) -> None: ...


_ENDED = (PacketOutcome.COMPUTED, PacketOutcome.FILTERED, PacketOutcome.FAILED)

_OBSERVER: ContextVar[PacketObserver | None] = ContextVar("orcapod_packet_observer", default=None)


def current_observer() -> PacketObserver | None:
    """The packet observer of the current context (None: nobody listens)."""
    return _OBSERVER.get()


@contextmanager
def observing(observer: PacketObserver | None) -> Iterator[None]:
    """Node runs started inside the block report their packets to ``observer``."""
    token = _OBSERVER.set(observer)
    try:
        yield
    finally:
        _OBSERVER.reset(token)
