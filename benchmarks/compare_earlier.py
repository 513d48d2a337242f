"""Side by side with the earlier implementation (orcapod 0.1.4 from PyPI), same machine, same run.

Install it in its own virtual environment first, e.g.::

    python3 -m venv /tmp/old-venv && /tmp/old-venv/bin/pip install orcapod==0.1.4
    .venv/bin/python benchmarks/compare_earlier.py --old-python /tmp/old-venv/bin/python

Scenario (the earlier measurements' S2): a function node doubling one int column, results and
records in a local Delta Lake store; first run, then a rerun with everything recorded, each
phase in a fresh process. Prints one JSON line per (implementation, phase) and the ratios.
The earlier implementation is driven only through its public API, as a user would.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

OLD = """
import json, sys, time
import pyarrow as pa
from orcapod import function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.nodes import FunctionJobNode
from orcapod.sources import ArrowTableSource

n, store = int(sys.argv[1]), sys.argv[2]

@function_pod(output_keys="y")
def double(x: int) -> int:
    return 2 * x

schema = pa.schema([pa.field("id", pa.int64(), False), pa.field("x", pa.int64(), False)])
table = pa.Table.from_pydict({"id": list(range(n)), "x": list(range(n))}, schema=schema)
db = DeltaTableDatabase(store)
node = FunctionJobNode(
    function_pod=double.pod,
    input_stream=ArrowTableSource(table, tag_columns=["id"], source_id="bench"),
    pipeline_database=db,
    result_database=db,
)
start = time.perf_counter()
node.run()
db.flush()
print(json.dumps({"seconds": time.perf_counter() - start}))
"""

NEW = """
import json, sys, time
import pyarrow as pa
from orcapod import function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.nodes import FunctionNode
from orcapod.sources import ArrowTableSource

n, store = int(sys.argv[1]), sys.argv[2]

@function_pod("y")
def double(x: int) -> int:
    return 2 * x

table = pa.table({"id": list(range(n)), "x": list(range(n))})
node = FunctionNode(
    double.pod,
    ArrowTableSource(table, tag_columns=["id"], source_id="bench"),
    pipeline_database=DeltaTableDatabase(store),
)
start = time.perf_counter()
node.run()
node.flush()
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def run(python: str, code: str, n: int, store: Path) -> float:
    out = subprocess.run(
        [python, "-c", code, str(n), str(store)], capture_output=True, text=True, check=True
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old-python", required=True, help="python of a venv with orcapod 0.1.4")
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures: dict[tuple[str, str], float] = {}
        for impl, python, code in (("0.1.4", args.old_python, OLD), ("this", sys.executable, NEW)):
            store = Path(tmp) / impl
            for phase in ("first", "rerun"):
                seconds = run(python, code, args.n, store)
                figures[impl, phase] = seconds
                print(
                    json.dumps(
                        {
                            "benchmark": "compare_earlier",
                            "impl": impl,
                            "phase": phase,
                            "n": args.n,
                            "seconds": round(seconds, 4),
                            "ms_per_row": round(seconds / args.n * 1e3, 3),
                        }
                    )
                )
        for phase in ("first", "rerun"):
            print(
                json.dumps(
                    {
                        "benchmark": "compare_earlier",
                        "phase": phase,
                        "n": args.n,
                        "speedup": round(figures["0.1.4", phase] / figures["this", phase], 1),
                    }
                )
            )


if __name__ == "__main__":
    main()
