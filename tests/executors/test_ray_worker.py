"""The worker side of ``RayExecutor`` (``orcapod.executors.ray_worker``) in FRESH Ray workers
of the session's local Ray: a plain call does not import orcapod there, and capture and async
functions still work when orcapod is not loaded yet.

Each test asks for a unique ``runtime_env``, so Ray starts new worker processes for it (the
session's other workers may have imported orcapod through test functions shipped by
reference). The functions are defined inside the tests, so they are shipped by value and
import nothing from this module.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from orcapod.executors import RayExecutor


def fresh_workers() -> RayExecutor:
    """An executor whose tasks run in worker processes started for it alone."""
    return RayExecutor(runtime_env={"env_vars": {"ORCAPOD_TEST_WORKERS": uuid.uuid4().hex}})


@pytest.mark.ray
def test_a_plain_call_runs_without_importing_orcapod_in_the_worker(
    ray_session: ModuleType,
) -> None:
    def orcapod_modules(x: int) -> tuple[int, list[str]]:
        return x, sorted(name for name in sys.modules if name.split(".")[0] == "orcapod")

    executor = fresh_workers()
    grouped = [executor.submit_callable(orcapod_modules, {"x": x}) for x in range(6)]
    executor.no_more_calls()
    assert [future.result(timeout=120) for future in grouped] == [(x, []) for x in range(6)]
    assert executor.execute_callable(orcapod_modules, {"x": 7}) == (7, [])


@pytest.mark.ray
def test_capture_and_async_functions_work_in_a_worker_without_orcapod(
    ray_session: ModuleType, new_logger: Callable[[], Any]
) -> None:
    def chatty(x: int) -> int:
        print(f"out {x}")
        return x + 1

    async def later(x: int) -> int:
        await asyncio.sleep(0.01)
        return 2 * x

    executor = fresh_workers()
    loggers = [new_logger() for _ in range(3)]
    futures = [executor.submit_callable(chatty, {"x": x}, logger=loggers[x]) for x in range(3)]
    executor.no_more_calls()
    assert [future.result(timeout=120) for future in futures] == [1, 2, 3]
    assert [logger.only.stdout for logger in loggers] == ["out 0\n", "out 1\n", "out 2\n"]
    one = new_logger()
    assert executor.execute_callable(chatty, {"x": 5}, logger=one) == 6
    assert one.only.stdout == "out 5\n"
    assert executor.submit_callable(later, {"x": 4}).result(timeout=120) == 8
    assert executor.execute_callable(later, {"x": 5}) == 10
