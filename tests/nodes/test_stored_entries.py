"""StoredEntries: a chunked run's view of what the node had stored, read once."""

from __future__ import annotations

import pytest

from orcapod.databases import DeltaTableDatabase, InMemoryArrowDatabase
from orcapod.functions import FunctionPod, PythonPacketFunction
from orcapod.nodes import FunctionNode, stored_entries
from orcapod.sources import DictSource


def add_one(x: int) -> int:
    return x + 1


def chunked_node(records: DeltaTableDatabase, results: object, xs: list[int]) -> FunctionNode:
    rows = [{"k": k, "x": x} for k, x in enumerate(xs)]
    source = DictSource(rows, tag_columns=["k"], source_id="src")
    node = FunctionNode(FunctionPod(PythonPacketFunction(add_one, "y")), source, records)
    node.attach_databases(records, results)
    node.chunk_rows = 2
    return node


@pytest.mark.parametrize("limit", [1, 4096], ids=["scanned_ids", "queried_ids"])
def test_a_chunked_rerun_recomputes_exactly_the_rows_whose_results_are_gone(
    tmp_path, monkeypatch, limit
):
    """Records of every row, results of only some: the others are computed, not reused."""
    monkeypatch.setattr(stored_entries, "FILTER_LIMIT", limit)
    store = tmp_path / "records"
    # every row recorded, its results kept in memory (gone with this process)
    first = chunked_node(DeltaTableDatabase(store), InMemoryArrowDatabase(), [1, 2, 3, 4, 5])
    assert first.run().computed == 5
    results = DeltaTableDatabase(tmp_path / "results")
    # two of them get persistent results
    assert chunked_node(DeltaTableDatabase(store), results, [1, 2]).run().computed == 2
    node = chunked_node(DeltaTableDatabase(store), results, [1, 2, 3, 4, 5])
    summary = node.run()
    assert (summary.computed, summary.reused) == (3, 2)
    assert node.as_table().column("y").to_pylist() == [2, 3, 4, 5, 6]
    again = chunked_node(DeltaTableDatabase(store), results, [1, 2, 3, 4, 5]).run()
    assert (again.computed, again.reused) == (0, 5)
