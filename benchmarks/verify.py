"""``node.verify(sample=0.01)`` against computing the same rows plus one look-up.

A source of N rows (default 100,000; ``--rows``) feeds one function node whose function does
``--work-ms`` (default 1 ms) of pure-Python work per row; the pipeline runs once to fill a
Delta store (not timed). Then, in the same process:

* ``verify_s``: ``node.verify(sample=0.01, seed=k)`` (pick 1 % of the rows, find their
  records and results, call the function on them, compare, write the verification record);
* ``baseline_s``: calling the function on those same rows' inputs in a plain loop, plus one
  look-up of their stored records by tag (``get_records_with_column_value``).

Each is repeated ``--repeats`` times (default 3, alternating, a new sample each time);
medians are compared. Goal: ``verify_s <= 1.1 * baseline_s``.

    .venv/bin/python benchmarks/verify.py [--rows 100000] [--work-ms 1] [--repeats 3]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from orcapod.databases import DeltaTableDatabase
from orcapod.functions import function_pod
from orcapod.pipeline import Pipeline
from orcapod.sources import ArrowTableSource


def work(x: int) -> int:
    """About ``$VERIFY_WORK_MS`` of pure-Python CPU work (read at call time, so the setting
    is not part of the function's identity); deterministic output."""
    end = time.perf_counter() + float(os.environ.get("VERIFY_WORK_MS", "0")) / 1000
    total = x
    while time.perf_counter() < end:
        total = (total * 31 + 7) % 1_000_003
    return x * 2


@function_pod("y")
def compute(x: int) -> int:
    return work(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--work-ms", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="small smoke sizes")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeats = 2_000, 1
    os.environ["VERIFY_WORK_MS"] = "0"  # filling the store is not measured
    tmp = Path(tempfile.mkdtemp(prefix="orcapod-verify-"))
    try:
        ids = np.arange(args.rows, dtype=np.int64)
        source = ArrowTableSource(
            pa.table({"id": ids, "x": ids}), tag_columns=["id"], source_id="numbers"
        )
        pipeline = Pipeline("bench", DeltaTableDatabase(tmp / "store"))
        with pipeline:
            compute.pod(source)
        pipeline.run()
        node = pipeline.compute
        os.environ["VERIFY_WORK_MS"] = str(args.work_ms)
        verify_times, baseline_times, compute_times = [], [], []
        k = max(1, args.rows // 100)
        for seed in range(args.repeats):
            start = time.perf_counter()
            report = node.verify(sample=0.01, seed=seed)
            verify_times.append(time.perf_counter() - start)
            if args.profile:
                prof = cProfile.Profile()
                prof.runcall(node.verify, sample=0.01, seed=seed)
                pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
            assert report.ok and report.checked == k, report
            rows = np.sort(np.random.default_rng(seed).choice(args.rows, size=k, replace=False))
            start = time.perf_counter()
            for x in rows.tolist():
                work(x)
            computed = time.perf_counter()
            found = node.pipeline_database.get_records_with_column_value(
                node.record_path, {"id": rows.tolist()}
            )
            baseline_times.append(time.perf_counter() - start)
            compute_times.append(computed - start)
            assert found is not None and found.num_rows == k
        verify_s, baseline_s = statistics.median(verify_times), statistics.median(baseline_times)
        print(
            json.dumps(
                {
                    "benchmark": "verify",
                    "rows": args.rows,
                    "sample_rows": k,
                    "work_ms": args.work_ms,
                    "verify_s": round(verify_s, 3),
                    "baseline_s": round(baseline_s, 3),
                    "ratio": round(verify_s / baseline_s, 3),
                    "goal_ratio": 1.1,
                    "all_verify_s": [round(t, 3) for t in verify_times],
                    "all_baseline_s": [round(t, 3) for t in baseline_times],
                    "all_compute_only_s": [round(t, 3) for t in compute_times],
                }
            )
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
