"""A function pod on a real local Ray cluster: concurrent dispatch, results in input order,
the user's exception type back at the caller (one shared Ray start per test run)."""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

import pytest

from orcapod.executors import RayExecutor
from orcapod.functions import FunctionPod, PythonPacketFunction


def slow_square(x: int) -> int:
    time.sleep(0.05 * ((x * 7) % 3))
    if x == 99:
        raise LookupError("no 99")
    return x * x


@pytest.mark.ray
def test_pod_on_ray_is_concurrent_and_ordered(ray_session: ModuleType, make_source: Any) -> None:
    pf = PythonPacketFunction(slow_square, "y", executor=RayExecutor())
    pod = FunctionPod(pf, max_concurrency=4)
    assert pod.concurrency_window() == 4
    stream = pod(make_source(12))
    rows = [(t["id"], p["y"]) for t, p in stream]
    assert rows == [(i, i * i) for i in range(12)]
    assert [p["y"] for _, p in stream] == [i * i for i in range(12)]  # served from the cache
    table = stream.as_table(columns={"source": True})
    assert table.column("_source_y").null_count == 0

    from orcapod.data import Packet

    with pytest.raises(LookupError, match="no 99"):
        pf.call(Packet({"x": 99}))


@pytest.mark.ray
def test_pods_keep_the_ray_executors_preferred_number_of_calls_in_flight(
    ray_session: ModuleType,
) -> None:
    def double(x: int) -> int:
        return 2 * x

    cpus = int(ray_session.cluster_resources()["CPU"])
    whole = RayExecutor(num_cpus=1)
    quarter = RayExecutor(num_cpus=0.25)  # four task slots per CPU
    assert whole.preferred_concurrency == max(32, 8 * cpus)
    assert quarter.preferred_concurrency == max(32, 8 * 4 * cpus)
    pod = FunctionPod(PythonPacketFunction(double, "y", executor=quarter))
    assert pod.concurrency_window() == quarter.preferred_concurrency
    assert pod.concurrency_window(max_concurrency=3) == 3  # an explicit window wins
    assert FunctionPod(pod.packet_function, max_concurrency=5).concurrency_window() == 5
