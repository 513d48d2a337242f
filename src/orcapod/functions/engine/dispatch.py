"""Dispatch: the engine's one bounded window over an executor's calls.

``dispatch(items, start, window, executor)`` starts a call per ``(key, item)`` with
``start(item)`` (a ``Pending``, e.g. ``submit_call``), keeps at most ``window`` of them in
flight and yields each as ``(key, value, error)`` in input order (``error`` is None on
success), so a concurrent executor (threads, Ray) keeps every worker busy while results are
handed on in input order. The next item is taken first, then a place is waited for, then the
call is started: the window is never exceeded, and the end of the input is seen as soon as the
last call is started - an executor that batches calls is told then (its optional
``no_more_calls()``, e.g. ``RayExecutor``'s), so it can split the calls it still holds for a
balanced finish instead of waiting for more. When the consumer stops early (an error,
``close()``), the calls still in flight are cancelled where the executor allows.

``call_each`` is the callback form a node uses: each outcome goes to ``done(key, output)`` or
``failed(key, error)``; an exception from either (``fail_fast``) stops the loop. With a window
of 1 (a sequential executor) it calls the function on the thin path (no futures). There, a
caller that handles outputs in bulk passes ``done_many(keys, outputs)`` instead of per-row
callbacks: the outputs of consecutive successful calls are handed on together, at most
``BULK_ROWS`` at a time and at least every ``BULK_SECONDS`` (so a slow function's results are
handed on as promptly as one by one), and always before a failure is reported, so the order
of outcomes is kept.

Decision: only an ``Exception`` raised by the function is a row's failure. A
``KeyboardInterrupt`` or a ``SystemExit`` (``sys.exit`` called by the function) is not caught:
it stops the run and propagates unchanged - an exit request is obeyed, whatever the error
policy - after the outputs of the calls that finished before it are handed on (so the run's
final commit stores them). The run history records such a run as ``interrupted``
(``KeyboardInterrupt``) or ``error`` (``SystemExit``, with its message), with the counts of
what it stored (``orcapod.pipeline.run_recorder``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Generator, Iterable
from contextlib import closing
from typing import Any, TypeVar

from orcapod.data import Packet
from orcapod.executors.protocols import announce_last_call
from orcapod.functions.pending import Pending

__all__ = ["BULK_ROWS", "BULK_SECONDS", "call_each", "call_rows_in_bulk", "dispatch"]

K = TypeVar("K")
T = TypeVar("T")
R = TypeVar("R")

Done = Callable[[int, Any], None]
DoneMany = Callable[[list[int], list[Any]], None]
Failed = Callable[[int, Exception], None]

#: the most outputs ``call_each`` hands to ``done_many`` at once
BULK_ROWS = 1024
#: ... and the longest it holds finished outputs before handing them on
BULK_SECONDS = 0.05


def dispatch(
    items: Iterable[tuple[K, T]],
    start: Callable[[T], Pending[R]] | None,
    window: int,
    executor: object = None,
) -> Generator[tuple[K, R | None, Exception | None], None, None]:
    """Each call's ``(key, value, error)``, in input order (see the module docstring).

    ``start=None``: the items are ``Pending`` calls started as they are pulled (taking one
    may have effects, such as a cache lookup that must see the results collected before it),
    so a place is waited for BEFORE the next one is pulled.
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    in_flight: deque[tuple[Any, Pending[Any]]] = deque()
    pull = iter(items)
    try:
        while True:
            if start is None:
                while len(in_flight) >= window:
                    finished = _finish(in_flight.popleft())
                    yield finished
            item = next(pull, _END)
            if item is _END:
                break
            key, value = item
            if start is None:
                assert isinstance(value, Pending)
                in_flight.append((key, value))
                continue
            while len(in_flight) >= window:
                finished = _finish(in_flight.popleft())
                yield finished
            in_flight.append((key, start(value)))
        announce_last_call(executor)
        while in_flight:
            finished = _finish(in_flight.popleft())
            yield finished
    finally:
        for _, pending in in_flight:  # only left over when the consumer stopped early
            pending.cancel()


_END: Any = object()


def _finish(item: tuple[K, Pending[Any]]) -> tuple[K, Any, Exception | None]:
    key, pending = item
    try:
        return key, pending.result(), None
    except Exception as err:  # noqa: BLE001 - handed to the consumer with its key
        return key, None, err


