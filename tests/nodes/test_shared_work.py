"""Runs of one function node sharing a persistent store: the calls a run times before it
decides whether to share are made under a claim, so a run that starts meanwhile joins instead
of making them again, and a run that keeps short work to itself lets go of that claim."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from deltalake import DeltaTable

from orcapod.databases import DeltaTableDatabase
from orcapod.functions import FunctionPod, PythonPacketFunction
from orcapod.nodes import FunctionNode
from orcapod.sources import DictSource
from orcapod.types import WorkClaims


class Calls:
    """The calls of ``slow``: which thread computed which row; ``started`` is set once the
    first call began."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.made: list[tuple[str, int]] = []
        self.started = threading.Event()
        self.lock = threading.Lock()

    def node(self, store: Path, n: int, claims: WorkClaims) -> FunctionNode:
        _CALLS[:] = [self]
        rows = [{"id": i, "x": i} for i in range(n)]
        source = DictSource(rows, tag_columns=["id"], source_id="src", record_id_column="id")
        pod = FunctionPod(PythonPacketFunction(slow, "y"))
        node = FunctionNode(pod, source, DeltaTableDatabase(store))
        node.work_claims = claims
        return node


#: the test's ``Calls`` (a function's identity covers its closure, not the module's state)
_CALLS: list[Calls] = []


def slow(x: int) -> int:
    calls = _CALLS[0]
    calls.started.set()
    time.sleep(calls.seconds)
    with calls.lock:
        calls.made.append((threading.current_thread().name, x))
    return 2 * x


def _run_two(calls: Calls, store: Path, n: int, claims: WorkClaims) -> dict[str, float]:
    """Run ``first`` and, once its first call began, ``second``: each its own node and store
    object over ``store``, as two processes would. Returns each run's seconds."""
    seconds: dict[str, float] = {}
    errors: list[BaseException] = []
    # (built here: both nodes hash the same function)
    nodes = {name: calls.node(store, n, claims) for name in ("first", "second")}

    def run(name: str) -> None:
        began = time.monotonic()
        try:
            nodes[name].run()
        except BaseException as err:  # (the test asserts there is none)
            errors.append(err)
        seconds[name] = time.monotonic() - began

    first = threading.Thread(target=run, args=("first",), name="first")
    first.start()
    assert calls.started.wait(30)
    second = threading.Thread(target=run, args=("second",), name="second")
    second.start()
    first.join(60)
    second.join(60)
    assert not errors, errors
    return seconds


def test_a_run_starting_while_another_times_its_first_calls_joins_without_repeating_them(
    tmp_path: Path,
) -> None:
    """The second run starts during the first run's first (timed) call: it finds that call's
    claim and joins, so every row is computed once, the timed ones by the first run only."""
    calls = Calls(0.2)
    n = 8
    _run_two(calls, tmp_path / "store", n, WorkClaims(min_work_seconds=0, poll_seconds=0.05))
    made = Counter(x for _, x in calls.made)
    assert sorted(made) == list(range(n)) and set(made.values()) == {1}
    assert {x for name, x in calls.made if name == "second"}.isdisjoint({0, 1})
    again = calls.node(tmp_path / "store", n, WorkClaims())
    assert again.run().computed == 0
    assert sorted(again.as_table().column("y").to_pylist()) == [2 * i for i in range(n)]


def test_a_run_keeping_short_work_to_itself_lets_a_joining_run_finish_promptly(
    tmp_path: Path,
) -> None:
    """Work too short to share is computed by the run that timed it, which then lets go of
    the buckets it claimed for timing: a run that joined meanwhile waits for them only until
    then, not for the claim's lease to run out."""
    calls = Calls(0.02)
    n = 40  # 0.8 s of work: under min_work_seconds, so the first run keeps it
    lease = 30.0
    seconds = _run_two(
        calls, tmp_path / "store", n, WorkClaims(lease_seconds=lease, poll_seconds=0.05)
    )
    assert sorted(set(x for _, x in calls.made)) == list(range(n))
    assert seconds["second"] < lease / 3
    again = calls.node(tmp_path / "store", n, WorkClaims())
    assert again.run().computed == 0


# -- processes sharing a run in which rows fail ---------------------------------------------

