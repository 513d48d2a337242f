"""Processes sharing one function node through work claims, on one Delta store.

``N`` rows (default 200) whose function sleeps ``--sleep`` seconds (default 0.05: I/O-bound,
so the machine's cores are not the limit). Figures (one JSON object per line):

* ``one_process``: wall time of one process computing every row;
* ``processes``: wall time of ``--processes`` (default 4) processes started together on a
  fresh store, the ratio to one process (goal <= 0.35 for 4; the median of ``--repeats``
  paired trials, default 3, each one process then the processes on fresh stores, listed in
  ``trial_ratios``), and how many calls ran in total
  (each row once: the calls a process times before deciding to share are made under a claim,
  which the others starting with it find);
  ``run_ratio_to_one`` compares the node runs alone (first process ready to run to the last
  one finished), without process start-up and imports, which 4 processes on 2 cores share;
* ``killed``: the same with one process SIGKILLed midway (once half the rows are computed,
  and the victim has computed rows of its own, so it holds claims): ``rows_done_after_kill``
  is the time from the kill to the last row computed (goal: within one lease, ``--lease``
  seconds: the others take over its buckets at once, as its process is gone, not a lease
  later), ``seconds_after_kill`` to the last process's exit; every row must be computed.

The workers run with Python's bytecode caches as an installed package has them: an untimed
warm-up worker (8 rows, its own store) runs first, with ``PYTHONDONTWRITEBYTECODE`` unset for
every worker (with it set and no caches, each process compiles orcapod at start-up, about
0.2 s of CPU that 4 processes on 2 cores share).

    .venv/bin/python benchmarks/work_claims.py [--n 200] [--processes 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

WORKER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from orcapod.databases import DeltaTableDatabase
    from orcapod.functions import FunctionPod, PythonPacketFunction
    from orcapod.types import WorkClaims
    from orcapod.nodes import FunctionNode
    from orcapod.sources import DictSource

    store, log, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    pause, lease = float(sys.argv[4]), float(sys.argv[5])

    def slow(x: int) -> int:
        time.sleep(pause)
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()} {x} {time.time()}\\n")
        return 2 * x

    rows = [{"id": i, "x": i} for i in range(n)]
    source = DictSource(rows, tag_columns=["id"], source_id="src", record_id_column="id")
    pod = FunctionPod(PythonPacketFunction(slow, "y"))
    node = FunctionNode(pod, source, DeltaTableDatabase(store))
    node.work_claims = WorkClaims(lease_seconds=lease, poll_seconds=0.1)
    ready = time.time()
    node.run()
    with open(log, "a") as handle:
        handle.write(f"run {ready} {time.time()}\\n")
    """
)


def _calls(log: Path) -> list[tuple[int, int, float]]:
    """(pid, x, time) of every finished call."""
    if not log.exists():
        return []
    lines = [line.split() for line in log.read_text().splitlines()]
    return [
        (int(a), int(b), float(c)) for a, b, c in (x for x in lines if len(x) == 3) if a != "run"
    ]


def _run(root: Path, args: argparse.Namespace, count: int, kill: bool) -> dict[str, object]:
    root.mkdir(parents=True)
    store, log = root / "store", root / "calls.log"
    script = root / "worker.py"
    script.write_text(WORKER)
    argv = [str(store), str(log), str(args.n), str(args.sleep), str(args.lease)]
    start = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    procs = [subprocess.Popen([sys.executable, str(script), *argv], env=env) for _ in range(count)]
    killed_at = None
    if kill:  # midway: half the rows done, and the victim holds claims (computed 3+ rows)
        victim = procs[0].pid
        while procs[0].poll() is None:
            calls = _calls(log)
            if 2 * len(calls) >= args.n and sum(pid == victim for pid, _, _ in calls) > 2:
                os.kill(victim, signal.SIGKILL)
                killed_at = time.time()
                break
            time.sleep(0.01)
    codes = [p.wait() for p in procs]
    seconds = time.perf_counter() - start
    calls = _calls(log)
    xs = [x for _, x, _ in calls]
    lines = [line.split() for line in log.read_text().splitlines()]
    runs = [(float(line[1]), float(line[2])) for line in lines if line[0] == "run"]
    ok = codes[1:] == [0] * (count - 1) and (kill or codes[0] == 0)
    assert ok, f"a worker failed: {codes}"
    assert killed_at is not None or not kill, "the victim finished before it could be killed"
    assert sorted(set(xs)) == list(range(args.n)), "rows left uncomputed"
    out: dict[str, object] = {"seconds": round(seconds, 3), "calls": len(xs), "rows": args.n}
    # the node runs alone, without process start-up and imports: from the first process
    # ready to run to the last one finished
    out["run_seconds"] = round(max(end for _, end in runs) - min(r for r, _ in runs), 3)
    if killed_at is not None:
        out["rows_done_after_kill"] = round(max(t for _, _, t in calls) - killed_at, 3)
        out["seconds_after_kill"] = round(time.time() - killed_at, 3)
    out["load"] = os.getloadavg()[0]
    return out


def warm_up(root: Path, args: argparse.Namespace) -> None:
    """One untimed worker on 8 rows: bytecode caches written (module docstring)."""
    _run(root, argparse.Namespace(**{**vars(args), "n": 8}), 1, False)


def processes_figure(
    name: str, trials: list[tuple[dict[str, object], dict[str, object]]], **extra: object
) -> dict[str, object]:
    """The ``processes`` figure over paired trials (one process, then the processes, on fresh
    stores): ``ratio_to_one`` and ``run_ratio_to_one`` are the medians of the trials' own
    ratios (``trial_ratios`` lists them), the other fields those of the last trial."""
    ratios = [float(many["seconds"]) / float(one["seconds"]) for one, many in trials]  # type: ignore[arg-type]
    run_ratios = [
        float(many["run_seconds"]) / float(one["run_seconds"])  # type: ignore[arg-type]
        for one, many in trials
    ]
    return {
        "benchmark": name,
        **extra,
        **trials[-1][1],
        "ratio_to_one": round(statistics.median(ratios), 3),
        "run_ratio_to_one": round(statistics.median(run_ratios), 3),
        "trial_ratios": [round(r, 3) for r in ratios],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--sleep", type=float, default=0.05)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--lease", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3, help="paired trials")
    parser.add_argument("--quick", action="store_true", help="small smoke sizes")
    args = parser.parse_args()
    if args.quick:
        args.n, args.repeats = 24, 1
    with tempfile.TemporaryDirectory() as tmp:
        warm_up(Path(tmp) / "warm", args)
        trials = []
        for trial in range(args.repeats):
            one = _run(Path(tmp) / f"one{trial}", args, 1, False)
            print(json.dumps({"benchmark": "work_claims.one_process", "trial": trial, **one}))
            many = _run(Path(tmp) / f"many{trial}", args, args.processes, False)
            trials.append((one, many))
        figure = processes_figure(
            "work_claims.processes", trials, processes=args.processes, goal_ratio=0.35
        )
        print(json.dumps(figure))
        killed = _run(Path(tmp) / "killed", args, args.processes, True)
        print(
            json.dumps(
                {
                    "benchmark": "work_claims.killed",
                    "processes": args.processes,
                    "lease_seconds": args.lease,
                    **killed,
                }
            )
        )


if __name__ == "__main__":
    main()
