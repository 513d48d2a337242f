"""Start-up time: ``import orcapod``, ``from orcapod import Pipeline`` and ``orcapod --help``.

Each figure is the median wall time of ``--repeats`` (default 7, at least 5) fresh processes,
after one untimed warm-up process that lets Python write its bytecode caches (``.pyc``), as a
user's installed package has them: the benchmark unsets ``PYTHONDONTWRITEBYTECODE`` for its
processes. ``python -c pass`` and ``import pyarrow.compute`` (what orcapod cannot avoid) are
measured the same way for scale.

Goals: ``import orcapod`` <= 0.25 s, ``orcapod --help`` <= 0.4 s.

    .venv/bin/python benchmarks/startup.py [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ORCAPOD = Path(sys.executable).parent / "orcapod"

CASES = {
    "python_bare": [sys.executable, "-c", "pass"],
    "import_pyarrow_compute": [sys.executable, "-c", "import pyarrow.compute"],
    "import_orcapod": [sys.executable, "-c", "import orcapod"],
    "from_orcapod_import_pipeline": [sys.executable, "-c", "from orcapod import Pipeline"],
    "orcapod_help": [str(ORCAPOD), "--help"],
}
GOALS = {"import_orcapod": 0.25, "orcapod_help": 0.4}


def _time(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 processes per figure")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    repeats = 5 if args.quick else max(args.repeats, 5)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["COLUMNS"] = "100"
    for name, command in CASES.items():
        _time(command, env)  # warm-up: bytecode caches written
        times = [_time(command, env) for _ in range(repeats)]
        figure = {
            "benchmark": "startup",
            "case": name,
            "median_s": round(statistics.median(times), 4),
            "min_s": round(min(times), 4),
            "runs": repeats,
        }
        if name in GOALS:
            figure["goal_s"] = GOALS[name]
            figure["meets_goal"] = figure["median_s"] <= GOALS[name]
        print(json.dumps(figure), flush=True)


if __name__ == "__main__":
    main()
