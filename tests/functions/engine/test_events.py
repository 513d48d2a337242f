"""Packet events: what a function node run tells a packet observer, on a real Delta store."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest

from orcapod.databases import DeltaTableDatabase
from orcapod.errors import FailedRowsWarning
from orcapod.executors import LocalExecutor
from orcapod.functions import FunctionPod, PythonPacketFunction
from orcapod.functions.engine.events import (
    PacketBatch,
    PacketObserver,
    PacketOutcome,
    PacketRun,
    current_observer,
    observing,
)
from orcapod.nodes import FunctionNode
from orcapod.sources import DictSource

log = logging.getLogger("orcapod.tests.events")


class Recorder:
    """A real packet observer keeping everything it hears."""

    def __init__(self, captures_output: bool = False) -> None:
        self.captures_output = captures_output
        self.runs: list[PacketRun] = []
        self.settled: list[tuple[PacketOutcome, int]] = []
        self.started: list[int] = []
        self.batches: list[PacketBatch] = []
        self.done = 0
        self.threads: set[int] = set()

    def on_packets_start(self, run: PacketRun) -> None:
        self.runs.append(run)

    def on_packets_settled(self, run: PacketRun, outcome: PacketOutcome, rows: int) -> None:
        self.settled.append((outcome, rows))

    def on_packet_start(self, run: PacketRun, key: int) -> None:
        self.started.append(key)
        self.threads.add(threading.get_ident())

    def on_packets_end(self, run: PacketRun, batch: PacketBatch) -> None:
        self.batches.append(batch)

    def on_packets_done(self, run: PacketRun) -> None:
        self.done += 1

    def ended(self) -> list[tuple[int, PacketOutcome, int]]:
        return [
            (k, o, r)
            for b in self.batches
            for k, o, r in zip(b.keys, b.outcomes, b.rows, strict=True)
        ]


def noisy(x: int) -> int | None:
    print(f"out {x}")
    log.warning("log %d", x)
    if x == 3:
        raise ValueError("three is bad")
    if x == 4:
        return None
    return x * 10


async def async_noisy(x: int) -> int | None:
    await asyncio.sleep(0)
    return noisy(x)


def _node(tmp_path: Path, rows: list[dict], fn=noisy, executor=None) -> FunctionNode:
    pf = PythonPacketFunction(fn, "y", function_name="noisy", executor=executor)
    source = DictSource(rows, tag_columns=["k"], source_id="src")
    return FunctionNode(FunctionPod(pf), source, DeltaTableDatabase(tmp_path / "store"))


ROWS = [{"k": i, "x": i} for i in range(6)]


def test_recorder_satisfies_the_protocol():
    assert isinstance(Recorder(), PacketObserver)


def test_without_observer_nothing_is_reported(tmp_path):
    assert current_observer() is None
    with pytest.warns(FailedRowsWarning):
        summary = _node(tmp_path, ROWS).run()
    assert summary.computed == 4


def test_a_run_reports_each_call_with_outcome_and_capture(tmp_path):
    node = _node(tmp_path, ROWS)
    recorder = Recorder(captures_output=True)
    with observing(recorder), pytest.warns(FailedRowsWarning):
        node.run()
    (run,) = recorder.runs
    assert run.label == node.label and run.total == 6 and run.executor_type == "none"
    assert run.record_path == node.record_path
    assert run.node_hash == node.pipeline_hash().to_string()
    assert recorder.done == 1 and recorder.settled == []
    ended = recorder.ended()
    assert sorted(recorder.started) == sorted(k for k, _, _ in ended)
    outcomes = [o for _, o, _ in ended]
    assert outcomes.count(PacketOutcome.COMPUTED) == 4
    assert outcomes.count(PacketOutcome.FAILED) == 1
    assert outcomes.count(PacketOutcome.FILTERED) == 1
    batch = recorder.batches[0]
    failed = batch.outcomes.index(PacketOutcome.FAILED)
    assert isinstance(batch.errors[failed], ValueError)
    assert batch.stdout[failed] == "out 3\n" and batch.stderr[failed] is None
    assert batch.python_logs[failed] == "WARNING:orcapod.tests.events:log 3"
    assert "three is bad" in (batch.tracebacks[failed] or "") and batch.hosts[failed]
    assert all(d >= 0 for d in batch.durations) and all(s > 1e9 for s in batch.started)
    # describe names each packet by the tags of its row
    described = run.describe([batch.keys[failed]]).to_pylist()
    assert described[0]["k"] == 3
    assert described[0]["__input_packet_hash"].startswith("arrow_row_v1:")


def test_without_capture_no_output_is_kept(tmp_path, capsys):
    recorder = Recorder(captures_output=False)
    with observing(recorder), pytest.warns(FailedRowsWarning):
        _node(tmp_path, ROWS).run()
    assert all(c is None for b in recorder.batches for c in b.stdout + b.tracebacks)
    assert "out 0" in capsys.readouterr().out  # printed as usual


def test_second_run_reports_reused_and_filtered_rows_in_bulk(tmp_path):
    node = _node(tmp_path, ROWS)
    with pytest.warns(FailedRowsWarning):
        node.run()
    recorder = Recorder()
    with observing(recorder), pytest.warns(FailedRowsWarning):
        node.run()
    # 4 reused, 1 filtered in bulk; the failed row is retried (and fails again)
    assert sorted(recorder.settled) == [(PacketOutcome.FILTERED, 1), (PacketOutcome.REUSED, 4)]
    assert [o for _, o, _ in recorder.ended()] == [PacketOutcome.FAILED]


def test_same_packet_under_several_tags_is_one_call_settling_several_rows(tmp_path):
    rows = [{"k": i, "x": 1} for i in range(3)] + [{"k": 9, "x": 2}]
    recorder = Recorder()
    with observing(recorder):
        _node(tmp_path, rows).run()
    assert sorted(r for _, _, r in recorder.ended()) == [1, 3]


@pytest.mark.parametrize("fn", [noisy, async_noisy], ids=["sync", "async"])
def test_concurrent_executor_reports_every_call_with_its_capture(tmp_path, fn):
    node = _node(tmp_path, ROWS, fn=fn, executor=LocalExecutor(max_workers=3))
    recorder = Recorder(captures_output=True)
    with observing(recorder), pytest.warns(FailedRowsWarning):
        node.run()
    printed = {}
    for batch in recorder.batches:
        printed.update(zip(batch.keys, batch.stdout, strict=True))
    described = recorder.runs[0].describe(sorted(printed)).to_pylist()
    for row, key in zip(described, sorted(printed), strict=True):
        assert printed[key] == f"out {row['k']}\n"
    assert recorder.runs[0].executor_type == "local"


def test_an_inactive_function_reports_its_rows_as_filtered(tmp_path):
    node = _node(tmp_path, ROWS)
    node.packet_function.set_active(False)
    recorder = Recorder()
    with observing(recorder):
        summary = node.run()
    assert summary.filtered == 6
    assert recorder.settled == [(PacketOutcome.FILTERED, 6)] and recorder.ended() == []


class StartDeaf(Recorder):
    """Says it ignores each call's start."""

    hears_packet_start = False


