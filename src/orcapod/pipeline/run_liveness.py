"""Is a run recorded as ``running`` still running?

A run writes its ``running`` row when it starts and its outcome row when it ends
(``orcapod.pipeline.run_recorder``). A process killed while it runs (SIGKILL, SIGTERM without a
handler, an out-of-memory kill, a lost machine) never writes the outcome, so its run - and its
nodes in the catalog - would show ``running`` forever. Each such row names the process that
wrote it (``process``: the machine, pid and start time, as
``orcapod.functions.engine.holders.this_process`` names a work claim's holder), and
``live_status`` shows it as ``interrupted`` once that process is surely gone.

Decisions:

* Only a dead process proves a run stopped. A run's process is judged as work claims' holders
  are (``holders.surely_dead``): on the reader's machine (same boot and pid namespace; a
  hostname is not enough, containers often share one) and no longer running, or its pid now
  belongs to a process started later. A run of another machine, or of a platform without
  ``/proc``, cannot be checked and stays ``running``.
* A newer ended run of the same pipeline proves nothing: several processes may share a store
  and run the same pipeline at once, and one process may run a pipeline in several threads.
* Nothing is written: the stored row stays ``running`` (a reader cannot know the counts of what
  the killed run stored); readers show the status ``live_status`` gives.
"""

from __future__ import annotations

import os

from orcapod.functions.engine.holders import surely_dead, this_process
from orcapod.pipeline.store_layout import Status

__all__ = ["live_status", "process_identity"]


def process_identity() -> tuple[int, str]:
    """This process's id, and its name for ``live_status`` ("" where it cannot be checked)."""
    return os.getpid(), this_process()


def live_status(status: str, process: str | None) -> str:
    """The status to show for a ``_runs`` or ``_catalog`` row with ``status`` written by
    ``process`` (the row's ``process`` column; None in stores written before it existed):
    ``interrupted`` for a ``running`` row whose process is surely gone, else ``status``."""
    if status == Status.RUNNING and surely_dead(process):
        return Status.INTERRUPTED
    return status
