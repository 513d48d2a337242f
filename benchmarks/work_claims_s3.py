"""Processes sharing one function node through work claims, on one S3 store.

The setup of ``benchmarks/work_claims.py`` (its worker script and its runner, imported from
it), with the store on ``s3://<bucket>/<run>`` served by a moto server this script starts on
127.0.0.1 (the tests' ``tests/databases/s3_server.py``, which counts requests). ``N`` rows
(default 200) whose function sleeps ``--sleep`` seconds (default 0.05). Figures (one JSON object
per line), each with the S3 requests its processes made, by kind, and the CPU seconds of the
S3 server and of the worker processes (steadier than wall time on a shared machine):

* ``one_process``: wall time of one process computing every row;
* ``processes``: wall time of ``--processes`` (default 4) processes started together on a
  fresh store, the ratio to one process (goal <= 0.5 for 4; the median of ``--repeats``
  paired trials, default 3, each one process then the processes on fresh prefixes, listed in
  ``trial_ratios``), and how many calls ran in total (each row once, as in
  ``work_claims.py``);
* ``killed`` (with ``--kill``): the same with one process SIGKILLed after ``--kill-after``
  seconds.

    .venv/bin/python benchmarks/work_claims_s3.py [--n 200] [--processes 4] [--kill]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import work_claims

SERVER = Path(__file__).resolve().parents[1] / "tests" / "databases" / "s3_server.py"
BUCKET = "orcapod-claims"

# the local worker, with its store on S3: the run's folder name picks a fresh prefix
WORKER = work_claims.WORKER.replace(
    "DeltaTableDatabase(store)",
    "DeltaTableDatabase(f\"s3://{os.environ['BENCH_BUCKET']}/{store.parent.name}\", "
    "storage_options=__import__('json').loads(os.environ['BENCH_S3_OPTIONS']))",
)
assert WORKER != work_claims.WORKER, "work_claims.WORKER changed: update the replacement"


def _counts(endpoint: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{endpoint}/_counts", timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def _counts_of(endpoint: str, what: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{endpoint}/{what}", timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def _by_file(by_path: dict[str, int]) -> dict[str, int]:
    """Requests by kind, table (claims, results, records, other) and file (log entry,
    log listing, checkpoint, data file, sidecar, and the claims' object log: its entries
    and listings)."""
    out: dict[str, int] = {}
    for key, count in by_path.items():
        kind, _, where = key.partition(" ")
        table = (
            "claims"
            if "_claims" in where
            else "results"
            if "/_result/" in where and "_identity" not in where
            else "records"
            if "schema" in where
            else "other"
        )
        file = (
            "object log listing"
            if "?prefix=" in where and "_entries" in where
            else "object log entry"
            if "/_entries/" in where
            else "log listing"
            if "?prefix=" in where
            else "checkpoint"
            if "checkpoint" in where
            else "log entry"
            if "_delta_log" in where
            else "data file"
            if "/part-" in where
            else "sidecar"
            if "_orcapod" in where
            else "other"
        )
        name = f"{kind} {table} {file}"
        out[name] = out.get(name, 0) + count
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of process ``pid`` so far (None where /proc is missing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _workers_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(
    root: Path,
    args: argparse.Namespace,
    count: int,
    kill: float | None,
    endpoint: str,
    server: int,
) -> dict[str, object]:
    before, paths = _counts(endpoint), _counts_of(endpoint, "_paths")
    server_cpu, workers_cpu = _cpu_seconds(server), _workers_cpu()
    out = work_claims._run(root, args, count, kill)
    requests = _delta(before, _counts(endpoint))
    server_after = _cpu_seconds(server)
    figure = {**out, "s3_requests": requests, "s3_requests_total": sum(requests.values())}
    # CPU time is steadier than wall time on a shared machine: the S3 server's (every request
    # costs it) and the worker processes' (start-up included)
    if server_cpu is not None and server_after is not None:
        figure["server_cpu_seconds"] = round(server_after - server_cpu, 2)
    figure["workers_cpu_seconds"] = round(_workers_cpu() - workers_cpu, 2)
    if args.paths:  # requests by table and file kind, and the most requested key patterns
        by_path = _delta(paths, _counts_of(endpoint, "_paths"))
        figure["s3_requests_by_file"] = _by_file(by_path)
        figure["s3_requests_by_path"] = dict(sorted(by_path.items(), key=lambda kv: -kv[1])[:25])
    return figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--sleep", type=float, default=0.05)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--lease", type=float, default=3.0)
    parser.add_argument("--kill", action="store_true", help="also the SIGKILL figure")
    parser.add_argument("--kill-after", type=float, default=2.0)
    parser.add_argument("--paths", action="store_true", help="requests by file pattern")
    parser.add_argument("--one-only", action="store_true", help="only the one-process figure")
    parser.add_argument("--repeats", type=int, default=3, help="paired trials")
    parser.add_argument("--quick", action="store_true", help="small smoke sizes")
    args = parser.parse_args()
    if args.quick:
        args.n, args.repeats = 24, 1
    server = subprocess.Popen([sys.executable, str(SERVER)], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    endpoint = f"http://127.0.0.1:{int(server.stdout.readline())}"
    try:
        import boto3

        options = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        ).create_bucket(Bucket=BUCKET)
        os.environ["BENCH_BUCKET"] = BUCKET
        os.environ["BENCH_S3_OPTIONS"] = json.dumps(options)
        work_claims.WORKER = WORKER
        with tempfile.TemporaryDirectory() as tmp:
            work_claims.warm_up(Path(tmp) / "warm", args)  # (bytecode caches written)
            trials = []
            for trial in range(1 if args.one_only else args.repeats):
                # (a worker's store prefix is its run folder's name: one per run)
                one = _run(Path(tmp) / f"one{trial}", args, 1, None, endpoint, server.pid)
                print(
                    json.dumps({"benchmark": "work_claims_s3.one_process", "trial": trial, **one}),
                    flush=True,
                )
                if args.one_only:
                    return
                many = _run(
                    Path(tmp) / f"many{trial}", args, args.processes, None, endpoint, server.pid
                )
                trials.append((one, many))
            figure = work_claims.processes_figure(
                "work_claims_s3.processes",
                trials,
                processes=args.processes,
                goal_ratio=0.5,
                load_1min=os.getloadavg()[0],
            )
            print(json.dumps(figure), flush=True)
            if args.kill:
                killed = _run(
                    Path(tmp) / "killed",
                    args,
                    args.processes,
                    args.kill_after,
                    endpoint,
                    server.pid,
                )
                figure = {
                    "benchmark": "work_claims_s3.killed",
                    "processes": args.processes,
                    "lease_seconds": args.lease,
                    **killed,
                }
                print(json.dumps(figure), flush=True)
    finally:
        server.kill()
        server.communicate()


if __name__ == "__main__":
    main()
