"""Concurrency with ``LocalExecutor``: N rows of a function that sleeps S seconds, run by a
``FunctionNode`` with ``LocalExecutor(max_workers=W)``, against the ideal ``N * S / W``.

Prints one JSON line per store (in-memory, Delta): ``seconds`` (the node's ``run()``), ``ideal``
and ``ratio`` = seconds / ideal. The computed count is checked (every row computed once). The
goal: 200 rows x 20 ms with 20 workers in at most 0.4 s. ``--quick``: 40 rows.

deltalake, polars and pandas are imported before timing: orcapod loads them on first use, a
one-off cost per process (about 0.3-0.5 s) that is not the executor's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import deltalake  # noqa: F401 - see the module docstring
import pandas  # noqa: F401
import polars  # noqa: F401

from orcapod.databases import DeltaTableDatabase, InMemoryArrowDatabase
from orcapod.executors import LocalExecutor
from orcapod.functions import function_pod
from orcapod.nodes import FunctionNode
from orcapod.sources import DictSource

SLEEP = 0.02


@function_pod("y")
def slow_identity(x: int) -> int:
    time.sleep(SLEEP)
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--workers", type=int, default=20)
    args = parser.parse_args()
    rows = 40 if args.quick else args.rows
    source = DictSource([{"id": i, "x": i} for i in range(rows)], tag_columns=["id"])
    with tempfile.TemporaryDirectory() as tmp:
        for name, db in (
            ("in_memory", InMemoryArrowDatabase()),
            ("delta", DeltaTableDatabase(tmp)),
        ):
            node = FunctionNode(slow_identity.pod, source, db)
            node.executor = LocalExecutor(max_workers=args.workers)
            start = time.perf_counter()
            summary = node.run()
            seconds = time.perf_counter() - start
            assert summary.computed == rows, summary
            ideal = rows * SLEEP / args.workers
            print(
                json.dumps(
                    {
                        "benchmark": "local_concurrency",
                        "store": name,
                        "rows": rows,
                        "workers": args.workers,
                        "sleep_s": SLEEP,
                        "seconds": round(seconds, 4),
                        "ideal": round(ideal, 4),
                        "ratio": round(seconds / ideal, 3),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
