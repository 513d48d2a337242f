"""``node.lineage`` of one value five function nodes deep, on a Delta Lake store.

A source of N rows (default 1,000,000; ``--rows``) feeds a chain of five function nodes
(``f1`` … ``f5``, each ``x + 1``); the pipeline runs once to fill the store (not timed). Then,
in a FRESH process (nothing cached in memory), the pipeline is rebuilt over the same store and
``pipeline.f5.lineage({"id": k})`` is timed for ``--repeats`` random rows (the first call
includes opening the five records and five results tables; later calls reuse the open
tables, as a notebook or a long-lived process does). Building the pipeline in that process
(without running it) is not timed. That is done twice: the first process after the writes
builds each table's record-id locator pack (``first_process_*``), a second, equally cold
process finds them (``cold_first_ms``: its first call; ``median_ms``: the median of all its
calls).

Goal: one value five nodes deep in a 1M-row store in <= 100 ms.

    .venv/bin/python benchmarks/lineage.py [--rows 1000000] [--repeats 5] [--store DIR]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from orcapod.databases import DeltaTableDatabase
from orcapod.functions import function_pod
from orcapod.pipeline import Pipeline
from orcapod.sources import ArrowTableSource


@function_pod("x")
def f1(x: int) -> int:
    return x + 1


@function_pod("x")
def f2(x: int) -> int:
    return x + 1


@function_pod("x")
def f3(x: int) -> int:
    return x + 1


@function_pod("x")
def f4(x: int) -> int:
    return x + 1


@function_pod("x")
def f5(x: int) -> int:
    return x + 1


def build(store: Path, rows: int) -> Pipeline:
    ids = np.arange(rows, dtype=np.int64)
    table = pa.table({"id": ids, "x": ids})
    source = ArrowTableSource(table, tag_columns=["id"], source_id="numbers")
    pipeline = Pipeline("bench", DeltaTableDatabase(store))
    with pipeline:
        stream = source
        for pod in (f1, f2, f3, f4, f5):
            stream = pod.pod(stream)
    return pipeline


def measure(store: Path, rows: int, repeats: int) -> dict[str, object]:
    pipeline = build(store, rows)
    rng = np.random.default_rng(0)
    times = []
    depth = 0
    for k in rng.choice(rows, size=repeats, replace=False).tolist():
        start = time.perf_counter()
        lineage = pipeline.f5.lineage({"id": int(k)})
        times.append(time.perf_counter() - start)
        depth = len(lineage.functions)
        assert lineage.functions[0].outputs["x"] == str(int(k) + 5), lineage
        assert lineage.sources[0].record_id, lineage
    return {
        "benchmark": "lineage",
        "rows": rows,
        "functions_deep": depth,
        "first_ms": round(times[0] * 1000, 1),
        "median_ms": round(statistics.median(times) * 1000, 1),
        "all_ms": [round(t * 1000, 1) for t in times],
        "goal_ms": 100,
    }


def _measure_in_fresh_process(store: Path, rows: int, repeats: int) -> dict[str, object]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--measure-only",
            "--store",
            str(store),
            "--rows",
            str(rows),
            "--repeats",
            str(repeats),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, object] = json.loads(out.stdout)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_only:
        print(json.dumps(measure(args.store, args.rows, args.repeats)))
        return
    tmp = Path(tempfile.mkdtemp(prefix="orcapod-lineage-"))
    store = args.store or tmp / "store"
    try:
        if not (store / "bench").exists():
            start = time.perf_counter()
            build(store, args.rows).run()
            print(json.dumps({"fill_s": round(time.perf_counter() - start, 1)}), file=sys.stderr)
        # the first process after the writes builds the record-id locator packs; a later
        # process finds them (each is cold: nothing of the store in memory)
        first = _measure_in_fresh_process(store, args.rows, args.repeats)
        later = _measure_in_fresh_process(store, args.rows, args.repeats)
        print(
            json.dumps(
                {
                    **later,
                    "cold_first_ms": later["first_ms"],
                    "first_process_first_ms": first["first_ms"],
                    "first_process_median_ms": first["median_ms"],
                }
            )
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
