import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from orcapod.cli.demo import run_demo

ORCAPOD = Path(sys.executable).parent / "orcapod"


def test_demo_computes_once_then_reuses_everything(tmp_path):
    out = io.StringIO()
    console = Console(file=out, width=120)
    first = run_demo(tmp_path / "store", console)
    assert (first.computed, first.reused, first.failed) == (10, 0, 0)
    second = run_demo(tmp_path / "store", console)
    assert (second.computed, second.reused, second.failed) == (0, 10, 0)
    text = out.getvalue()
    assert "compute_bmi" in text and "classify" in text and "Nothing was recomputed" in text


@pytest.mark.slow
def test_orcapod_demo_command_twice_in_a_fresh_directory(tmp_path):
    def run():
        done = subprocess.run(
            [str(ORCAPOD), "demo"],
            check=False,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"},
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    first = run()
    assert (tmp_path / "orcapod-demo").is_dir()
    assert "Computed 10 function results" in first
    assert "overweight" in first  # the results table
    second = run()
    assert "Nothing was recomputed" in second
    rows = [line for line in second.splitlines() if "│ function" in line]
    assert len(rows) == 2
    for line in rows:
        cells = [c.strip() for c in line.split("│") if c.strip()]
        assert cells[2:5] == ["0", "5", "0"], line  # computed, reused, failed


def test_version_and_help_still_work():
    done = subprocess.run(
        [str(ORCAPOD), "--version"], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.startswith("orcapod ")


def test_a_demo_store_that_is_a_file_is_an_error_line(tmp_path):
    (tmp_path / "afile").write_text("")
    done = subprocess.run(
        [str(ORCAPOD), "demo", "--store", "afile"],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: The store path")
    assert "is a file, not a directory" in done.stderr and "Traceback" not in done.stderr
