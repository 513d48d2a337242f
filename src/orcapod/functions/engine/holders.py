"""Which process holds a work claim, and whether it is surely dead.

A claim's lease covers every way a holder can vanish (a lost machine, a SIGKILL, a pulled
plug), but only a lease period after its last renewal. A holder on the same machine can be
checked at once: each claim names its process as ``<machine>/<pid>/<start>`` and a process
that finds a live-looking claim whose process is on its own machine and no longer runs
treats the claim as expired at once (``surely_dead``).

Decisions:

* ``<machine>`` is the kernel's boot id and the pid namespace (``/proc``): two processes share
  it exactly when they see the same process ids. A hostname would not do: containers on one
  host often share theirs, or two machines have the same one, and a process id read in the
  wrong pid space would make a live holder look dead.
* ``<start>`` is the process's start time (clock ticks since boot): a process id reused by a
  new process after the holder died does not keep the claim alive.
* A zombie (killed, not yet reaped by its parent) is dead. A process ``/proc`` does not show
  is dead only if it cannot be signalled either (``/proc`` may hide other users' processes).
* Where ``/proc`` is missing (macOS, Windows) or does not describe this process (mounted from
  another pid namespace), a process is named ``""`` and never judged dead: its claims expire
  by their lease only. Being wrong the other way would only cost duplicated work, never a
  wrong row, but the check errs towards alive.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

__all__ = ["surely_dead", "this_process"]

_PROC = Path("/proc")


def _stat(pid: int) -> tuple[str, str] | None:
    """``(state, start time)`` of process ``pid`` from ``/proc/<pid>/stat``; None when no such
    process exists."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], fields[19]


@cache
def _machine() -> str:
    """This machine's boot id and pid namespace; "" when ``/proc`` cannot tell."""
    try:
        boot = (_PROC / "sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink(_PROC / "self/ns/pid")
        own = (_PROC / "self/stat").read_text().split(maxsplit=1)[0]
    except (OSError, ValueError):
        return ""
    if not boot or own != str(os.getpid()):  # /proc of another pid namespace
        return ""
    return f"{boot}:{namespace}".replace("/", "_")


def this_process() -> str:
    """This process as a claim names it: ``<machine>/<pid>/<start>`` ("" when unknown)."""
    machine = _machine()
    stat = _stat(os.getpid()) if machine else None
    if stat is None:
        return ""
    return f"{machine}/{os.getpid()}/{stat[1]}"


def surely_dead(process: str | None) -> bool:
    """Is ``process`` (as ``this_process`` names it) on this machine and no longer running?
    False whenever that cannot be known (another machine, an unknown platform, a name from
    elsewhere)."""
    if not process:
        return False
    machine, _, rest = process.partition("/")
    pid, _, start = rest.partition("/")
    if machine != _machine() or not machine or not pid.isdigit():
        return False
    stat = _stat(int(pid))
    if stat is None:  # gone - unless /proc hides other users' processes (hidepid)
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except OSError:  # it exists but is not ours to signal
            return False
        return False
    return stat[0] in ("Z", "X") or stat[1] != start
