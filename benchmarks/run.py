"""Run every ``benchmarks/*.py`` script (except this runner) and pass its JSON lines through.

    .venv/bin/python benchmarks/run.py [--quick] [name ...]

``--quick`` is forwarded to each script (small smoke sizes). Names restrict the run to those
scripts (``hashing`` or ``hashing.py``). Each script runs in its own interpreter; its stdout
lines are printed as they come; a script that fails adds a JSON line
``{"benchmark": <script>, "error": ...}`` and makes the runner exit non-zero.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


#: scripts that need something installed by hand (see their docstring); run only when named
NEEDS_SETUP = {"compare_earlier", "compat_surface"}


def main() -> int:
    parser = argparse.ArgumentParser(description="run the orcapod benchmarks")
    parser.add_argument("--quick", action="store_true", help="small smoke sizes")
    parser.add_argument("names", nargs="*", help="scripts to run (default: all)")
    args = parser.parse_args()
    wanted = {name.removesuffix(".py") for name in args.names}
    scripts = sorted(
        p
        for p in HERE.glob("*.py")
        if p.name != Path(__file__).name and (p.stem not in NEEDS_SETUP or p.stem in wanted)
    )
    if wanted:
        scripts = [p for p in scripts if p.stem in wanted]
        missing = wanted - {p.stem for p in scripts}
        if missing:
            parser.error(f"no benchmark scripts named {sorted(missing)} in {HERE}")
    failures = 0
    for script in scripts:
        command = [sys.executable, str(script), *(["--quick"] if args.quick else [])]
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            for line in proc.stdout:
                print(line, end="", flush=True)
            stderr = proc.stderr.read()
            code = proc.wait()
        if code != 0:
            failures += 1
            tail = stderr.strip().splitlines()[-5:]
            print(json.dumps({"benchmark": script.stem, "error": f"exit {code}", "stderr": tail}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
