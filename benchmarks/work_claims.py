"""Processes sharing one function node through work claims, on one Delta store.

``N`` rows (default 200) whose function sleeps ``--sleep`` seconds (default 0.05: I/O-bound,
so the machine's cores are not the limit). Figures (one JSON object per line):

* ``one_process``: wall time of one process computing every row;
* ``processes``: wall time of ``--processes`` (default 4) processes started together on a
  fresh store, the ratio to one process (goal <= 0.35 for 4), and how many calls ran in total
  (each row once, plus at most the two timed first calls per extra process);
  ``run_ratio_to_one`` compares the node runs alone (first process ready to run to the last
  one finished), without process start-up and imports, which 4 processes on 2 cores share;
* ``killed``: the same with one process SIGKILLed after ``--kill-after`` seconds: the others'
  wall time after the kill, and whether every row was computed (they take over its bucket
  once its lease, ``--lease`` seconds, expires).

    .venv/bin/python benchmarks/work_claims.py [--n 200] [--processes 4]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
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
    from orcapod.functions.engine.claims import WorkClaims
    from orcapod.nodes import FunctionNode
    from orcapod.sources import DictSource

    store, log, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    pause, lease = float(sys.argv[4]), float(sys.argv[5])

    def slow(x: int) -> int:
        time.sleep(pause)
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()} {x}\\n")
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


def _run(
    root: Path, args: argparse.Namespace, count: int, kill_after: float | None
) -> dict[str, object]:
    root.mkdir(parents=True)
    store, log = root / "store", root / "calls.log"
    script = root / "worker.py"
    script.write_text(WORKER)
    argv = [str(store), str(log), str(args.n), str(args.sleep), str(args.lease)]
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, str(script), *argv]) for _ in range(count)]
    killed_at = None
    if kill_after is not None:
        time.sleep(kill_after)
        os.kill(procs[0].pid, signal.SIGKILL)
        killed_at = time.perf_counter()
    codes = [p.wait() for p in procs]
    seconds = time.perf_counter() - start
    lines = [line.split() for line in log.read_text().splitlines()]
    xs = [int(line[1]) for line in lines if len(line) == 2 and line[0] != "run"]
    runs = [(float(line[1]), float(line[2])) for line in lines if line[0] == "run"]
    ok = codes[1:] == [0] * (count - 1) and (kill_after is not None or codes[0] == 0)
    assert ok, f"a worker failed: {codes}"
    assert sorted(set(xs)) == list(range(args.n)), "rows left uncomputed"
    out: dict[str, object] = {"seconds": round(seconds, 3), "calls": len(xs), "rows": args.n}
    # the node runs alone, without process start-up and imports: from the first process
    # ready to run to the last one finished
    out["run_seconds"] = round(max(end for _, end in runs) - min(r for r, _ in runs), 3)
    if killed_at is not None:
        out["seconds_after_kill"] = round(time.perf_counter() - killed_at, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--sleep", type=float, default=0.05)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--lease", type=float, default=3.0)
    parser.add_argument("--kill-after", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = _run(Path(tmp) / "one", args, 1, None)
        print(json.dumps({"benchmark": "work_claims.one_process", **one}))
        many = _run(Path(tmp) / "many", args, args.processes, None)
        ratio = round(many["seconds"] / one["seconds"], 3)
        run_ratio = round(many["run_seconds"] / one["run_seconds"], 3)
        print(
            json.dumps(
                {
                    "benchmark": "work_claims.processes",
                    "processes": args.processes,
                    **many,
                    "ratio_to_one": ratio,
                    "run_ratio_to_one": run_ratio,
                    "goal_ratio": 0.35,
                }
            )
        )
        killed = _run(Path(tmp) / "killed", args, args.processes, args.kill_after)
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