def test_an_observer_that_ignores_call_starts_is_not_called_per_packet(tmp_path):
    recorder = StartDeaf()
    with observing(recorder), pytest.warns(FailedRowsWarning):
        _node(tmp_path, ROWS).run()
    assert recorder.started == []
    assert sorted(k for k, _, _ in recorder.ended()) == [0, 1, 2, 3, 4, 5]


def quiet_unless_odd(x: int) -> int:
    if x % 2:
        print(f"odd {x}")
    return x


def test_silent_and_noisy_calls_keep_their_own_output(tmp_path):
    node = _node(tmp_path, [{"k": i, "x": i} for i in range(7)], fn=quiet_unless_odd)
    recorder = Recorder(captures_output=True)
    with observing(recorder):
        node.run()
    printed = {}
    for batch in recorder.batches:
        printed.update(zip(batch.keys, batch.stdout, strict=True))
        assert batch.errors == [None] * len(batch) and batch.tracebacks == [None] * len(batch)
    tags = recorder.runs[0].describe(sorted(printed)).column("k").to_pylist()
    for key, k in zip(sorted(printed), tags, strict=True):
        assert printed[key] == (f"odd {k}\n" if k % 2 else None)


def test_a_batch_counts_the_rows_its_calls_settled_per_outcome():
    computed, failed = PacketOutcome.COMPUTED, PacketOutcome.FAILED
    batch = PacketBatch(keys=[0, 1, 2], outcomes=[computed, failed, computed], rows=[1, 3, 2])
    assert batch.rows_with(computed) == 3 and batch.rows_with(failed) == 3
    assert batch.rows_by_outcome() == {computed: 3, failed: 3}
    single = PacketBatch(keys=[0, 1], outcomes=[computed, computed], rows=[1, 1])
    assert single.rows_by_outcome() == {computed: 2}


def slow_two(x: int) -> int:
    if x == 2:
        time.sleep(0.05)
    if x == 3:
        raise ValueError("three is bad")
    return x


