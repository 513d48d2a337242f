"""Runs of one function node sharing a persistent store: the calls a run times before it
decides whether to share are made under a claim, so a run that starts meanwhile joins instead
of making them again, and a run that keeps short work to itself lets go of that claim."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

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
