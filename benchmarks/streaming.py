"""Streaming (``ExecutorType.ASYNC_CHANNELS``) vs barrier / synchronous runs; prints JSON.

Every measurement runs in a fresh process on a fresh Delta store (peak RSS is per process):

Overlap and throughput runs follow an untimed two-row run in the same mode (``_warm_up``), so
one-time process costs (imports the store library makes at its first write) count in neither.

* ``overlap``: source -> f (20 ms/row) -> g (20 ms/row), 200 rows, ``LocalExecutor(max_workers=2)``
  and ``max_concurrency=2`` per node. ``ratio`` = streaming time / barrier (synchronous) time
  (goal <= 0.6); ``first_g_s``: seconds from the run's start until g's first call returned
  (a proxy for g's first stored row, which follows at its next commit, ~10 ms later).
* ``memory``: three function nodes (trivial, slow middle: ~20 us of Python per row, trivial)
  over ``--memory-rows`` rows (default 1M): peak RSS of the process, streaming vs barrier;
  ``edge_peak_rows``: per edge of the streaming run, the most rows its channel held at once
  (``AsyncOrchestrator.edge_peaks``; at most ``channel_buffer_size``, 64). A function node
  also holds rows inside (its read-ahead, one looked-up chunk, its uncommitted batch).
* ``throughput``: two trivial function nodes over 100k rows: streaming time / synchronous
  time (goal <= 1.3), with the default ``channel_buffer_size`` (64) and with 20,000;
  ``cpu_ratio``: the same for the process's CPU seconds (less sensitive to a busy machine).
* ``ray``: two independent function nodes of 40 x 50 ms (busy loop), one call at a time each
  (``max_concurrency=1``), on a local Ray with 2 CPUs: the streaming run (both nodes at once)
  / the synchronous run (one after the other), goal <= 0.6. Ray is started in the main thread
  in an untimed warm-up (started lazily from a node's thread, ``ray.init`` ended the process
  with exit code 1 here). ``--skip-ray`` skips it (local Ray takes ~10-20 s to start).

    .venv/bin/python benchmarks/streaming.py [--skip-ray] [--memory-rows 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

import orcapod.pipeline.pipeline as pipeline_module
from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase, InMemoryArrowDatabase
from orcapod.executors import LocalExecutor
from orcapod.pipeline import AsyncOrchestrator
from orcapod.sources import ArrowTableSource
from orcapod.types import ExecutorType, NodeConfig, PipelineConfig

MODES = {"sync": ExecutorType.SYNCHRONOUS, "stream": ExecutorType.ASYNC_CHANNELS}


class _Recorded(AsyncOrchestrator):
    """The streaming orchestrator, remembering its last instance (for its edge peaks)."""

    last: AsyncOrchestrator | None = None

    def __init__(self) -> None:
        super().__init__()
        _Recorded.last = self


pipeline_module.AsyncOrchestrator = _Recorded  # type: ignore[misc]


def _db() -> Any:
    if os.environ.get("STREAM_BENCH_MEMORY_DB"):
        return InMemoryArrowDatabase()
    return DeltaTableDatabase(tempfile.mkdtemp())


def _source(n: int) -> ArrowTableSource:
    import pyarrow as pa

    return ArrowTableSource(
        pa.table({"id": pa.array(range(n), pa.int64()), "x": pa.array(range(n), pa.int64())}),
        tag_columns=["id"],
        source_id="src",
    )


def _cpu() -> float:
    """CPU seconds (user + system) of this process so far: a figure a busy machine's other
    work changes far less than the elapsed time."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _warm_up(mode: str) -> None:
    """An untimed two-row run in the same mode: one-time process costs (the store library's
    first write imports pyarrow.dataset and pandas, ~0.3-0.6 s) are not charged to the run."""

    @function_pod("w")
    def warm(x: int) -> int:
        return x

    pipeline = Pipeline("warm", _db())
    with pipeline:
        warm.pod(_source(2))
    pipeline.run(config=PipelineConfig(executor=MODES[mode]))


def overlap(mode: str) -> dict[str, Any]:
    _warm_up(mode)
    first: list[float] = []

    @function_pod("y")
    def f(x: int) -> int:
        time.sleep(0.02)
        return x + 1

    @function_pod("z")
    def g(y: int) -> int:
        time.sleep(0.02)
        if not first:
            first.append(time.perf_counter())
        return y * 2

    pipeline = Pipeline("bench", _db())
    with pipeline:
        g.pod(f.pod(_source(200)))
    for label in ("f", "g"):
        pipeline.set_node_config(label, NodeConfig(max_concurrency=2))
    cpu, start = _cpu(), time.perf_counter()
    pipeline.run(executor=LocalExecutor(max_workers=2), config=PipelineConfig(executor=MODES[mode]))
    end = time.perf_counter()
    return {"seconds": end - start, "first_g_s": first[0] - start, "cpu_s": _cpu() - cpu}