def test_sequential_calls_without_capture_keep_each_calls_duration_and_error(tmp_path):
    # one by one in this thread: the call in flight is kept in one slot, not per key
    recorder = Recorder(captures_output=False)
    with observing(recorder), pytest.warns(FailedRowsWarning):
        _node(tmp_path, ROWS, fn=slow_two).run()
    (batch,) = recorder.batches
    by_key = {k: i for i, k in enumerate(batch.keys)}
    assert len(by_key) == 6
    described = {
        row["k"]: key
        for key, row in zip(
            batch.keys, recorder.runs[0].describe(batch.keys).to_pylist(), strict=True
        )
    }
    slow, failing = by_key[described[2]], by_key[described[3]]
    assert batch.durations[slow] >= 0.05
    assert isinstance(batch.errors[failing], ValueError)
    assert batch.tracebacks[failing] is None and batch.hosts[failing] is None
    assert all(e is None for i, e in enumerate(batch.errors) if i != failing)


def _by_tag(recorder: Recorder) -> dict[int, dict]:
    """Every ended call as a dict of its batch fields, by the ``k`` tag of its packet."""
    calls = {}
    for batch in recorder.batches:
        tags = recorder.runs[0].describe(batch.keys).column("k").to_pylist()
        for i, k in enumerate(tags):
            calls[k] = {
                "outcome": batch.outcomes[i],
                "started": batch.started[i],
                "duration": batch.durations[i],
                "error": batch.errors[i],
                "stdout": batch.stdout[i],
                "logs": batch.python_logs[i],
                "traceback": batch.tracebacks[i],
                "host": batch.hosts[i],
            }
    return calls


def slow_noisy(x: int) -> int | None:
    if x == 2:
        time.sleep(0.05)
    return noisy(x) if x in (3, 4, 5) else x


def test_calls_reported_in_bulk_keep_each_calls_time_output_and_failure(tmp_path):
    # an observer deaf to call starts: calls run one by one here are timed and captured
    # around each call and their ends reported in bulk, with the same detail per call
    recorder = StartDeaf(captures_output=True)
    rows = [{"k": i, "x": i} for i in range(8)]
    before = time.time()
    with observing(recorder), pytest.warns(FailedRowsWarning):
        _node(tmp_path, rows, fn=slow_noisy).run()
    calls = _by_tag(recorder)
    assert sorted(calls) == list(range(8)) and recorder.started == []
    assert calls[2]["duration"] >= 0.05 and calls[0]["duration"] < 0.05
    assert all(before - 1 <= c["started"] <= time.time() + 1 for c in calls.values())
    failed = calls[3]
    assert failed["outcome"] is PacketOutcome.FAILED
    assert isinstance(failed["error"], ValueError) and "three is bad" in failed["traceback"]
    assert failed["stdout"] == "out 3\n" and failed["host"]
    assert failed["logs"] == "WARNING:orcapod.tests.events:log 3"
    assert calls[4]["outcome"] is PacketOutcome.FILTERED and calls[4]["stdout"] == "out 4\n"
    assert calls[5]["stdout"] == "out 5\n" and calls[5]["error"] is None
    for k in (0, 1, 2, 6, 7):  # silent calls: nothing captured, nothing formatted
        assert calls[k]["outcome"] is PacketOutcome.COMPUTED
        assert calls[k]["stdout"] is calls[k]["traceback"] is calls[k]["host"] is None


def test_calls_reported_in_bulk_without_capture_keep_errors_and_print_as_usual(tmp_path, capsys):
    recorder = StartDeaf(captures_output=False)
    with observing(recorder), pytest.warns(FailedRowsWarning):
        _node(tmp_path, [{"k": i, "x": i} for i in range(8)], fn=slow_noisy).run()
    calls = _by_tag(recorder)
    assert calls[2]["duration"] >= 0.05
    assert isinstance(calls[3]["error"], ValueError) and calls[3]["traceback"] is None
    assert all(c["stdout"] is None for c in calls.values())
    assert "out 5" in capsys.readouterr().out


def test_a_batch_says_when_none_of_its_calls_failed_or_wrote_anything(tmp_path):
    recorder = StartDeaf(captures_output=True)
    with observing(recorder):
        _node(tmp_path, [{"k": i, "x": i} for i in range(7)], fn=quiet_unless_odd).run()
    assert not any(b.quiet for b in recorder.batches)  # odd calls printed
    quiet = StartDeaf(captures_output=True)
    with observing(quiet):
        _node(tmp_path / "2", [{"k": i, "x": 2 * i} for i in range(7)], fn=quiet_unless_odd).run()
    assert quiet.batches and all(b.quiet for b in quiet.batches)
    assert all(c is None for b in quiet.batches for c in b.stdout + b.hosts)
