"""``call_each``: windowed calls, outcomes in order, and the end-of-calls hint to the executor."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from orcapod.data import Packet
from orcapod.errors import ExecutionError
from orcapod.executors import LocalExecutor
from orcapod.functions import PythonPacketFunction
from orcapod.functions.engine import dispatch
from orcapod.functions.engine.dispatch import call_each


def double(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return 2 * x


def _run(executor: Any, window: int, xs: list[int]) -> tuple[list[Any], list[str]]:
    pf = PythonPacketFunction(double, "y")
    pf.set_executor(executor)
    outcomes: list[Any] = []

    def done(key: int, output: Packet | None) -> None:
        assert output is not None
        outcomes.append((key, output["y"]))
        log.append(f"done {key}")

    def failed(key: int, err: Exception) -> None:
        outcomes.append((key, type(err).__name__))
        log.append(f"failed {key}")

    log: list[str] = getattr(executor, "log", [])
    call_each(pf, xs, [Packet({"x": x}) for x in xs], window, done, failed)
    return outcomes, log


def test_outcomes_come_in_submission_order_with_a_window() -> None:
    xs = [5, 3, 1, 4, 2, 0]
    expected = [(x, "ValueError" if x == 3 else 2 * x) for x in xs]
    for executor, window in ((LocalExecutor(), 1), (LocalExecutor(max_workers=3), 2)):
        outcomes, _ = _run(executor, window, xs)
        assert outcomes == expected


def test_the_executor_hears_of_the_last_call_as_soon_as_it_is_submitted(
    hinted_executor: Callable[[int], Any],
) -> None:
    outcomes, log = _run(hinted_executor(2), 2, [0, 1, 2, 3])
    assert [key for key, _ in outcomes] == [0, 1, 2, 3]
    # never more than 2 in flight, and the hint right after the last submission: before the
    # results still in flight are collected
    assert log == [
        "submit 0",
        "submit 1",
        "done 0",
        "submit 2",
        "done 1",
        "submit 3",
        "no more calls",
        "done 2",
        "failed 3",
    ]


def test_fail_fast_stops_submitting_and_cancels_what_is_in_flight(
    hinted_executor: Callable[[int], Any],
) -> None:
    executor = hinted_executor(1)
    pf = PythonPacketFunction(double, "y")
    pf.set_executor(executor)

    def failed(key: int, err: Exception) -> None:
        raise ExecutionError(f"row {key} failed") from err

    with pytest.raises(ExecutionError, match="row 3"):
        call_each(
            pf, [3, 4, 5], [Packet({"x": x}) for x in (3, 4, 5)], 2, lambda k, o: None, failed
        )
    assert "submit 5" not in executor.log and "no more calls" not in executor.log


def _bulk(xs: list[int], call_one: Callable[[Packet], Any]) -> tuple[list[Any], list[int]]:
    """``call_each`` on the thin path with ``done_many``: outcomes, and the bulk sizes."""
    pf = PythonPacketFunction(double, "y")
    outcomes: list[Any] = []
    sizes: list[int] = []

    def done_many(keys: list[int], outputs: list[Any]) -> None:
        sizes.append(len(keys))
        outcomes.extend(zip(keys, [o["y"] for o in outputs], strict=True))

    def failed(key: int, err: Exception) -> None:
        outcomes.append((key, type(err).__name__))

    def done(key: int, output: Any) -> None:
        raise AssertionError("outputs go to done_many")

    packets = [Packet({"x": x}) for x in xs]
    call_each(pf, xs, packets, 1, done, failed, call=call_one, done_many=done_many)
    return outcomes, sizes


def test_outputs_handed_on_in_bulk_keep_their_order_around_failures() -> None:
    pf = PythonPacketFunction(double, "y")
    xs = list(range(dispatch.BULK_ROWS + 10))
    outcomes, sizes = _bulk(xs, pf.call)
    assert outcomes == [(x, "ValueError" if x == 3 else 2 * x) for x in xs]
    # the outputs before the failure are handed on before it; no bulk exceeds BULK_ROWS
    assert sizes[0] == 3 and max(sizes) <= dispatch.BULK_ROWS and sum(sizes) == len(xs) - 1


def test_a_slow_functions_outputs_are_handed_on_one_by_one() -> None:
    pf = PythonPacketFunction(double, "y")

    def slow(packet: Packet) -> Any:
        time.sleep(dispatch.BULK_SECONDS * 1.2)
        return pf.call(packet)

    outcomes, sizes = _bulk([1, 2, 4], slow)
    assert outcomes == [(1, 2), (2, 4), (4, 8)]
    assert sizes == [1, 1, 1]  # none waits for the next call to finish