def call_each(
    function: Any,
    keys: Iterable[int],
    packets: Iterable[Packet],
    window: int,
    done: Done,
    failed: Failed,
    call: Callable[..., Any] | None = None,
    begin: Callable[[int], Any] | None = None,
    done_many: DoneMany | None = None,
) -> None:
    """Call ``function`` (a packet function) on each packet; ``keys`` name them in the
    callbacks (see the module docstring). ``call``: what the thin path calls instead of
    ``function.call`` (e.g. its ``values_call()``, which gives output values, no packet).
    ``begin(key)``: called right before each call starts; what it returns (a packet logger,
    or None) is passed to the call as ``logger=``. ``done_many``: used instead of ``done`` on
    the thin path without ``begin``."""
    if window == 1:  # the thin path: one call at a time, no futures
        call_one = function.call if call is None else call
        if begin is None and done_many is not None:
            _call_in_bulk(call_one, keys, packets, done_many, failed)
            return
        if begin is None:
            for key, packet in zip(keys, packets, strict=True):
                try:
                    output = call_one(packet)
                except Exception as err:  # noqa: BLE001 - recorded; re-raised under fail_fast
                    failed(key, err)
                else:
                    done(key, output)
            return
        for key, packet in zip(keys, packets, strict=True):
            try:
                output = call_one(packet, logger=begin(key))
            except Exception as err:  # noqa: BLE001 - recorded; re-raised under fail_fast
                failed(key, err)
            else:
                done(key, output)
        return
    items = zip(keys, packets, strict=True)
    start: Callable[[tuple[int, Packet]], Pending[Any]]
    if begin is None:
        start = lambda item: function.submit_call(item[1])  # noqa: E731
    else:
        start = lambda item: function.submit_call(item[1], logger=begin(item[0]))  # noqa: E731
    keyed = ((key, (key, packet)) for key, packet in items)
    with closing(dispatch(keyed, start, window, function.executor)) as outcomes:
        for key, output, error in outcomes:
            if error is None:
                done(key, output)
            else:
                failed(key, error)


def call_rows_in_bulk(
    keys: Iterable[int],
    slices: Iterable[tuple[Callable[[int], Any], int]],
    done_many: DoneMany,
    failed: Failed,
) -> None:
    """The thin path for values kept column-wise: ``slices`` gives, per slice of the input,
    the call of one of its rows (by index) and its number of rows; ``keys`` name the rows of
    all slices in order. Outcomes are handed on as ``call_each`` does with ``done_many``."""
    bulk = _Bulk(done_many, failed)
    key_of = iter(keys)
    try:
        for call_row, n in slices:
            for row in range(n):
                key = next(key_of)
                try:
                    output = call_row(row)
                except Exception as err:  # noqa: BLE001 - recorded; re-raised under fail_fast
                    bulk.fail(key, err)
                    continue
                bulk.add(key, output)
    except BaseException as stop:  # an interrupt, an exit, fail_fast: keep what finished
        bulk.keep_finished(stop)
        raise
    bulk.hand_on()


def _call_in_bulk(
    call_one: Callable[[Packet], Any],
    keys: Iterable[int],
    packets: Iterable[Packet],
    done_many: DoneMany,
    failed: Failed,
) -> None:
    """The thin path handing outputs on in bulk (see the module docstring)."""
    bulk = _Bulk(done_many, failed)
    try:
        for key, packet in zip(keys, packets, strict=True):
            try:
                output = call_one(packet)
            except Exception as err:  # noqa: BLE001 - recorded; re-raised under fail_fast
                bulk.fail(key, err)
                continue
            bulk.add(key, output)
    except BaseException as stop:  # an interrupt, an exit, fail_fast: keep what finished
        bulk.keep_finished(stop)
        raise
    bulk.hand_on()


class _Bulk:
    """The outputs of consecutive successful calls, handed on together: at most
    ``BULK_ROWS`` at a time, at least every ``BULK_SECONDS``, and before a failure."""

    __slots__ = ("done_many", "failed", "keys", "outputs", "since")

    def __init__(self, done_many: DoneMany, failed: Failed) -> None:
        self.done_many, self.failed = done_many, failed
        self.keys: list[int] = []
        self.outputs: list[Any] = []
        self.since = time.monotonic()

    def add(self, key: int, output: Any) -> None:
        self.keys.append(key)
        self.outputs.append(output)
        if len(self.outputs) >= BULK_ROWS or time.monotonic() - self.since >= BULK_SECONDS:
            self.hand_on()

    def fail(self, key: int, err: Exception) -> None:
        self.hand_on()
        self.failed(key, err)

    def keep_finished(self, stop: BaseException) -> None:
        """Hand on the finished outputs while ``stop`` ends the calls; ``stop`` is what
        propagates: a failure to hand them on is noted on it, never raised instead of it."""
        held = len(self.outputs)
        try:
            self.hand_on()
        except Exception as err:  # noqa: BLE001 - noted; the stopping exception goes on
            stop.add_note(f"{held} finished output(s) could not be kept: {err!r}")

    def hand_on(self) -> None:
        if self.outputs:
            keys, outputs, self.keys, self.outputs = self.keys, self.outputs, [], []
            self.done_many(keys, outputs)
        self.since = time.monotonic()
