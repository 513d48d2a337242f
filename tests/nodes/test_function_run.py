"""FunctionRun: what a node run records and reports, on a real Delta store."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest

from orcapod.databases import DeltaTableDatabase
from orcapod.errors import FailedRowsWarning
from orcapod.executors import LocalExecutor
from orcapod.functions import FunctionPod, PythonPacketFunction
from orcapod.functions.engine.events import PacketOutcome, observing
from orcapod.nodes import FunctionNode
from orcapod.pipeline import StatusObserver
from orcapod.sources import DictSource
from orcapod.types.columns import RECORDED_AT


def add_one(x: int) -> int:
    return x + 1


def node_over(db: DeltaTableDatabase, values: dict[int, int]) -> FunctionNode:
    rows = [{"k": k, "x": x} for k, x in values.items()]
    source = DictSource(rows, tag_columns=["k"], source_id="src")
    return FunctionNode(FunctionPod(PythonPacketFunction(add_one, "y")), source, db)


def test_records_carry_their_write_time_and_a_changed_input_adds_a_newer_record(tmp_path):
    db = DeltaTableDatabase(tmp_path / "store")
    first = node_over(db, {1: 1, 2: 2})
    first.run()
    second = node_over(db, {1: 1, 2: 5})
    second.run()
    records = db.get_all_records(second.record_path)
    assert records is not None and records.num_rows == 3
    tag2 = records.filter(pc.equal(records.column("k"), 2)).sort_by(RECORDED_AT)
    assert tag2.column(RECORDED_AT).to_pylist()[0] < tag2.column(RECORDED_AT).to_pylist()[1]
    assert second.as_table().to_pylist() == [{"k": 1, "y": 2}, {"k": 2, "y": 6}]


def test_a_status_observer_counts_every_row_of_a_run(tmp_path):
    db = DeltaTableDatabase(tmp_path / "store")
    node_over(db, {1: 1, 2: 2}).run()
    observer = StatusObserver()
    with observing(observer):
        summary = node_over(db, {1: 1, 2: 2, 3: 3, 4: 3}).run()
    counts = observer.progress[summary.label]
    assert counts["total"] == 4 and counts[PacketOutcome.REUSED.value] == 2
    assert counts[PacketOutcome.COMPUTED.value] == 2  # one call settles tags 3 and 4


def scaled(x: int, factor: int = 10) -> tuple[int, str] | None:
    if x % 7 == 3:
        raise ValueError(f"bad x {x}")
    if x % 5 == 4:
        return None  # filtered out
    return x * factor, f"x{x}"


async def scaled_async(x: int, factor: int = 10) -> tuple[int, str] | None:
    return scaled(x, factor)


class _Wrapping(LocalExecutor):
    """A local executor of another type: its calls go through packets, one by one."""


def _run_scaled(tmp_path, name, function, rows, executor):
    db = DeltaTableDatabase(tmp_path / name)
    pf = PythonPacketFunction(
        function, ["y", "label"], function_name="scaled", output_schema={"y": int, "label": str}
    )
    if executor is not None:
        pf.executor = executor
    node = FunctionNode(FunctionPod(pf), DictSource(rows, tag_columns=["k"]), db)
    with pytest.warns(FailedRowsWarning):
        summary = node.run()
    return summary, sorted(node.as_table().to_pylist(), key=lambda r: r["k"])


def test_calls_made_from_column_values_match_calls_made_through_packets(tmp_path):
    """In-process one-by-one runs call the function straight from the input's column values
    (no packet per row). Outputs, filtered rows, failures (only their own row) and optional
    parameters present in the input or not come out as through packets, also for async
    functions."""
    rows = [{"k": k, "x": k} for k in range(60)]
    with_factor = [{"k": k, "x": k, "factor": k % 3} for k in range(60)]
    for label, data in (("default", rows), ("factor", with_factor)):
        expected = _run_scaled(tmp_path, f"{label}-packets", scaled, data, _Wrapping())
        for function in (scaled, scaled_async):
            got = _run_scaled(tmp_path, f"{label}-{function.__name__}", function, data, None)
            assert got[1] == expected[1]
            assert got[0] == expected[0]  # computed, filtered and failed counts
        summary, table = expected
        bad = sum(1 for r in data if r["x"] % 7 == 3)
        kept = [r for r in data if r["x"] % 7 != 3 and r["x"] % 5 != 4]
        assert (summary.failed, summary.computed) == (bad, len(kept))
        assert summary.filtered == len(data) - bad - len(kept)
        factor = {r["k"]: r.get("factor", 10) for r in data}
        assert [(r["k"], r["y"]) for r in table if r["y"] is not None] == [
            (r["k"], r["x"] * factor[r["k"]]) for r in kept
        ]
