"""ChunkWork: the per-chunk path every function node run shares, on a real Delta store."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from orcapod.databases import DeltaTableDatabase
from orcapod.errors import ExecutionError
from orcapod.functions import FunctionPod, PythonPacketFunction
from orcapod.functions.engine.events import PacketBatch, PacketRun, observing
from orcapod.nodes import FunctionNode
from orcapod.nodes.chunk_work import ChunkWork
from orcapod.nodes.run_settings import RunSettings
from orcapod.pipeline.observers import NoOpObserver
from orcapod.sources import DictSource
from orcapod.types.columns import INPUT_PACKET_HASH, PIPELINE_ENTRY_ID


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


def positive(x: int) -> int:
    if x < 0:
        raise ValueError("negative x")
    return x


def tagless_node(db: DeltaTableDatabase, xs: list[int], **options) -> FunctionNode:
    source = DictSource([{"x": x} for x in xs], source_id="src")  # no tag columns
    return FunctionNode(FunctionPod(PythonPacketFunction(positive, "y")), source, db, **options)


class Describing(NoOpObserver):
    """Keeps what ``run.describe`` gives for every batch of ended calls."""

    def __init__(self) -> None:
        self.described: list[pa.Table] = []

    def on_packets_end(self, run: PacketRun, batch: PacketBatch) -> None:
        self.described.append(run.describe(batch.keys))


def test_the_calls_of_a_tagless_input_are_described_by_their_input_hash_alone(tmp_path):
    observer = Describing()
    with observing(observer):
        tagless_node(DeltaTableDatabase(tmp_path / "store"), [1, 2, 3]).run()
    described = pa.concat_tables(observer.described)
    assert described.column_names == [INPUT_PACKET_HASH]
    assert described.num_rows == 3 and len(set(described.column(0).to_pylist())) == 3


def test_fail_fast_on_a_tagless_input_names_the_row_by_its_input_hash(tmp_path):
    node = tagless_node(DeltaTableDatabase(tmp_path / "store"), [1, -1], error_policy="fail_fast")
    with pytest.raises(ExecutionError, match="negative x") as raised:
        node.run()
    failed_hash = node.failures().column(INPUT_PACKET_HASH).to_pylist()
    assert len(failed_hash) == 1
    assert f"input packet hash {failed_hash[0]!r}" in str(raised.value)