def memory(mode: str, rows: int) -> dict[str, Any]:
    @function_pod("a")
    def first(x: int) -> int:
        return x + 1

    @function_pod("b")
    def middle(a: int) -> int:
        total = 0
        for i in range(200):  # ~20 us of Python per row
            total += i
        return a + total

    @function_pod("c")
    def last(b: int) -> int:
        return b - 1

    pipeline = Pipeline("bench", _db())
    with pipeline:
        last.pod(middle.pod(first.pod(_source(rows))))
    start = time.perf_counter()
    pipeline.run(config=PipelineConfig(executor=MODES[mode]))
    seconds = time.perf_counter() - start
    out: dict[str, Any] = {
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if mode == "stream" and _Recorded.last is not None:
        out["edge_peak_rows"] = {f"{a}->{b}": peak for a, b, peak in _Recorded.last.edge_peaks}
    return out


def throughput(mode: str, buffer: int) -> dict[str, Any]:
    _warm_up(mode)

    @function_pod("y")
    def f(x: int) -> int:
        return x + 1

    @function_pod("z")
    def g(y: int) -> int:
        return y * 2

    pipeline = Pipeline("bench", _db())
    with pipeline:
        g.pod(f.pod(_source(100_000)))
    cpu, start = _cpu(), time.perf_counter()
    pipeline.run(config=PipelineConfig(executor=MODES[mode], channel_buffer_size=buffer))
    return {"seconds": time.perf_counter() - start, "cpu_s": _cpu() - cpu}


def ray(mode: str) -> dict[str, Any]:
    from orcapod.executors import RayExecutor

    def busy(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    @function_pod("y")
    def left(x: int) -> int:
        busy(0.05)
        return x

    @function_pod("z")
    def right(x: int) -> int:
        busy(0.05)
        return -x

    def build(n: int) -> Pipeline:
        pipeline = Pipeline("bench", _db())
        with pipeline:
            src = _source(n)
            left.pod(src)
            right.pod(src)
        return pipeline

    import ray as ray_module

    # start Ray in the main thread (a streaming run calls functions from node threads)
    ray_module.init(num_cpus=2)
    executor = RayExecutor()
    build(2).run(executor=executor, config=PipelineConfig(executor=MODES[mode]))  # warm-up
    pipeline = build(40)
    for label in ("left", "right"):  # one call at a time per node: one CPU each
        pipeline.set_node_config(label, NodeConfig(max_concurrency=1))
    start = time.perf_counter()
    pipeline.run(executor=executor, config=PipelineConfig(executor=MODES[mode]))
    return {"seconds": time.perf_counter() - start}


def _child(args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs="+")
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--memory-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--only", default="overlap,memory,throughput,ray", help="comma-separated parts to run"
    )
    parser.add_argument("--quick", action="store_true", help="small smoke sizes")
    args = parser.parse_args()
    if args.quick:
        args.memory_rows = 20_000
    if args.child:
        part, mode, *rest = args.child
        if part == "overlap":
            print(json.dumps(overlap(mode)))
        elif part == "memory":
            print(json.dumps(memory(mode, int(rest[0]))))
        elif part == "throughput":
            print(json.dumps(throughput(mode, int(rest[0]))))
        else:
            print(json.dumps(ray(mode)))
        return
    parts = set(args.only.split(","))
    out: dict[str, Any] = {"loadavg": _loadavg()}
    if "overlap" in parts:
        barrier, stream = _child(["overlap", "sync"]), _child(["overlap", "stream"])
        out["overlap"] = {
            "barrier": barrier,
            "streaming": stream,
            "ratio": stream["seconds"] / barrier["seconds"],
            "goal": "<= 0.6",
        }
    if "memory" in parts:
        rows = str(args.memory_rows)
        barrier, stream = _child(["memory", "sync", rows]), _child(["memory", "stream", rows])
        out["memory"] = {"rows": args.memory_rows, "barrier": barrier, "streaming": stream}
    for buffer in (64, 20_000) if "throughput" in parts else ():
        sync, stream = (
            _child(["throughput", "sync", str(buffer)]),
            _child(["throughput", "stream", str(buffer)]),
        )
        out[f"throughput_buffer_{buffer}"] = {
            "sync": sync,
            "streaming": stream,
            "ratio": stream["seconds"] / sync["seconds"],
            "cpu_ratio": stream["cpu_s"] / sync["cpu_s"],
            "goal": "<= 1.3",
        }
    if not args.skip_ray and "ray" in parts:
        sync, stream = _child(["ray", "sync"]), _child(["ray", "stream"])
        out["ray"] = {"sequential": sync, "streaming": stream, "goal": "<= 0.6"}
        if "seconds" in sync and "seconds" in stream:
            out["ray"]["ratio"] = stream["seconds"] / sync["seconds"]
    out["loadavg_end"] = _loadavg()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
