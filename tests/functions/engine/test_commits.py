"""Results of a shared run committed in a committing thread while the calls go on: calls keep
running during a slow commit; a failed commit fails the run (its error chained) and marks
nothing of it done; a process SIGKILLed during a commit loses only its uncommitted rows.

The stores are real Delta stores whose results commits are made slow or failing by a
subclass of the database (``SlowResults``), in this process or in a worker subprocess."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from orcapod.databases import DeltaTableDatabase
from orcapod.errors import FlushError
from orcapod.functions import FunctionPod, PythonPacketFunction
from orcapod.functions.engine import write
from orcapod.functions.engine.claim_logs import ClaimRow
from orcapod.functions.engine.claims import ClaimBook, bucket_index
from orcapod.nodes import FunctionNode
from orcapod.sources import DictSource
from orcapod.types import FlushPolicy, WorkClaims

#: where ``tick`` notes when each call ended (a str: its value is part of the function's
#: identity, so each test sets it once)
ENDED_LOG = ""


def tick(x: int) -> int:
    time.sleep(0.02)
    with open(ENDED_LOG, "a") as handle:
        handle.write(f"{time.monotonic()}\n")
    return 2 * x


def _ended(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    log = tmp_path / "ended.log"
    monkeypatch.setattr(sys.modules[__name__], "ENDED_LOG", str(log))
    return log


class SlowResults(DeltaTableDatabase):
    """A Delta store whose results writes take ``delay`` seconds each (noting when each
    started and ended) and whose ``fail_at``-th results write raises ``OSError``; it notes
    where the run's claims are (``claims``: in a table or in the store's object log)."""

    def __init__(self, *args: Any, delay: float = 0.0, fail_at: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.delay, self.fail_at = delay, fail_at
        self.writes: list[tuple[float, float, str]] = []  # (start, end, thread name)
        self.claims: tuple[str, ...] = ()

    def object_log(self, path: Sequence[str]) -> Any:
        self.claims = tuple(path)
        return super().object_log(path)

    def add_records(self, path: Sequence[str], *args: Any, **kwargs: Any) -> None:
        if path[0] != "_result" or path[1] == "_claims":  # (claims, records: as they are)
            self.claims = tuple(path) if path[1:2] == ("_claims",) else self.claims
            super().add_records(path, *args, **kwargs)
            return
        started = time.monotonic()
        if len(self.writes) + 1 == self.fail_at:
            self.writes.append((started, started, threading.current_thread().name))
            raise OSError("the disk is full")
        time.sleep(self.delay)
        super().add_records(path, *args, **kwargs)
        self.writes.append((started, time.monotonic(), threading.current_thread().name))


def _node(db: DeltaTableDatabase, n: int, flush_seconds: float = 0.1) -> FunctionNode:
    rows = [{"id": i, "x": i} for i in range(n)]
    source = DictSource(rows, tag_columns=["id"], source_id="src", record_id_column="id")
    node = FunctionNode(FunctionPod(PythonPacketFunction(tick, "y")), source, db)
    node.work_claims = WorkClaims(lease_seconds=60, min_work_seconds=0, poll_seconds=0.05)
    node.flush_policy = FlushPolicy(seconds=flush_seconds)
    return node


def _results(store: Path) -> pa.Table | None:
    """The results table of the store's function (None: none yet)."""
    log = _results_log(store)
    return None if log is None else DeltaTable(str(log.parent)).to_pyarrow_table()


def _results_log(store: Path) -> Path | None:
    """The Delta log of the store's function's results table (None: none yet)."""
    for log in (store / "_result").rglob("_delta_log"):
        if log.parent.relative_to(store / "_result").parts[0] not in ("_claims", "_identity"):
            return log
    return None


