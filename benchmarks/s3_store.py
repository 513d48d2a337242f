"""A FunctionNode on an S3 store (moto's server on loopback) against the same on local Delta.

Phases, each run IN A FRESH PROCESS (nothing cached in memory between runs), first on a local
store, then on ``s3://<bucket>/<prefix>`` served by a moto server this script starts on
127.0.0.1 (moto keeps objects in memory; requests travel over real HTTP):

* ``first_run``  - N rows, nothing stored: every row is computed, stored and recorded;
* ``rerun``      - the same N rows: nothing computed;
* ``plus_1pct``  - N + N/100 rows: only the new 1 % computed;
* ``successive`` - on a store holding ``--base`` rows, ``--runs`` runs (default 20) that each
  add ``--step`` new rows (default 500): the summed time of those runs.

Each figure gives local and S3 seconds, their ratio, and the HTTP requests the S3 run made
(``successive``: its last run, and the total of every run), counted by kind (GET, LIST, PUT,
HEAD, POST) by the server script the tests use (``tests/databases/s3_server.py``). Goals:
first run, rerun and +1 % each <= 2x local; successive runs <= 3x local.

Trials. The phases run ``--repeats`` times (default 3), each time on fresh stores, the local
run and the S3 run of a phase back to back, so each trial's ratio compares two runs seconds
apart. A figure's ``ratio`` is the median of its trials' ratios (``trial_ratios`` lists them),
its seconds the medians of each side, and its requests those of the last trial. A single
trial is a sub-second run on each side, and on this shared 2-core machine one trial's ratio
moved between 1.1 and 2.2 within an hour (the local run alone between 0.56 and 0.93 s).

The function is trivial (``x + 1``) through a ``LocalExecutor``; timed: building the node and
``node.run()`` (interpreter start-up and data generation are not). Work claims are off (one
process runs at a time): they engage when the faster of the first two calls times the missing
rows reaches 5 s, and on a loaded machine a call of ``x + 1`` was seen to take 50 us, which
engaged them at 100k rows (16 buckets: three commits each, 17 data files per table), so the
figures depended on the load. ``benchmarks/work_claims_s3.py`` measures claims on S3.

    .venv/bin/python benchmarks/s3_store.py [--n 100000] [--base 10000] [--runs 20] [--repeats 3]

Prints one JSON object per figure. ``--paths``: the S3 requests by kind and object key
pattern instead of by kind (which files cost requests).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod.databases import DeltaTableDatabase
from orcapod.executors import LocalExecutor
from orcapod.functions import FunctionPod, PythonPacketFunction
from orcapod.nodes import FunctionNode
from orcapod.sources import ArrowTableSource

BUCKET = "orcapod-bench"


def increment(x: int) -> int:
    return x + 1


SERVER = Path(__file__).resolve().parents[1] / "tests" / "databases" / "s3_server.py"


def start_server() -> tuple[str, subprocess.Popen[str]]:
    """moto's S3 server with the tests' request counter, in a subprocess on loopback."""
    proc = subprocess.Popen([sys.executable, str(SERVER)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return f"http://127.0.0.1:{int(proc.stdout.readline())}", proc


def request_counts(endpoint: str, what: str = "_counts") -> dict[str, int]:
    """Requests so far by kind (``_counts``) or by kind and key pattern (``_paths``)."""
    with urllib.request.urlopen(f"{endpoint}/{what}", timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def storage_options(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }


def phase(n: int, store: str, endpoint: str | None) -> dict[str, Any]:
    """One run of the node over rows 0..n in this (fresh) process."""
    values = np.arange(n, dtype=np.int64)
    table = pa.table({"id": values, "x": values})  # (data generation: not timed)
    start = time.perf_counter()
    src = ArrowTableSource(table, tag_columns=["id"], source_id="bench", record_id_column="id")
    options = None if endpoint is None else storage_options(endpoint)
    node = FunctionNode(
        FunctionPod(PythonPacketFunction(increment, "y")),
        src,
        DeltaTableDatabase(store, storage_options=options),
    )
    node.executor = LocalExecutor()
    node.work_claims = None  # one process: see the module docstring
    summary = node.run()
    seconds = time.perf_counter() - start
    assert summary.total == n and summary.failed == 0, summary
    return {"seconds": seconds, "computed": summary.computed, "reused": summary.reused}


def _child(n: int, store: str, endpoint: str | None) -> dict[str, Any]:
    args = [sys.executable, __file__, "--phase", "--n", str(n), "--store", store]
    if endpoint is not None:
        args += ["--endpoint", endpoint]
    done = subprocess.run(args, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark phase {args} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


class Store:
    """One local or S3 store and the requests its runs made."""

    def __init__(self, location: str, endpoint: str | None, what: str = "_counts") -> None:
        self.location, self.endpoint, self.what = location, endpoint, what

    def run(self, n: int) -> tuple[dict[str, Any], dict[str, int]]:
        before = request_counts(self.endpoint, self.what) if self.endpoint else {}
        result = _child(n, self.location, self.endpoint)
        after = request_counts(self.endpoint, self.what) if self.endpoint else {}
        requests = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
        return result, requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="rows of the big node")
    parser.add_argument("--base", type=int, default=10_000, help="rows before successive runs")
    parser.add_argument("--runs", type=int, default=20, help="successive runs")
    parser.add_argument("--step", type=int, default=500, help="new rows per successive run")
    parser.add_argument("--repeats", type=int, default=3, help="trials of every phase")
    parser.add_argument(
        "--paths", action="store_true", help="S3 requests by kind and key pattern, not kind"
    )
    parser.add_argument("--phase", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="small smoke sizes")
    args = parser.parse_args()
    if args.quick:
        args.n, args.base, args.runs, args.repeats = 2_000, 200, 2, 1
    if args.phase:
        print(json.dumps(phase(args.n, args.store, args.endpoint)), flush=True)
        return

    endpoint, server = start_server()
    try:
        measure(args, endpoint)
    finally:
        server.kill()
        server.communicate()


def measure(args: argparse.Namespace, endpoint: str) -> None:
    """Every figure, printed as it is measured."""
    import boto3

    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=BUCKET)
    with tempfile.TemporaryDirectory(prefix="orcapod-bench-s3-") as root:

        def stores(name: str) -> tuple[Store, Store]:
            return (
                Store(str(Path(root, name)), None),
                Store(f"s3://{BUCKET}/{name}", endpoint, "_paths" if args.paths else "_counts"),
            )

        n, plus = args.n, args.n + args.n // 100
        phases = (("first_run", n), ("rerun", n), ("plus_1pct", plus))
        trials: dict[str, list[tuple[float, float, dict[str, int]]]] = {}
        for trial in range(args.repeats):
            local, s3 = stores(f"big{trial}")
            for name, rows in phases:
                (lr, _), (sr, requests) = local.run(rows), s3.run(rows)
                trials.setdefault(name, []).append((lr["seconds"], sr["seconds"], requests))
        for name, rows in phases:
            _median_figure(name, rows, trials[name], goal_ratio=2.0)

        successive: list[tuple[float, float, dict[str, int]]] = []
        for trial in range(args.repeats):
            local, s3 = stores(f"successive{trial}")
            local.run(args.base)
            s3.run(args.base)
            totals = {"local": 0.0, "s3": 0.0}
            requests_per_run: list[int] = []
            for i in range(1, args.runs + 1):
                rows = args.base + i * args.step
                totals["local"] += local.run(rows)[0]["seconds"]
                result, requests = s3.run(rows)
                totals["s3"] += result["seconds"]
                requests_per_run.append(sum(requests.values()))
            successive.append((totals["local"], totals["s3"], requests))
        _median_figure(
            "successive",
            args.base + args.runs * args.step,
            successive,
            runs=args.runs,
            step=args.step,
            goal_ratio=3.0,
            s3_requests_per_run=requests_per_run,
        )


def _median_figure(
    name: str, n: int, trials: list[tuple[float, float, dict[str, int]]], **extra: Any
) -> dict[str, Any]:
    """Print one figure from paired trials (local seconds, S3 seconds, S3 requests): the
    median seconds of each side, the ratio the median of the trials' own ratios, the requests
    those of the last trial."""
    ratios = [s3 / local for local, s3, _ in trials]
    requests = trials[-1][2]
    figure = {
        "benchmark": f"s3_store.{name}",
        "n": n,
        "local_seconds": round(statistics.median(local for local, _, _ in trials), 4),
        "s3_seconds": round(statistics.median(s3 for _, s3, _ in trials), 4),
        "ratio": round(statistics.median(ratios), 2),
        "trial_ratios": [round(r, 2) for r in ratios],
        **extra,
        "s3_requests": requests,
        "s3_requests_total": sum(requests.values()),
    }
    print(json.dumps(figure), flush=True)
    return figure


if __name__ == "__main__":
    main()
