"""FunctionRun: what a node run records and reports, on a real Delta store."""

from __future__ import annotations

import pyarrow.compute as pc

from orcapod.databases import DeltaTableDatabase
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
