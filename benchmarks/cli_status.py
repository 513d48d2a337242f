"""``orcapod status`` on a store with 20 nodes and 1M rows (goal: <= 1 s).

The store is made by one pipeline run (not timed): a source of N rows (default 1,000,000;
``--quick``: 10,000), a function node over all of them (N results and N pipeline records in
the store), and 18 more nodes downstream (9 function nodes over the first 1,000 rows and 9
operators), 20 nodes in all. Then ``orcapod status STORE``, ``orcapod runs STORE`` and
``orcapod show NODE --limit 10`` (the big node) each run as the installed script in
``--repeats`` fresh processes (default 5); the median wall time of each is printed, with one
untimed warm-up process first (bytecode caches written, as an installed package has them).

    .venv/bin/python benchmarks/cli_status.py [--quick] [--rows N] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.sources import ArrowTableSource

ORCAPOD = Path(sys.executable).parent / "orcapod"


@function_pod("y")
def increment(x: int) -> int:
    return x + 1


def _stage(k: int) -> object:
    @function_pod(f"y{k}", function_name=f"stage_{k}")
    def stage(y: int) -> int:
        return y + k

    return stage


def build(store: Path, rows: int) -> float:
    """Run the 20-node pipeline once into ``store``; return the seconds it took."""
    table = pa.table({"id": pa.array(range(rows), pa.int64()), "x": pa.array(range(rows))})
    source = ArrowTableSource(table, tag_columns=["id"], source_id="numbers", label="numbers")
    small = ArrowTableSource(table.slice(0, 1000), tag_columns=["id"], source_id="small")
    pipeline = Pipeline("bench", DeltaTableDatabase(store))
    with pipeline:
        big = increment.pod(source)
        stream = increment.pod(small, label="increment_small")
        for k in range(9):
            stream = _stage(k).pod(stream)  # type: ignore[attr-defined]
            stream = stream.map_packets({f"y{k}": "y"}, label=f"rename_{k}")
    assert len(pipeline.nodes) == 22, list(pipeline.nodes)  # 20 + the two sources
    del big
    start = time.perf_counter()
    pipeline.run(progress=False)
    return time.perf_counter() - start


def _time(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 rows, 5 processes")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = 10_000 if args.quick else args.rows
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["COLUMNS"] = "120"
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        built = build(store, rows)
        print(
            json.dumps(
                {
                    "benchmark": "cli_status",
                    "phase": "build",
                    "rows": rows,
                    "seconds": round(built, 2),
                }
            ),
            flush=True,
        )
        commands = {
            "status": [str(ORCAPOD), "status", str(store)],
            "runs": [str(ORCAPOD), "runs", str(store)],
            "show_limit_10": [
                str(ORCAPOD),
                "show",
                "increment",
                "--store",
                str(store),
                "--limit",
                "10",
            ],
        }
        for name, command in commands.items():
            _time(command, env)  # warm-up
            times = [_time(command, env) for _ in range(max(args.repeats, 1))]
            figure: dict[str, object] = {
                "benchmark": "cli_status",
                "command": name,
                "nodes": 20,
                "rows": rows,
                "median_s": round(statistics.median(times), 3),
                "min_s": round(min(times), 3),
                "runs": len(times),
            }
            if name == "status":
                figure["goal_s"] = 1.0
                figure["meets_goal"] = figure["median_s"] <= 1.0  # type: ignore[operator]
            print(json.dumps(figure), flush=True)


if __name__ == "__main__":
    main()
