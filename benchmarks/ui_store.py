"""The store the ``orcapod ui`` benchmark reads: 20 nodes, 1M rows (built once, then reused).

A source of N rows (default 1,000,000), a function node ``increment`` over all of them (N
pipeline records and N results; every 100,000th row fails, so the node has failures with
tracebacks and captured output), and 18 more nodes downstream of a 1,000-row source (9
function nodes and 9 operators that log their rows), 20 nodes in all. The store is kept
under ``$TMPDIR/orcapod-bench/ui-store-<N>`` and reused by later runs (delete it to rebuild).

    .venv/bin/python benchmarks/ui_store.py [--rows N]     # build (or find) it, print its path
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import pyarrow as pa

from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.sources import ArrowTableSource
from orcapod.types import CacheMode

FAIL_EVERY = 100_000


@function_pod("y")
def increment(x: int) -> int:
    if x % FAIL_EVERY == 7:
        print(f"cannot increment {x}")
        raise ValueError(f"x={x} is not allowed")
    return x + 1


def _stage(k: int) -> object:
    @function_pod(f"y{k}", function_name=f"stage_{k}")
    def stage(y: int) -> int:
        return y + k

    return stage


def store_path(rows: int) -> Path:
    return Path(tempfile.gettempdir()) / "orcapod-bench" / f"ui-store-{rows}"


def build(rows: int) -> tuple[Path, float]:
    """The store (built now when missing) and the seconds building took (0 when reused)."""
    store = store_path(rows)
    done = store / ".built"
    if done.exists():
        return store, 0.0
    shutil.rmtree(store, ignore_errors=True)
    table = pa.table({"id": pa.array(range(rows), pa.int64()), "x": pa.array(range(rows))})
    source = ArrowTableSource(table, tag_columns=["id"], source_id="numbers", label="numbers")
    small = ArrowTableSource(table.slice(0, 1000), tag_columns=["id"], source_id="small")
    pipeline = Pipeline("bench", DeltaTableDatabase(store))
    with pipeline:
        increment.pod(source)
        stream = increment.pod(small, label="increment_small")
        for k in range(9):
            stream = _stage(k).pod(stream)  # type: ignore[attr-defined]
            stream = stream.map_packets({f"y{k}": "y"}, label=f"rename_{k}")
    assert len(pipeline.nodes) == 22, list(pipeline.nodes)  # 20 + the two sources
    for k in range(9):
        pipeline.nodes[f"rename_{k}"].cache_mode = CacheMode.LOG
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline.run(progress=False)
    took = time.perf_counter() - start
    done.write_text("ok", encoding="utf-8")
    return store, took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="small smoke sizes")
    args = parser.parse_args()
    if args.quick:
        args.rows = 2_000
    store, took = build(args.rows)
    print(json.dumps({"store": str(store), "rows": args.rows, "build_s": round(took, 2)}))


if __name__ == "__main__":
    main()
