"""``call_each``: a node's calls of its packet function on the packets it must compute.

With a window of 1 (a synchronous executor) the calls run one by one on the thin path (no
futures). Otherwise up to ``window`` calls are in flight (``submit_call``): a new call is
submitted as soon as the oldest finishes, so a concurrent executor (threads, Ray) keeps every
worker busy while finished results are handed on in submission order. Right after the last call
is submitted, an executor that batches calls is told so (its optional ``no_more_calls()``, e.g.
``RayExecutor``'s), so it can split the calls it still holds for a balanced finish instead of
waiting for more. Each outcome goes to
``done(key, output)`` or ``failed(key, error)``; an exception either raises (``fail_fast``)
stops the loop and cancels the calls still in flight.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from orcapod.data import Packet
from orcapod.executors.protocols import announce_last_call
from orcapod.functions.pending import Pending

__all__ = ["call_each"]

Done = Callable[[int, Packet | None], None]
Failed = Callable[[int, Exception], None]


def call_each(
    function: Any,
    keys: Iterable[int],
    packets: Iterable[Packet],
    window: int,
    done: Done,
    failed: Failed,
) -> None:
    """Call ``function`` (a packet function) on each packet; ``keys`` name them in the
    callbacks (see the module docstring)."""
    if window == 1:  # the thin path: one call at a time, no futures
        for key, packet in zip(keys, packets, strict=True):
            try:
                output = function.call(packet)
            except Exception as err:  # noqa: BLE001 - recorded; re-raised under fail_fast
                failed(key, err)
            else:
                done(key, output)
        return
    in_flight: deque[tuple[int, Pending[Packet | None]]] = deque()
    try:
        for key, packet in zip(keys, packets, strict=True):
            # wait for a free place BEFORE taking the next packet, so the loop ends (and the
            # executor hears of it) as soon as the last call is submitted
            while len(in_flight) >= window:
                _finish(in_flight.popleft(), done, failed)
            in_flight.append((key, function.submit_call(packet)))
        announce_last_call(function.executor)
        while in_flight:
            _finish(in_flight.popleft(), done, failed)
    finally:
        for _, pending in in_flight:  # only left over after an error
            pending.cancel()


def _finish(item: tuple[int, Pending[Packet | None]], done: Done, failed: Failed) -> None:
    key, pending = item
    try:
        output = pending.result()
    except Exception as err:  # noqa: BLE001 - recorded; re-raised under fail_fast
        failed(key, err)
    else:
        done(key, output)
