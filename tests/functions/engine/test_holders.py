"""Claim holders: a process on this machine that no longer runs is surely dead (killed,
reaped or not, or its process id reused); anything that cannot be checked is not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from orcapod.functions.engine.holders import surely_dead, this_process

HOLDER = textwrap.dedent(
    """
    import sys, time
    from orcapod.functions.engine.holders import this_process
    print(this_process(), flush=True)
    time.sleep(300)
    """
)


@pytest.fixture
def holder() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A running process and its name (``this_process`` in it)."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        try:
            yield proc, proc.stdout.readline().strip()
        finally:
            proc.kill()


def test_this_process_names_its_machine_pid_and_start() -> None:
    name = this_process()
    machine, pid, start = name.split("/")
    assert machine and pid == str(os.getpid()) and start.isdigit()
    assert not surely_dead(name)


def test_a_killed_process_is_dead_before_and_after_it_is_reaped(
    holder: tuple[subprocess.Popen[str], str],
) -> None:
    proc, name = holder
    assert name.split("/")[1] == str(proc.pid)
    assert not surely_dead(name)  # running
    os.kill(proc.pid, signal.SIGKILL)
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped: a zombie
    assert surely_dead(name)
    proc.wait()
    assert surely_dead(name)  # reaped: its process id is gone


def test_a_reused_process_id_does_not_keep_a_claim_alive() -> None:
    machine, pid, start = this_process().split("/")
    assert surely_dead(f"{machine}/{pid}/{int(start) + 1}")  # same pid, another process


def test_what_cannot_be_checked_is_never_dead() -> None:
    machine = this_process().split("/")[0]
    no_such_pid = 2**22 + 7  # beyond Linux's largest process id
    assert surely_dead(f"{machine}/{no_such_pid}/1")  # this machine: checked
    for name in (None, "", "a", "1/2", f"other-machine/{no_such_pid}/1"):
        assert not surely_dead(name)
