"""Progress bars: drawn on a terminal (a real pseudo-terminal), never into a pipe or a log."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from rich.console import Console

from orcapod.databases import InMemoryArrowDatabase
from orcapod.functions import function_pod
from orcapod.pipeline import Pipeline, ProgressObserver
from orcapod.sources import DictSource

SCRIPT = textwrap.dedent(
    """
    import sys, time, warnings
    from orcapod.databases import DeltaTableDatabase
    from orcapod.functions import function_pod
    from orcapod.pipeline import Pipeline, ProgressObserver
    from orcapod.sources import DictSource

    @function_pod("y")
    def slow_square(x: int) -> int:
        time.sleep(0.05)
        if x == 7:
            raise ValueError("seven")
        return x * x

    warnings.simplefilter("ignore")
    pipeline = Pipeline("bars", DeltaTableDatabase("store"))
    with pipeline:
        slow_square.pod(DictSource([{"k": i, "x": i} for i in range(12)], tag_columns=["k"]))
    if sys.argv[1] == "mine":
        pipeline.run(observer=ProgressObserver())
    else:
        pipeline.run(progress=sys.argv[1] == "on")
    print("done")
    """
)


def run_script(tmp_path: Path, progress: str, terminal: bool) -> tuple[str, str]:
    """Run the script with stderr on a pseudo-terminal (or a pipe); (stdout, stderr)."""
    (tmp_path / "script.py").write_text(SCRIPT)
    command = [sys.executable, "script.py", progress]
    if not terminal:
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=True)
        return done.stdout, done.stderr
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        command, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal closed: the child exited
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.stdout is not None
    with proc.stdout:
        stdout = proc.stdout.read().decode()
    assert proc.wait() == 0
    return stdout, b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_a_terminal_shows_a_bar_per_node_with_counts(tmp_path):
    stdout, terminal = run_script(tmp_path, "on", terminal=True)
    assert stdout.strip() == "done"
    assert "slow_square (function)" in terminal
    assert "12/12" in terminal
    assert "11 computed, 0 reused" in terminal and "1 failed" in terminal
    assert "━" in terminal  # the bar itself


@pytest.mark.slow
def test_a_users_own_progress_observer_replaces_the_default(tmp_path):
    stdout, terminal = run_script(tmp_path, "mine", terminal=True)
    assert stdout.strip() == "done" and "12/12" in terminal


@pytest.mark.slow
def test_progress_false_draws_nothing_on_a_terminal(tmp_path):
    _, terminal = run_script(tmp_path, "off", terminal=True)
    assert "slow_square (function)" not in terminal and "━" not in terminal


@pytest.mark.slow
def test_nothing_is_drawn_when_stderr_is_not_a_terminal(tmp_path):
    stdout, stderr = run_script(tmp_path, "on", terminal=False)
    assert stdout.strip() == "done"
    assert "slow_square" not in stderr and "━" not in stderr


@function_pod("y")
def square(x: int) -> int:
    return x * x


def test_an_explicit_progress_observer_draws_on_its_console():
    pipeline = Pipeline("bars", InMemoryArrowDatabase())
    with pipeline:
        square.pod(DictSource([{"k": i, "x": i} for i in range(5)], tag_columns=["k"]))
    out = io.StringIO()
    pipeline.run(observer=ProgressObserver(Console(file=out, width=120)))
    pipeline.run(observer=ProgressObserver(Console(file=out, width=120)))
    lines = [line for line in out.getvalue().splitlines() if line.startswith("square")]
    assert "5/5" in lines[0] and "5 computed, 0 reused" in lines[0]
    assert "0 computed, 5 reused" in lines[-1]
    text = out.getvalue().splitlines()
    assert any("DictSource (source)" in line and "5 rows" in line for line in text)
