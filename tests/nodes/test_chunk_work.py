"""ChunkWork: the per-chunk path every function node run shares, on a real Delta store."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from orcapod.databases import DeltaTableDatabase
from orcapod.functions import FunctionPod, PythonPacketFunction
from orcapod.nodes import FunctionNode
from orcapod.nodes.chunk_work import ChunkWork
from orcapod.nodes.run_settings import RunSettings
from orcapod.sources import DictSource
from orcapod.types.columns import PIPELINE_ENTRY_ID


def add_one(x: int) -> int:
    return x + 1


def node_over(db: DeltaTableDatabase, values: dict[int, int]) -> FunctionNode:
    rows = [{"k": k, "x": x} for k, x in values.items()]
    source = DictSource(rows, tag_columns=["k"], source_id="src")
    return FunctionNode(FunctionPod(PythonPacketFunction(add_one, "y")), source, db)


def chunk_of(node: FunctionNode) -> ChunkWork:
    settings = RunSettings(
        node.label, node._pod, node._input.read, node.error_policy, node.cache_match,
        node.flush_policy, None,
    )  # fmt: skip
    return ChunkWork(settings, node._input.plan(), node._store())


def test_a_packet_under_two_tags_is_one_miss_whose_records_cover_both_rows(tmp_path):
    node = node_over(DeltaTableDatabase(tmp_path / "store"), {1: 5, 2: 5, 3: 6})
    work = chunk_of(node)
    assert work.lookup() is None  # nothing stored yet: no hit records
    assert len(work.misses) == 2  # packets x=5 and x=6
    result_id = pa.array(["result-id"], pa.large_string())
    per_packet = [work.records_for(np.array([p]), result_id, True) for p in work.misses]
    tags = sorted(sorted(r.column("k").to_pylist()) for r in per_packet)
    assert tags == [[1, 2], [3]]
    both = next(r for r in per_packet if r.num_rows == 2)
    assert len(set(both.column(PIPELINE_ENTRY_ID).to_pylist())) == 2
    for packet in work.misses.tolist():
        work.mark(packet, {"y": 0})
    assert work.summary().tolist() == [3, 0, 0, 0]  # computed, reused, filtered, failed


def test_after_a_run_every_entry_is_reused_and_nothing_is_called(tmp_path):
    db = DeltaTableDatabase(tmp_path / "store")
    node_over(db, {1: 1, 2: 2}).run()
    work = chunk_of(node_over(db, {1: 1, 2: 2}))
    assert work.lookup() is None and len(work.misses) == 0
    assert work.summary().tolist() == [0, 2, 0, 0]


def test_a_new_tag_for_a_stored_packet_is_a_hit_recorded_without_a_call(tmp_path):
    db = DeltaTableDatabase(tmp_path / "store")
    node_over(db, {1: 1}).run()
    work = chunk_of(node_over(db, {1: 1, 2: 1}))
    hits = work.lookup()
    assert hits is not None and hits.column("k").to_pylist() == [2]
    assert len(work.misses) == 0
    assert work.summary().tolist() == [0, 2, 0, 0]


def test_an_inactive_function_calls_nothing_and_its_rows_count_as_filtered(tmp_path):
    node = node_over(DeltaTableDatabase(tmp_path / "store"), {1: 1, 2: 2})
    node._pod.packet_function.set_active(False)
    work = chunk_of(node)
    assert work.lookup() is None and len(work.misses) == 0
    assert work.summary().tolist() == [0, 0, 2, 0]
