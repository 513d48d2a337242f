"""Throughput of numpy array columns: a stream of 100,000 rows, each a 64-float64 array
(512 bytes of values per row, 51.2 MB in all), plus an int64 tag.

Figures (MB/s over the arrays' value bytes; best of ``--repeats`` runs after one warm-up):

* ``build_table``: numpy arrays -> Arrow (``columns_to_table``; the fixed-shape tensor column);
* ``hash_table`` / ``hash_rows``: logical hashing of that table (goal >= 50 MB/s);
* ``delta_round_trip``: write the table to a fresh ``DeltaTableDatabase`` path (add + flush)
  and read it back (``get_all_records``) as tensors (goal >= 100 MB/s);
* ``to_numpy``: Arrow -> one numpy array per row (``column_to_pylist``).

Prints one JSON object per figure.

    .venv/bin/python benchmarks/arrays.py [--quick] [--rows N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod.data.conversion import column_to_pylist, columns_to_table
from orcapod.databases import DeltaTableDatabase
from orcapod.hashing import hash_rows, hash_table
from orcapod.types import ArrayType

WIDTH = 64
GOALS = {"hash_table": 50.0, "hash_rows": 50.0, "delta_round_trip": 100.0}


def best_of(repeats: int, fn: Callable[[], Any]) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def delta_round_trip(table: pa.Table) -> None:
    base = tempfile.mkdtemp(prefix="orcapod-bench-arrays-")
    try:
        db = DeltaTableDatabase(base)
        db.add_records(("arrays",), table, "id")
        db.flush()
        back = db.get_all_records(("arrays",), record_id_column="id")
        assert back is not None and back.num_rows == table.num_rows
        assert back.column("x").type == table.column("x").type
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n = args.rows or (5_000 if args.quick else 100_000)
    rng = np.random.default_rng(0)
    block = rng.standard_normal((n, WIDTH))
    arrays = list(block)
    schema = {"id": str, "x": ArrayType("float64", (WIDTH,))}
    ids = [f"row-{i}" for i in range(n)]
    table = columns_to_table({"id": ids, "x": arrays}, schema)
    megabytes = block.nbytes / 1e6
    figures: dict[str, Callable[[], Any]] = {
        "build_table": lambda: columns_to_table({"id": ids, "x": arrays}, schema),
        "hash_table": lambda: hash_table(table.select(["x"])),
        "hash_rows": lambda: hash_rows(table.select(["x"])),
        "delta_round_trip": lambda: delta_round_trip(table),
        "to_numpy": lambda: column_to_pylist(table.column("x")),
    }
    for name, fn in figures.items():
        seconds = best_of(args.repeats, fn)
        record: dict[str, Any] = {
            "benchmark": "arrays",
            "figure": name,
            "rows": n,
            "array": f"float64[{WIDTH}]",
            "megabytes": round(megabytes, 1),
            "seconds": round(seconds, 4),
            "mb_per_s": round(megabytes / seconds, 1),
        }
        if name in GOALS:
            record["goal_mb_per_s"] = GOALS[name]
            record["meets_goal"] = megabytes / seconds >= GOALS[name]
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
