"""``node.lineage`` of one value five function nodes deep, on a Delta Lake store.

A source of N rows (default 1,000,000; ``--rows``) feeds a chain of five function nodes
(``f1`` … ``f5``, each ``x + 1``); the pipeline runs once to fill the store (not timed; with
``--store DIR`` the store is kept there and reused by later runs). Each measurement runs in a
FRESH process (nothing of the store in memory, as ``orcapod lineage`` runs): the pipeline is
rebuilt over the store (not timed) and ``pipeline.f5.lineage({"id": k})`` is timed for
``--repeats`` random rows.

* ``first_call_ms``: the first call of a fresh process (it reads the tables' snapshot
  sidecars, locator packs and data file footers for the first time) - the figure a CLI user
  sees; the median over ``--processes`` fresh processes (each in ``first_call_all_ms``).
* ``warm_median_ms``: the median of the later calls of those processes (a notebook or a
  long-lived process).
* ``store_first_call_ms``: the first ``lineage_from_store`` call of a fresh process (what
  ``orcapod lineage f5 --where id=K`` runs, without a pipeline object), median over
  ``--processes``; ``store_call_imported_pandas`` says whether that call imported pandas
  (pyarrow imports it on the first ``pa.array`` of a Python list when nothing did before).
* ``prepare_*``: the first process after the writes, which builds each table's record-id
  locator pack and snapshot sidecar (once per table; not the goal's figure).
* ``load``: ``/proc/loadavg``'s 1-minute load before and after.

Goal: one value five nodes deep in a 1M-row store in <= 100 ms (first call and warm).

    .venv/bin/python benchmarks/lineage.py [--rows 1000000] [--repeats 5] [--processes 3]
                                            [--store DIR]

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
from orcapod.nodes.store_lineage import lineage_from_store
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


def measure(store: Path, rows: int, repeats: int, seed: int) -> dict[str, object]:
    pipeline = build(store, rows)
    rng = np.random.default_rng(seed)
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
        "functions_deep": depth,
        "first_ms": round(times[0] * 1000, 1),
        "later_ms": [round(t * 1000, 1) for t in times[1:]],
    }


def measure_store(store: Path, rows: int, seed: int) -> dict[str, object]:
    """The first ``lineage_from_store`` call of a fresh process: what ``orcapod lineage f5
    --where id=K`` runs (no pipeline object)."""
    k = int(np.random.default_rng(seed).integers(rows))
    had_pandas = "pandas" in sys.modules
    start = time.perf_counter()
    lineage = lineage_from_store(store, "f5", {"id": k})
    elapsed = time.perf_counter() - start
    assert lineage.functions[0].outputs["x"] == str(k + 5), lineage
    return {
        "first_ms": round(elapsed * 1000, 1),
        "imported_pandas": not had_pandas and "pandas" in sys.modules,
    }


def _load() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return -1.0


def _measure_in_fresh_process(
    store: Path, rows: int, repeats: int, seed: int, mode: str = "--measure-only"
) -> dict[str, object]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            mode,
            "--store",
            str(store),
            "--rows",
            str(rows),
            "--repeats",
            str(repeats),
            "--seed",
            str(seed),
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
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure-store", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="small smoke sizes")
    args = parser.parse_args()
    if args.quick:  # (the children get the sizes as options)
        args.rows, args.repeats, args.processes = 2_000, 1, 1
    if args.measure_only:
        print(json.dumps(measure(args.store, args.rows, args.repeats, args.seed)))
        return
    if args.measure_store:
        print(json.dumps(measure_store(args.store, args.rows, args.seed)))
        return
    tmp = Path(tempfile.mkdtemp(prefix="orcapod-lineage-"))
    store = args.store or tmp / "store"
    try:
        if not (store / "bench").exists():
            start = time.perf_counter()
            build(store, args.rows).run()
            print(json.dumps({"fill_s": round(time.perf_counter() - start, 1)}), file=sys.stderr)
        load_before = _load()
        # the first process after the writes builds the locator packs and snapshot sidecars
        prepare = _measure_in_fresh_process(store, args.rows, args.repeats, 0)
        runs = [
            _measure_in_fresh_process(store, args.rows, args.repeats, seed)
            for seed in range(1, args.processes + 1)
        ]
        cli = [
            _measure_in_fresh_process(store, args.rows, 1, seed, "--measure-store")
            for seed in range(1, args.processes + 1)
        ]
        firsts = [float(str(r["first_ms"])) for r in runs]
        later = [float(t) for r in runs for t in r["later_ms"]]  # type: ignore[attr-defined]
        print(
            json.dumps(
                {
                    "benchmark": "lineage",
                    "rows": args.rows,
                    "functions_deep": runs[0]["functions_deep"],
                    "first_call_ms": round(statistics.median(firsts), 1),
                    "first_call_all_ms": firsts,
                    "warm_median_ms": round(statistics.median(later), 1) if later else None,
                    "warm_all_ms": later,
                    "store_first_call_ms": statistics.median(
                        float(str(r["first_ms"])) for r in cli
                    ),
                    "store_first_call_all_ms": [r["first_ms"] for r in cli],
                    "store_call_imported_pandas": any(r["imported_pandas"] for r in cli),
                    "prepare_first_ms": prepare["first_ms"],
                    "prepare_later_ms": prepare["later_ms"],
                    "goal_ms": 100,
                    "load": [load_before, _load()],
                }
            )
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
