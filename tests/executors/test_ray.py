"""RayExecutor against a real local Ray (2 CPUs, started once per run by ``ray_session``).

Functions shipped to workers live at module level (workers import them, as for user code).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from orcapod.databases import DeltaTableDatabase
from orcapod.errors import ExecutorError
from orcapod.executors import RayExecutor
from orcapod.functions import FunctionPod, PythonPacketFunction
from orcapod.nodes import FunctionNode
from orcapod.sources import DictSource

log = logging.getLogger("orcapod.tests.ray")


class UserError(Exception):
    pass


def double(x: int) -> int:
    return 2 * x


async def async_double(x: int) -> int:
    await asyncio.sleep(0.01)
    return 2 * x


def chatty(x: int) -> int:
    print(f"worker stdout {x}")
    print(f"worker stderr {x}", file=sys.stderr)
    log.warning("worker log %d", x)
    return x + 1


def noisy_failure(x: int) -> int:
    print("before failing")
    raise UserError(f"bad value {x}")


def interval(seconds: float) -> tuple[float, float, int]:
    start = time.time()
    time.sleep(seconds)
    return start, time.time(), os.getpid()


def assigned_cpus() -> float:
    import ray

    return ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0)


PICKLED: list[int] = []


class CountsPickling:
    """A callable whose every pickling on the driver is counted (shipping = pickling)."""

    def __reduce__(self) -> tuple[Any, ...]:
        PICKLED.append(1)
        return (CountsPickling, ())

    def __call__(self, x: int) -> int:
        return x * 10


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@pytest.mark.ray
@pytest.mark.parametrize("fn", [double, async_double], ids=["sync", "async"])
def test_round_trip(ray_session: ModuleType, fn: Callable[..., Any]) -> None:
    executor = RayExecutor()
    assert executor.execute_callable(fn, {"x": 21}) == 42

    async def main() -> Any:
        return await executor.async_execute_callable(fn, {"x": 4})

    assert asyncio.run(main()) == 8
    assert executor.submit_callable(fn, {"x": 5}).result(timeout=60) == 10


@pytest.mark.ray
def test_exception_type_and_message_reach_the_caller_with_capture(
    ray_session: ModuleType, packet_logger: Any
) -> None:
    with pytest.raises(UserError, match="bad value 3") as info:
        RayExecutor().execute_callable(noisy_failure, {"x": 3}, logger=packet_logger)
    assert type(info.value) is UserError
    assert not hasattr(info.value, "_orcapod_captured_output")
    captured = packet_logger.only
    assert not captured.success
    assert captured.stdout == "before failing\n"
    assert "UserError: bad value 3" in captured.traceback
    assert "noisy_failure" in captured.traceback  # the worker's traceback

    async def main() -> None:
        await RayExecutor().async_execute_callable(noisy_failure, {"x": 4})

    with pytest.raises(UserError, match="bad value 4"):
        asyncio.run(main())
    future = RayExecutor().submit_callable(noisy_failure, {"x": 5})
    error = future.exception(timeout=60)
    assert type(error) is UserError
    assert str(error) == "bad value 5"


@pytest.mark.ray
def test_captured_output_comes_back_from_the_worker(
    ray_session: ModuleType, new_logger: Callable[[], Any]
) -> None:
    sync_logger, async_logger = new_logger(), new_logger()
    assert RayExecutor().execute_callable(chatty, {"x": 1}, logger=sync_logger) == 2

    async def main() -> Any:
        return await RayExecutor().async_execute_callable(chatty, {"x": 2}, logger=async_logger)

    assert asyncio.run(main()) == 3
    for logger, x in ((sync_logger, 1), (async_logger, 2)):
        captured = logger.only
        assert captured.success
        assert captured.stdout == f"worker stdout {x}\n"
        assert captured.stderr == f"worker stderr {x}\n"
        assert captured.python_logs == f"WARNING:orcapod.tests.ray:worker log {x}"
        assert captured.traceback is None


@pytest.mark.ray
def test_with_options_and_call_options_reach_ray(ray_session: ModuleType) -> None:
    defaults = RayExecutor(num_cpus=1)
    node = defaults.with_options(num_cpus=2, max_retries=0)
    assert defaults.execute_callable(assigned_cpus, {}) == 1.0
    assert node.execute_callable(assigned_cpus, {}) == 2.0
    assert node.execute_callable(assigned_cpus, {}, {"num_cpus": 0.5}) == 0.5


@pytest.mark.ray
def test_options_ray_rejects_raise_executor_error(ray_session: ModuleType) -> None:
    with pytest.raises(ExecutorError, match="no_such_option"):
        RayExecutor(no_such_option=1).execute_callable(double, {"x": 1})


@pytest.fixture
def shipped_by_value(ray_session: ModuleType) -> Iterator[ModuleType]:
    """``unpicklable_function.py``, pickled by value (with its globals) like a script's own
    functions, not imported by the workers."""
    path = Path(__file__).with_name("unpicklable_function.py")
    spec = importlib.util.spec_from_file_location("orcapod_tests_unpicklable", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    ray_session.cloudpickle.register_pickle_by_value(module)
    try:
        yield module
    finally:
        ray_session.cloudpickle.unregister_pickle_by_value(module)
        del sys.modules[spec.name]


@pytest.mark.ray
def test_unpicklable_function_raises_a_short_executor_error_naming_what_it_uses(
    shipped_by_value: ModuleType,
) -> None:
    lock = threading.Lock()

    def holds_a_lock() -> bool:
        return lock.locked()

    with pytest.raises(ExecutorError, match="because of the closure variable 'lock'") as info:
        RayExecutor().execute_callable(holds_a_lock, {})
    assert "'holds_a_lock' cannot be sent to Ray workers" in str(info.value)
    assert "\x1b" not in str(info.value) and len(str(info.value)) < 500  # not Ray's report
    with pytest.raises(ExecutorError, match="the global 'LOCK'"):
        # raised at once, before a call is sent (a node then stops: no failure per row)
        RayExecutor().submit_callable(shipped_by_value.uses_a_global_lock, {"x": 1})


@pytest.mark.ray
def test_a_node_whose_function_cannot_be_pickled_stops_before_any_row_and_records_none(
    shipped_by_value: ModuleType, tmp_path: Path
) -> None:
    source = DictSource([{"k": i, "x": i} for i in range(3)], tag_columns=["k"], source_id="s")
    pod = FunctionPod(PythonPacketFunction(shipped_by_value.uses_a_global_lock, "y"))
    node = FunctionNode(pod, source, DeltaTableDatabase(tmp_path / "store"))
    node.executor = RayExecutor()
    with pytest.raises(ExecutorError, match="'uses_a_global_lock' .* the global 'LOCK'"):
        node.run()
    assert node.failures().num_rows == 0  # not one failure per row, retried forever


def returns_a_lock(x: int) -> Any:
    return threading.Lock()


def raises_type_error(x: int) -> int:
    raise TypeError("the function's own TypeError")


@pytest.mark.ray
def test_unpicklable_return_value_names_the_function_and_the_row(
    ray_session: ModuleType, packet_logger: Any
) -> None:
    executor = RayExecutor()
    with pytest.raises(
        ExecutorError, match=r"'returns_a_lock' returned a value .* row \{'x': 7\}"
    ) as info:
        executor.execute_callable(returns_a_lock, {"x": 7}, logger=packet_logger)
    # what is stored of Ray's report (the call's log, the failure's traceback) is plain text,
    # without Ray's terminal colours or the bare ^^^ of the frames it hides
    stored = [packet_logger.only.traceback, "".join(traceback.format_exception(info.value))]
    for text in stored:
        assert "ray::returns_a_lock()" in text and "cannot pickle" in text
        assert "\x1b" not in text
        assert not any(line.strip() and not line.strip("^ ") for line in text.splitlines()[:3])
    futures = [executor.submit_callable(returns_a_lock, {"x": i}) for i in range(3)]
    executor.no_more_calls()
    for i, future in enumerate(futures):
        with pytest.raises(ExecutorError, match=rf"cannot be sent back .* row \{{'x': {i}\}}"):
            future.result(timeout=60)
    with pytest.raises(TypeError, match="the function's own TypeError"):  # not mistaken for it
        executor.execute_callable(raises_type_error, {"x": 1})


@pytest.mark.ray
def test_function_is_shipped_once_per_executor(ray_session: ModuleType) -> None:
    fn = CountsPickling()
    executor = RayExecutor()
    PICKLED.clear()
    assert [executor.execute_callable(fn, {"x": i}) for i in range(5)] == [0, 10, 20, 30, 40]
    futures = [executor.submit_callable(fn, {"x": i}) for i in range(5)]
    assert [f.result(timeout=60) for f in futures] == [0, 10, 20, 30, 40]
    assert len(PICKLED) == 1
    # a node's own executor (with_options) ships its own copy, once
    node = executor.with_options(max_retries=1)
    for i in range(3):
        node.execute_callable(fn, {"x": i})
    assert len(PICKLED) == 2


@pytest.mark.ray
def test_calls_run_concurrently_on_two_cpus(ray_session: ModuleType) -> None:
    executor = RayExecutor()
    executor.execute_callable(interval, {"seconds": 0.0})  # warm up (workers, shipping)
    futures = [executor.submit_callable(interval, {"seconds": 0.5}) for _ in range(4)]
    intervals = sorted(f.result(timeout=60) for f in futures)
    overlapping = sum(_overlap(a, b) for i, a in enumerate(intervals) for b in intervals[i + 1 :])
    assert overlapping >= 2  # 4 tasks on 2 CPUs: two pairs run side by side
    assert len({pid for _, _, pid in intervals}) >= 2

    async def main() -> list[tuple[float, float, int]]:
        return await asyncio.gather(
            *(executor.async_execute_callable(interval, {"seconds": 0.3}) for _ in range(2))
        )

    first, second = asyncio.run(main())
    assert _overlap(first, second)


def _run_python(script: str, **env: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, **env},
    )
    return proc.stdout.splitlines()


@pytest.mark.slow
def test_import_works_without_ray_and_use_names_the_install_command() -> None:
    script = """
import sys
sys.modules["ray"] = None  # `import ray` now fails as if Ray were not installed
from orcapod.databases import DeltaTableDatabase
from orcapod.errors import ExecutorError
from orcapod.executors import RayExecutor
from orcapod.functions import FunctionPod, PythonPacketFunction
from orcapod.nodes import FunctionNode
from orcapod.sources import DictSource
executor = RayExecutor(num_cpus=1).with_options(max_retries=1)
print(executor.get_executor_data()["executor_type"])
try:
    executor.execute_callable(abs, {})
except ExecutorError as err:
    print(err)
"""
    lines = _run_python(script)
    assert lines[0] == "ray"
    assert "pip install 'orcapod[ray]'" in lines[1]


@pytest.mark.ray
@pytest.mark.slow
def test_ray_is_started_lazily_on_first_use() -> None:
    # its own interpreter: the test session's Ray is already running in this one
    script = """
import ray
from orcapod.executors import RayExecutor
print(ray.is_initialized())
print(RayExecutor().execute_callable(round, {"number": 2.6}))
print(ray.is_initialized())
ray.shutdown()
"""
    lines = _run_python(script, RAY_AUTH_MODE="disabled")
    assert lines == ["False", "3", "True"]