def _stored_xs(store: Path) -> list[int]:
    results = _results(store)
    return [] if results is None else [y // 2 for y in results.column("y").to_pylist()]


def _claim_rows(store: Path, claims: Sequence[str]) -> dict[str, list[ClaimRow]]:
    """Every claim row of the run whose claims are at ``claims``, by bucket."""
    return ClaimBook(DeltaTableDatabase(store), tuple(claims), 60.0).rows(None)


def _done_buckets(store: Path, claims: Sequence[str]) -> set[str]:
    rows = _claim_rows(store, claims)
    return {b for b, written in rows.items() if any(r[1] == "done" for r in written)}


def _check_done_buckets_stored(store: Path, done: set[str], stored: set[int], n: int) -> None:
    """Every row of a bucket marked done had its result stored then (the buckets from the
    input hashes of the full results table, after a rerun stored every row)."""
    results = _results(store)
    assert results is not None
    names, which = bucket_index(results.column("__input_packet_hash"), n)
    xs = [y // 2 for y in results.column("y").to_pylist()]
    for x, bucket in zip(xs, (names[i] for i in which), strict=True):
        assert bucket not in done or x in stored, (x, bucket)


def test_a_shared_run_keeps_calling_while_its_results_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _ended(monkeypatch, tmp_path)
    db = SlowResults(tmp_path / "store", delay=0.3)
    assert _node(db, 60).run().computed == 60
    assert sorted(_stored_xs(tmp_path / "store")) == list(range(60))
    # calls ended while a results commit was under way (in the committing thread)
    ended = [float(t) for t in log.read_text().split()]
    assert any(s < t < e for s, e, _ in db.writes for t in ended), (db.writes, ended)


def test_a_failed_background_commit_fails_the_run_and_marks_nothing_of_it_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ended(monkeypatch, tmp_path)
    store = tmp_path / "store"
    db = SlowResults(store, fail_at=2, delay=0.05)
    with pytest.raises(FlushError, match="background") as raised:
        _node(db, 60, flush_seconds=0.05).run()
    assert isinstance(raised.value.__cause__, OSError)
    assert "the disk is full" in str(raised.value.__cause__)
    stored, done = set(_stored_xs(store)), _done_buckets(store, db.claims)
    assert len(stored) < 60
    # a rerun computes exactly the rows whose results were not stored
    rerun = _node(DeltaTableDatabase(store), 60).run()
    assert (rerun.computed, rerun.reused) == (60 - len(stored), len(stored))
    assert sorted(_stored_xs(store)) == list(range(60))  # each row once
    _check_done_buckets_stored(store, done, stored, 60)


def _commits(log: Path) -> int:
    return len(list(log.glob("*.json")))


@pytest.mark.parametrize("every", [0.0, 60.0])
def test_a_shared_run_holds_its_records_back_until_records_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every: float
) -> None:
    """Results are committed by the flush policy; the records pointing at them follow with
    a results commit once ``RECORDS_SECONDS`` have passed, and at the end of the run, when
    every row is recorded."""
    _ended(monkeypatch, tmp_path)
    monkeypatch.setattr(write, "RECORDS_SECONDS", every)
    store = tmp_path / "store"
    assert _node(SlowResults(store, delay=0.05), 60, flush_seconds=0.05).run().computed == 60
    results = _results_log(store)
    logs = store.rglob("_delta_log")
    (records,) = [p for p in logs if "_result" not in p.parts and "_failures" not in p.parts]
    assert results is not None
    assert _commits(results) >= 3
    # held back: one records commit, at the end; else one with every results commit (a
    # batch that joined the commit in flight stores its results in a commit of its own)
    if every:
        assert _commits(records) == 1
    else:
        assert 1 < _commits(records) <= _commits(results)
    recorded = DeltaTable(str(records.parent)).to_pyarrow_table()
    assert sorted(recorded.column("id").to_pylist()) == list(range(60))


WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from orcapod.databases import DeltaTableDatabase
    from orcapod.functions import FunctionPod, PythonPacketFunction
    from orcapod.nodes import FunctionNode
    from orcapod.sources import DictSource
    from orcapod.types import FlushPolicy, WorkClaims

    store, log, n, slow_writes = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]

    class Slow(DeltaTableDatabase):  # every results write takes 1 s, and says when it starts
        writes = 0

        def object_log(self, path):  # (notes where the claims are)
            (store.parent / "claims.json").write_text(json.dumps(list(path)))
            return super().object_log(path)

        def add_records(self, path, *args, **kwargs):
            if path[1:2] == ("_claims",):
                (store.parent / "claims.json").write_text(json.dumps(list(path)))
            if slow_writes == "1" and path[0] == "_result" and path[1] != "_claims":
                Slow.writes += 1
                (store.parent / f"writing-{Slow.writes}").touch()
                time.sleep(1.0)
            super().add_records(path, *args, **kwargs)

    def slow(x: int) -> int:
        time.sleep(0.03)
        with open(log, "a") as handle:
            handle.write(f"{x}\\n")
        return 2 * x

    rows = [{"id": i, "x": i} for i in range(n)]
    source = DictSource(rows, tag_columns=["id"], source_id="src", record_id_column="id")
    node = FunctionNode(FunctionPod(PythonPacketFunction(slow, "y")), source, Slow(store))
    node.work_claims = WorkClaims(lease_seconds=600, min_work_seconds=0, poll_seconds=0.05)
    node.flush_policy = FlushPolicy(seconds=0.1)
    summary = node.run()
    print(summary.computed, summary.reused)
    """
)


@pytest.mark.slow
def test_a_process_killed_during_a_background_commit_loses_only_its_uncommitted_rows(
    tmp_path: Path,
) -> None:
    n, store, log = 80, tmp_path / "store", tmp_path / "calls.log"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    argv = [sys.executable, str(script), str(store), str(log), str(n)]
    victim = subprocess.Popen([*argv, "1"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (tmp_path / "writing-2").exists():  # its second results commit is under way
        assert victim.poll() is None, victim.communicate()[1]
        assert time.monotonic() < deadline, "the worker never committed twice"
        time.sleep(0.01)
    time.sleep(0.3)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate()
    called = {int(line) for line in log.read_text().split()}
    claims = json.loads((tmp_path / "claims.json").read_text())
    stored, done = set(_stored_xs(store)), _done_buckets(store, claims)
    assert stored < called  # the first commit landed, not the one killed
    # the rerun (its claims taken over at once: their process is gone) computes only the
    # rows whose results were not committed; every row ends up stored once
    rerun = subprocess.run([*argv, "0"], check=False, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.split() == [str(n - len(stored)), str(len(stored))]  # computed, reused
    assert sorted(_stored_xs(store)) == list(range(n))
    _check_done_buckets_stored(store, done, stored, n)


def test_claims_are_renewed_while_a_slow_commit_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Results commits of 2 s under a lease of 1.5 s: the buckets computed and waiting for
    their commit stay claimed (renewed while the calls go on, and while the run waits for
    the commit at its end), so no claim of the run ever lapses."""
    _ended(monkeypatch, tmp_path)
    store = tmp_path / "store"
    db = SlowResults(store, delay=2.0)
    node = _node(db, 30)
    node.work_claims = WorkClaims(lease_seconds=1.5, min_work_seconds=0, poll_seconds=0.05)
    assert node.run().computed == 30
    for bucket, written in _claim_rows(store, db.claims).items():  # (oldest first)
        assert written[-1][1] == "done", bucket
        for (_, _, _, expires, _), (_, _, at, _, _) in itertools.pairwise(written):
            assert at <= expires, (bucket, written)  # renewed (or done) before it expired
