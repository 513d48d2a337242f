"""run_node: a node's run over a large input goes chunk by chunk, on a real Delta store."""

from __future__ import annotations

from types import SimpleNamespace

import pyarrow as pa
import pytest

from orcapod.databases import DeltaTableDatabase, column_index, spilled_runs
from orcapod.errors import ExecutionError
from orcapod.functions import FunctionPod, PythonPacketFunction
from orcapod.nodes import FunctionNode, node_run
from orcapod.nodes.node_run import _own_version
from orcapod.sources import DictSource
from orcapod.types import ErrorPolicy


def add_one(x: int) -> int:
    if x == 7:
        raise ValueError("seven")
    return x + 1


def node_over(db: DeltaTableDatabase, xs: list[int], **kwargs: object) -> FunctionNode:
    rows = [{"k": k, "x": x} for k, x in enumerate(xs)]
    source = DictSource(rows, tag_columns=["k"], source_id="src")
    node = FunctionNode(FunctionPod(PythonPacketFunction(add_one, "y")), source, db, **kwargs)
    node.chunk_rows = 3
    return node


def test_a_chunked_run_stores_every_row_and_a_rerun_reuses_them(tmp_path):
    db = DeltaTableDatabase(tmp_path / "store")
    node = node_over(db, [1, 2, 3, 4, 5, 6, 8, 9])
    summary = node.run()
    assert (summary.computed, summary.reused, summary.total) == (8, 0, 8)
    summary = node.run()  # every entry found in the records read once at the start
    assert (summary.computed, summary.reused, summary.total) == (0, 8, 8)
    grown = node_over(db, [1, 2, 3, 4, 5, 6, 8, 9, 10])  # another input: results shared
    summary = grown.run()
    assert (summary.computed, summary.reused) == (1, 8)
    assert grown.as_table().column("y").to_pylist() == [2, 3, 4, 5, 6, 7, 9, 10, 11]


def test_a_packet_repeated_in_a_later_chunk_is_computed_once_and_counted_computed(tmp_path):
    db = DeltaTableDatabase(tmp_path / "store")
    node = node_over(db, [1, 2, 3, 4, 1, 2, 1])
    summary = node.run()
    assert (summary.computed, summary.reused, summary.total) == (7, 0, 7)
    results = db.at("_result").get_all_records(node.result_cache.record_path)
    assert results is not None and results.num_rows == 4  # each packet computed once
    assert node.as_table().column("y").to_pylist() == [2, 3, 4, 5, 2, 3, 2]


def test_counts_and_results_are_the_same_when_the_run_spills_its_hash_sets(tmp_path, monkeypatch):
    # tiny thresholds: the run's computed hashes and the results' lookup index (every lookup
    # indexed) keep their runs in temporary files from the second chunk on
    monkeypatch.setattr(node_run, "SPILL_ROWS", 2)
    monkeypatch.setattr(column_index, "MERGED_SPILL_ROWS", 2)
    monkeypatch.setattr(column_index, "MIN_INDEXED_VALUES", 1)
    spilled: list[int] = []  # the filter bits of each run spilled

    real = spilled_runs.SpillFile.spill

    def spill(self: object, run: object, bloom_bits: int) -> object:
        spilled.append(bloom_bits)
        return real(self, run, bloom_bits)  # type: ignore[arg-type]

    monkeypatch.setattr(spilled_runs.SpillFile, "spill", spill)
    db = DeltaTableDatabase(tmp_path / "store")
    node = node_over(db, [1, 2, 3, 4, 1, 2, 5, 6, 8, 1, 9])
    summary = node.run()
    assert (summary.computed, summary.reused, summary.total) == (11, 0, 11)
    results = db.at("_result").get_all_records(node.result_cache.record_path)
    assert results is not None and results.num_rows == 8  # each packet computed once
    # another input sharing most packets: reused ones found through the spilled index,
    # new ones computed once though repeated in later chunks
    grown = node_over(db, [10, 1, 2, 10, 3, 11, 4, 11, 5, 10])
    summary = grown.run()
    assert (summary.computed, summary.reused) == (5, 5)
    assert grown.as_table().column("y").to_pylist() == [11, 2, 3, 11, 4, 12, 5, 12, 6, 11]
    assert 0 in spilled and spilled_runs.BITS_PER_HASH in spilled  # both sets spilled


def test_a_failure_in_the_middle_chunk_keeps_the_earlier_chunks_stored(tmp_path):
    db = DeltaTableDatabase(tmp_path / "store")
    node = node_over(db, [1, 2, 3, 4, 7, 5, 6, 8, 9], error_policy=ErrorPolicy.FAIL_FAST)
    with pytest.raises(ExecutionError, match="seven"):
        node.run()
    results = db.at("_result").get_all_records(node.result_cache.record_path)
    assert results is not None and results.num_rows == 4  # the third chunk never ran
    node = node_over(db, [1, 2, 3, 4, 7, 5, 6, 8, 9])
    stored = node.as_table()
    assert stored.column("k").to_pylist() == [0, 1, 2, 3]  # chunk 1, and row 4 of chunk 2
    assert node.failures().column("k").to_pylist() == [4]
    with pytest.warns(UserWarning, match="1 of 9 rows"):
        summary = node.run()
    assert (summary.computed, summary.reused, summary.failed) == (4, 4, 1)


def test_a_chunked_run_reads_the_same_rows_and_provenance_as_a_whole_run(tmp_path):
    """Chunk by chunk, a source builds each chunk's system tags and source info on its own,
    also when the function takes only some of its packet columns."""
    rows = [{"k": k, "x": x, "unused": -k} for k, x in enumerate([1, 2, 3, 4, 5, 6, 8])]

    def run(chunk_rows: int, store: str) -> object:
        source = DictSource(rows, tag_columns=["k"], source_id="src")
        pod = FunctionPod(PythonPacketFunction(add_one, "y"))
        node = FunctionNode(pod, source, DeltaTableDatabase(tmp_path / store))
        node.chunk_rows = chunk_rows
        assert node.run().computed == len(rows)
        return node.as_table(columns={"source": True, "system_tags": True}).sort_by("k")

    chunked, whole = run(3, "chunked"), run(100, "whole")
    assert chunked.equals(whole)
    assert chunked.column("y").to_pylist() == [2, 3, 4, 5, 6, 7, 9]


def test_a_later_chunk_checks_its_records_from_its_start_only_while_the_run_is_alone(tmp_path):
    """The record table's version at a chunk's start counts as the version the chunk's
    entries are absent at only when every version since the run began is this run's own
    append; another writer's append (or no versions at all) turns the shortcut off."""
    db = DeltaTableDatabase(tmp_path / "store")
    store = SimpleNamespace(pipeline_db=db, record_path=("node", "records"))
    start = db.table_token(store.record_path)  # no table yet
    assert _own_version(store, start) is None
    for i in range(2):
        db.add_records(store.record_path, pa.table({"id": [f"e{i}"], "v": [i]}), "id", flush=True)
    assert _own_version(store, start) == db.committed_version(store.record_path) == 1
    other = DeltaTableDatabase(tmp_path / "store")
    other.add_records(store.record_path, pa.table({"id": ["x"], "v": [9]}), "id", flush=True)
    assert _own_version(store, start) is None
    later = db.table_token(store.record_path)  # a run that began after that append
    db.add_records(store.record_path, pa.table({"id": ["e2"], "v": [2]}), "id", flush=True)
    assert _own_version(store, later) == 3
