"""LocalExecutor: sync and async callables, running event loops, capture, original exceptions."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from orcapod.errors import ExecutorError
from orcapod.executors import LocalExecutor
from orcapod.functions import function_pod
from orcapod.nodes import FunctionNode
from orcapod.sources import DictSource

log = logging.getLogger("orcapod.tests.local")


class UserError(Exception):
    pass


def add(a: int, b: int = 10) -> int:
    return a + b


async def async_add(a: int, b: int = 10) -> int:
    await asyncio.sleep(0.001)
    return a + b


def chatty(x: int) -> int:
    print(f"stdout {x}")
    print(f"stderr {x}", file=sys.stderr)
    log.warning("log %d", x)
    return x * 2


async def async_chatty(x: int) -> int:
    print(f"stdout {x}")
    await asyncio.sleep(0.001)
    log.error("log %d", x)
    return x * 3


async def slow_interval(seconds: float) -> tuple[float, float]:
    start = time.monotonic()
    await asyncio.sleep(seconds)
    return start, time.monotonic()


def sync_slow_interval(seconds: float) -> tuple[float, float]:
    start = time.monotonic()
    time.sleep(seconds)
    return start, time.monotonic()


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


# -- results -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [add, async_add], ids=["sync", "async"])
def test_execute_callable_returns_the_raw_result(fn: Callable[..., Any]) -> None:
    assert LocalExecutor().execute_callable(fn, {"a": 1}) == 11
    assert LocalExecutor().execute_callable(fn, {"a": 1, "b": 2}) == 3


@pytest.mark.parametrize("fn", [add, async_add], ids=["sync", "async"])
def test_async_execute_callable_returns_the_raw_result(fn: Callable[..., Any]) -> None:
    async def main() -> Any:
        return await LocalExecutor().async_execute_callable(fn, {"a": 5})

    assert asyncio.run(main()) == 15


def test_execute_callable_of_async_fn_inside_a_running_loop_does_not_deadlock() -> None:
    async def main() -> int:
        # a sync call from inside a coroutine, as in a Jupyter cell
        return LocalExecutor().execute_callable(async_add, {"a": 2})

    assert asyncio.run(main()) == 12


def test_nested_async_calls_inside_running_loops_do_not_deadlock() -> None:
    executor = LocalExecutor()

    async def outer(depth: int) -> int:
        if depth == 0:
            return 0
        await asyncio.sleep(0)
        return 1 + executor.execute_callable(outer, {"depth": depth - 1})

    async def main() -> int:
        return executor.execute_callable(outer, {"depth": 5})

    assert asyncio.run(main()) == 5


def test_calls_from_two_running_loops_overlap_in_time() -> None:
    # two threads, each with a running event loop, each calling execute_callable on a slow
    # async function: the calls must run side by side, not through one shared bridge thread
    executor = LocalExecutor()
    intervals: list[tuple[float, float]] = []
    start = threading.Barrier(2)

    def thread_main() -> None:
        async def in_loop() -> None:
            start.wait()
            intervals.append(executor.execute_callable(slow_interval, {"seconds": 0.3}))

        asyncio.run(in_loop())

    threads = [threading.Thread(target=thread_main) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(intervals) == 2
    assert _overlap(intervals[0], intervals[1])


def test_async_execute_runs_sync_functions_off_the_event_loop() -> None:
    # the sync function waits for an event only the event loop can set: if the function
    # blocked the loop, the event would never be set
    loop_ran = threading.Event()

    def waits_for_loop() -> bool:
        return loop_ran.wait(5)

    async def set_event() -> None:
        await asyncio.sleep(0.01)
        loop_ran.set()

    async def main() -> list[Any]:
        return await asyncio.gather(
            LocalExecutor().async_execute_callable(waits_for_loop, {}), set_event()
        )

    assert asyncio.run(main())[0] is True


@pytest.mark.parametrize("executor", [LocalExecutor(), LocalExecutor(max_workers=2)], ids=repr)
def test_async_execute_of_sync_functions_runs_concurrently(executor: LocalExecutor) -> None:
    async def main() -> list[tuple[float, float]]:
        return await asyncio.gather(
            executor.async_execute_callable(sync_slow_interval, {"seconds": 0.2}),
            executor.async_execute_callable(sync_slow_interval, {"seconds": 0.2}),
        )

    first, second = asyncio.run(main())
    assert _overlap(first, second)


def test_submit_with_a_pool_runs_calls_concurrently_and_in_order() -> None:
    executor = LocalExecutor(max_workers=3)
    futures = [executor.submit_callable(sync_slow_interval, {"seconds": 0.2}) for _ in range(3)]
    intervals = [f.result(timeout=10) for f in futures]
    assert _overlap(intervals[0], intervals[1])
    assert _overlap(intervals[1], intervals[2])


def test_sequential_submit_completes_before_returning() -> None:
    future = LocalExecutor().submit_callable(add, {"a": 1})
    assert future.done()
    assert future.result() == 11


# -- exceptions --------------------------------------------------------------------------------


def _raises(message: str) -> None:
    raise UserError(message)


async def _async_raises(message: str) -> None:
    await asyncio.sleep(0)
    raise UserError(message)


def _failing(kind: str, errors: list[BaseException]) -> Callable[..., Any]:
    """A sync or async function that raises a UserError and keeps the object it raised."""

    def fail(message: str) -> None:
        errors.append(UserError(message))
        raise errors[-1]

    async def async_fail(message: str) -> None:
        await asyncio.sleep(0)
        errors.append(UserError(message))
        raise errors[-1]

    return fail if kind == "sync" else async_fail


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("with_logger", [False, True], ids=["no-logger", "logger"])
def test_original_exception_object_is_re_raised(
    kind: str, with_logger: bool, packet_logger: Any
) -> None:
    errors: list[BaseException] = []
    fn = _failing(kind, errors)
    logger = packet_logger if with_logger else None
    with pytest.raises(UserError, match="bad input") as info:
        LocalExecutor().execute_callable(fn, {"message": "bad input"}, logger=logger)
    assert info.value is errors[0]
    assert type(info.value) is UserError


def test_original_exception_from_async_call_inside_running_loop() -> None:
    errors: list[BaseException] = []

    async def fail() -> None:
        err = UserError("inside loop")
        errors.append(err)
        raise err

    async def main() -> None:
        LocalExecutor().execute_callable(fail, {})

    with pytest.raises(UserError) as info:
        asyncio.run(main())
    assert info.value is errors[0]


@pytest.mark.parametrize("fn", [_raises, _async_raises], ids=["sync", "async"])
def test_async_execute_re_raises_original_exception(
    fn: Callable[..., Any], packet_logger: Any
) -> None:
    async def main() -> None:
        await LocalExecutor().async_execute_callable(
            fn, {"message": "async bad"}, logger=packet_logger
        )

    with pytest.raises(UserError, match="async bad"):
        asyncio.run(main())
    assert not packet_logger.only.success
    assert "UserError: async bad" in packet_logger.only.traceback


def test_submit_delivers_the_original_exception_through_the_future() -> None:
    errors: list[BaseException] = []

    def fail() -> None:
        err = UserError("in future")
        errors.append(err)
        raise err

    for executor in (LocalExecutor(), LocalExecutor(max_workers=2)):
        future = executor.submit_callable(fail, {})
        assert future.exception(timeout=10) is errors[-1]


# -- capture -----------------------------------------------------------------------------------


def test_capture_is_handed_to_the_logger_on_success(
    packet_logger: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert LocalExecutor().execute_callable(chatty, {"x": 4}, logger=packet_logger) == 8
    captured = packet_logger.only
    assert captured.stdout == "stdout 4\n"
    assert captured.stderr == "stderr 4\n"
    assert captured.python_logs == "WARNING:orcapod.tests.local:log 4"
    assert captured.success
    assert captured.traceback is None
    assert "stdout 4" not in capsys.readouterr().out


def test_capture_is_handed_to_the_logger_on_failure_then_error_raised(packet_logger: Any) -> None:
    def noisy_failure() -> None:
        print("about to fail")
        log.error("failing now")
        raise UserError("noisy")

    with pytest.raises(UserError, match="noisy"):
        LocalExecutor().execute_callable(noisy_failure, {}, logger=packet_logger)
    captured = packet_logger.only
    assert not captured.success
    assert captured.stdout == "about to fail\n"
    assert captured.python_logs == "ERROR:orcapod.tests.local:failing now"
    assert "UserError: noisy" in captured.traceback
    assert "noisy_failure" in captured.traceback


@pytest.mark.parametrize("inside_loop", [False, True], ids=["no-loop", "running-loop"])
def test_capture_of_async_fn_via_execute_callable(packet_logger: Any, inside_loop: bool) -> None:
    executor = LocalExecutor()
    if inside_loop:

        async def main() -> int:
            return executor.execute_callable(async_chatty, {"x": 2}, logger=packet_logger)

        result = asyncio.run(main())
    else:
        result = executor.execute_callable(async_chatty, {"x": 2}, logger=packet_logger)
    assert result == 6
    assert packet_logger.only.stdout == "stdout 2\n"
    assert packet_logger.only.python_logs == "ERROR:orcapod.tests.local:log 2"


@pytest.mark.parametrize("fn", [chatty, async_chatty], ids=["sync", "async"])
def test_capture_via_async_execute_callable(fn: Callable[..., Any], packet_logger: Any) -> None:
    async def main() -> Any:
        return await LocalExecutor().async_execute_callable(fn, {"x": 1}, logger=packet_logger)

    asyncio.run(main())
    assert packet_logger.only.stdout == "stdout 1\n"
    assert packet_logger.only.python_logs.endswith("log 1")


def test_without_logger_output_goes_to_the_real_streams(capsys: pytest.CaptureFixture[str]) -> None:
    LocalExecutor().execute_callable(chatty, {"x": 9})
    real = capsys.readouterr()
    assert "stdout 9" in real.out
    assert "stderr 9" in real.err


def test_the_loggers_own_output_is_not_captured(capsys: pytest.CaptureFixture[str]) -> None:
    class PrintingLogger:
        def __init__(self) -> None:
            self.records: list[Any] = []

        def record(self, captured: Any) -> None:
            print("logger speaking")
            self.records.append(captured)

    logger = PrintingLogger()
    LocalExecutor().execute_callable(chatty, {"x": 1}, logger=logger)
    assert "logger speaking" not in logger.records[0].stdout
    assert "logger speaking" in capsys.readouterr().out


def test_concurrent_calls_capture_only_their_own_output(new_logger: Callable[[], Any]) -> None:
    def talk(i: int) -> int:
        for line in range(20):
            print(f"call-{i} line-{line}")
            time.sleep(0.001)
        return i

    executor = LocalExecutor(max_workers=4)
    loggers = [new_logger() for _ in range(8)]
    futures = [executor.submit_callable(talk, {"i": i}, logger=lg) for i, lg in enumerate(loggers)]
    assert [f.result(timeout=10) for f in futures] == list(range(8))
    for i, lg in enumerate(loggers):
        assert lg.only.stdout.splitlines() == [f"call-{i} line-{k}" for k in range(20)]


def test_concurrent_async_calls_capture_only_their_own_output(
    new_logger: Callable[[], Any],
) -> None:
    async def talk(i: int) -> None:
        for line in range(5):
            print(f"task-{i} line-{line}")
            await asyncio.sleep(0.001)

    loggers = [new_logger() for _ in range(4)]

    async def main() -> None:
        executor = LocalExecutor()
        await asyncio.gather(
            *(
                executor.async_execute_callable(talk, {"i": i}, logger=lg)
                for i, lg in enumerate(loggers)
            )
        )

    asyncio.run(main())
    for i, lg in enumerate(loggers):
        assert lg.only.stdout.splitlines() == [f"task-{i} line-{k}" for k in range(5)]


def test_a_failing_logger_raises_executor_error() -> None:
    class Broken:
        def record(self, captured: Any) -> None:
            raise RuntimeError("logger down")

    with pytest.raises(ExecutorError, match="logger down"):
        LocalExecutor().execute_callable(add, {"a": 1}, logger=Broken())


class _Rendezvous:
    """Passes only when 8 calls wait at once (a value with a stable identity)."""

    barrier = threading.Barrier(8, timeout=10)

    def identity_structure(self) -> str:
        return "rendezvous of 8"


_MEET = _Rendezvous()


@function_pod("y")
def meet(x: int) -> int:
    _MEET.barrier.wait()
    return x


def test_a_node_keeps_one_call_in_flight_per_worker_thread() -> None:
    assert LocalExecutor(max_workers=8).preferred_concurrency == 8
    assert LocalExecutor().preferred_concurrency is None
    src = DictSource([{"id": i, "x": i} for i in range(16)], tag_columns=["id"])
    node = FunctionNode(meet.pod, src)
    node.executor = LocalExecutor(max_workers=8)
    assert node.run().computed == 16
