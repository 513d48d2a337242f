"""Peak memory of a FunctionNode's first run on Delta: how much the run adds to the process.

For each N (default 100k and 1M; ``--quick``: 20k) a fresh process builds an N-row input
(``id``, ``x`` int64), then runs a trivial function over it on a fresh Delta store. Reported:
``input_mb`` (RSS growth from building the input), ``run_peak_growth_mb`` (peak RSS during
``run()`` minus RSS before it: what the run itself holds at its worst) and the counts. The
goal: at most 250 MB at 1M rows, and a growth set by the run's chunk (``FunctionNode.
chunk_rows``), not by N: ``--sizes 1000000,10000000`` prints the 10M / 1M ratio (goal <= 1.5).
deltalake, polars and pandas (which orcapod imports when first used) are imported up front,
and a 1,000-row node runs on another store before the measured run, so one-off costs of the
first run in a process (modules imported on first use, the Delta writer's runtime: about
60 MB at 1M rows) are not counted as the run's growth; ``--cold`` leaves that warm-up out.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile

import deltalake  # noqa: F401 - see below
import numpy as np
import pandas  # noqa: F401
import polars  # noqa: F401
import pyarrow as pa

from orcapod.databases import DeltaTableDatabase
from orcapod.functions import FunctionPod, PythonPacketFunction
from orcapod.nodes import FunctionNode
from orcapod.sources import ArrowTableSource


def increment(x: int) -> int:
    return x + 1


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux: ``VmHWM``), so the peak read after ``run()``
    is the run's even when building a large input peaked higher; False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def _peak_mb() -> float:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _warm_up() -> None:
    """A small run on its own store: the one-off costs of a process's first run."""
    table = pa.table({"id": np.arange(1000, dtype=np.int64), "x": np.arange(1000)})
    src = ArrowTableSource(table, tag_columns=["id"], source_id="warm", record_id_column="id")
    with tempfile.TemporaryDirectory() as store:
        pod = FunctionPod(PythonPacketFunction(increment, "y"))
        FunctionNode(pod, src, DeltaTableDatabase(store)).run()


def child(n: int, cold: bool) -> dict[str, object]:
    if not cold:
        _warm_up()
    start = _rss_mb()
    table = pa.table({"id": np.arange(n, dtype=np.int64), "x": np.arange(n, dtype=np.int64)})
    src = ArrowTableSource(table, tag_columns=["id"], source_id="mem", record_id_column="id")
    with tempfile.TemporaryDirectory() as store:
        node = FunctionNode(
            FunctionPod(PythonPacketFunction(increment, "y")), src, DeltaTableDatabase(store)
        )
        before = _rss_mb()
        reset = _reset_peak()
        summary = node.run()
        peak = _peak_mb()
    assert summary.computed == n, summary
    return {
        "benchmark": "node_memory.first_run",
        "n": n,
        "input_mb": round(before - start, 1),
        "rss_before_run_mb": round(before, 1),
        "run_peak_growth_mb": round(peak - before, 1),
        "computed": summary.computed,
        "peak_reset_before_run": reset,
        "warmed_up": not cold,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--cold", action="store_true", help="no warm-up run before the run")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.cold)), flush=True)
        return
    sizes = [20_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    growth: dict[int, float] = {}
    for n in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(n), *(["--cold"] if args.cold else [])],
            capture_output=True,
            text=True,
            check=True,
        )
        print(out.stdout.strip(), flush=True)
        growth[n] = json.loads(out.stdout)["run_peak_growth_mb"]
    if 1_000_000 in growth:
        for n in (n for n in growth if n > 1_000_000):  # goal: within 1.5x the 1M figure
            print(
                json.dumps(
                    {
                        "benchmark": "node_memory.growth_ratio",
                        "n": n,
                        "ratio_to_1m": round(growth[n] / growth[1_000_000], 3),
                        "goal_ratio": 1.5,
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