FAILING_WORKER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from orcapod.databases import DeltaTableDatabase
    from orcapod.functions import FunctionPod, PythonPacketFunction
    from orcapod.nodes import FunctionNode
    from orcapod.sources import DictSource
    from orcapod.types import WorkClaims

    # log is a str: a Path constant would be hashed by its (changing) content
    store, log, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    barrier, together = Path(sys.argv[4]), int(sys.argv[5])

    def slow(x: int) -> int:
        time.sleep(0.05)
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()} {x}\\n")
        if str(x) in os.environ["FAIL_ROWS"].split(","):
            raise ValueError(f"row {x} fails")
        return 2 * x

    rows = [{"id": i, "x": i} for i in range(n)]
    source = DictSource(rows, tag_columns=["id"], source_id="src", record_id_column="id")
    pod = FunctionPod(PythonPacketFunction(slow, "y"))
    node = FunctionNode(pod, source, DeltaTableDatabase(store))
    node.work_claims = WorkClaims(lease_seconds=20.0, min_work_seconds=0, poll_seconds=0.05)
    # processes started together begin together (start-up takes seconds on a busy machine)
    (barrier / str(os.getpid())).touch()
    deadline = time.monotonic() + 120
    while len(list(barrier.iterdir())) < together and time.monotonic() < deadline:
        time.sleep(0.02)
    summary = node.run()
    print(summary.computed, summary.reused, summary.failed)
    """
)


def _run_together(tmp_path: Path, n: int, fail: str, together: int) -> list[list[int]]:
    """Run the node in ``together`` processes at once (rows ``fail`` failing); each one's
    ``computed, reused, failed``."""
    script = tmp_path / "worker.py"
    script.write_text(FAILING_WORKER)
    barrier = tmp_path / f"barrier-{len(list(tmp_path.glob('barrier-*')))}"
    barrier.mkdir()
    args = [str(tmp_path / "store"), str(tmp_path / "calls.log"), str(n), str(barrier)]
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), *args, str(together)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "FAIL_ROWS": fail},
        )
        for _ in range(together)
    ]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err for _, err in outputs]
    return [[int(c) for c in out.split()] for out, _ in outputs]


def _calls_made(tmp_path: Path) -> list[tuple[int, int]]:
    """(pid, x) of every call, in the order they finished; the log is emptied."""
    log = tmp_path / "calls.log"
    calls = [
        (int(pid), int(x))
        for pid, x in (line.split() for line in log.read_text().split("\n") if line)
    ]
    log.unlink()
    return calls


@pytest.mark.slow
def test_a_row_failing_in_a_shared_run_is_attempted_once_and_retried_by_the_next_run(
    tmp_path: Path,
) -> None:
    """Two processes share a run in which two rows fail: each failing row is called once in
    all (its failure recorded once), not once per process, and both processes count it as
    failed; the next run calls exactly the failed rows, once each, and then every row has
    its result."""
    n, failing = 60, (7, 41)
    summaries = _run_together(tmp_path, n, ",".join(map(str, failing)), together=2)
    calls = _calls_made(tmp_path)
    made = Counter(x for _, x in calls)
    assert sorted(made) == list(range(n)) and set(made.values()) == {1}  # failing ones too
    assert len({pid for pid, _ in calls}) == 2  # the work was shared
    # every row counted once per process; a row another process saw fail counts as failed
    assert all(sum(s[:3]) == n and s[2] == len(failing) for s in summaries), summaries
    assert sum(s[0] for s in summaries) == n - len(failing)
    failures = [
        p.parent for p in (tmp_path / "store").rglob("_delta_log") if "_failures" in p.parts
    ]
    assert len(failures) == 1
    failed = DeltaTable(str(failures[0])).to_pyarrow_table().column("id").to_pylist()
    assert sorted(failed) == list(failing)  # each failure recorded once

    summaries = _run_together(tmp_path, n, "", together=2)
    assert sorted(x for _, x in _calls_made(tmp_path)) == list(failing)  # retried once each
    assert sum(s[0] for s in summaries) == len(failing)
    assert all(s[2] == 0 for s in summaries), summaries

    assert _run_together(tmp_path, n, "", together=1) == [[0, n, 0]]
    assert not (tmp_path / "calls.log").exists()
