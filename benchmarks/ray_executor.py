"""RayExecutor vs LocalExecutor on CPU-bound calls (2 CPUs).

N calls of ~50 ms of pure-Python CPU work (a busy loop with a fixed iteration count calibrated
on this machine, not a sleep): LocalExecutor runs them one after another; RayExecutor gets all N
submitted at once through ``submit_callable`` on a local Ray with ``num_cpus=2``. Ray's start-up
and the first (warm-up) calls are timed and reported separately, not in the comparison. A plain
2-process ``ProcessPoolExecutor`` run of the same calls is reported as a reference for what the
machine allows at that moment (on a shared machine, other load lowers both).

Prints one JSON object per figure. ``--quick``: 8 calls of ~20 ms.

    .venv/bin/python benchmarks/ray_executor.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from orcapod.executors import LocalExecutor, RayExecutor

NUM_CPUS = 2


def cpu_work(iterations: int) -> int:
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return total


def calibrate(target_seconds: float) -> int:
    """Iterations of ``cpu_work`` that take about ``target_seconds`` here (best of 3)."""
    probe = 200_000
    best = min(_timed(cpu_work, probe) for _ in range(3))
    return max(1, int(probe * target_seconds / best))


def _timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def emit(**figure: Any) -> None:
    print(json.dumps({"benchmark": "ray_executor", **figure}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke size")
    args = parser.parse_args()
    calls, work_seconds = (8, 0.02) if args.quick else (40, 0.05)

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no ~/.ray/auth_token
    import ray  # optional extra: imported only when the benchmark runs

    iterations = calibrate(work_seconds)
    emit(figure="calibration", iterations=iterations, seconds=_timed(cpu_work, iterations))

    local = LocalExecutor()
    start = time.perf_counter()
    local_results = [
        local.execute_callable(cpu_work, {"iterations": iterations}) for _ in range(calls)
    ]
    local_seconds = time.perf_counter() - start
    emit(figure="local_sequential", calls=calls, seconds=round(local_seconds, 4))

    # what this machine gives two processes right now (other load shows up here)
    with ProcessPoolExecutor(max_workers=NUM_CPUS) as pool:
        list(pool.map(cpu_work, [1] * NUM_CPUS))
        start = time.perf_counter()
        list(pool.map(cpu_work, [iterations] * calls))
        pool_seconds = time.perf_counter() - start
    emit(
        figure="process_pool_reference",
        calls=calls,
        seconds=round(pool_seconds, 4),
        ratio=round(local_seconds / pool_seconds, 3),
    )

    start = time.perf_counter()
    ray.init(num_cpus=NUM_CPUS, include_dashboard=False, logging_level="ERROR")
    emit(figure="ray_startup", seconds=round(time.perf_counter() - start, 4))
    try:
        executor = RayExecutor()
        start = time.perf_counter()
        warm = [executor.submit_callable(cpu_work, {"iterations": 1}) for _ in range(NUM_CPUS)]
        for future in warm:
            future.result()
        emit(figure="ray_warmup", calls=NUM_CPUS, seconds=round(time.perf_counter() - start, 4))

        start = time.perf_counter()
        futures = [
            executor.submit_callable(cpu_work, {"iterations": iterations}) for _ in range(calls)
        ]
        ray_results = [f.result() for f in futures]
        ray_seconds = time.perf_counter() - start
        assert ray_results == local_results
        emit(figure="ray_concurrent", calls=calls, cpus=NUM_CPUS, seconds=round(ray_seconds, 4))
        emit(
            figure="speedup",
            calls=calls,
            work_ms=round(work_seconds * 1000),
            cpus=NUM_CPUS,
            ratio=round(local_seconds / ray_seconds, 3),
            goal=1.8,
        )
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
