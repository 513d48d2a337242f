"""StoredEntries: a chunked run's view of what the node had stored, read once."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import deltalake
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


def _result_table(results_root) -> str:
    """The Delta table of add_one's results under ``results_root``."""
    logs = [p.parent for p in results_root.rglob("_delta_log") if "_identity" not in str(p)]
    assert len(logs) == 1, logs
    return str(logs[0])


@pytest.fixture
def checks(monkeypatch) -> list[int]:
    """The sizes of the full checks of stored result ids made (the scanned check, as at
    scale), one entry per check."""
    monkeypatch.setattr(stored_entries, "FILTER_LIMIT", 1)
    made: list[int] = []
    full_check = stored_entries.StoredEntries.results_exist

    def counted(self, packet_ids):
        made.append(len(packet_ids))
        return full_check(self, packet_ids)

    monkeypatch.setattr(stored_entries.StoredEntries, "results_exist", counted)
    return made


def test_a_rerun_trusts_the_note_that_every_result_exists_only_while_both_tables_are_unchanged(
    tmp_path, checks
):
    records, results = tmp_path / "records", tmp_path / "results"
    xs = [1, 2, 3, 4, 5]

    def run():
        return chunked_node(DeltaTableDatabase(records), DeltaTableDatabase(results), xs).run()

    assert run().computed == 5  # the run knows every record it wrote has its result: noted
    note = next(records.rglob("results-exist.json"))
    written = note.stat().st_mtime_ns
    assert (run().reused, checks) == (5, [])  # the note answers: no check
    assert note.stat().st_mtime_ns == written  # and is not written again
    # a result deleted by hand (a new version of the result table): checked, recomputed
    deltalake.DeltaTable(_result_table(results)).delete("y = 4")
    again = run()
    assert (again.computed, again.reused, checks) == (1, 4, [5])
    assert (run().reused, checks) == (5, [5, 5])  # the run that recomputed it noted nothing
    assert (run().reused, checks) == (5, [5, 5])  # the check that found them all did
    # the result table replaced by another one (a new table id) holding only one result
    shutil.rmtree(results)
    other = chunked_node(DeltaTableDatabase(tmp_path / "other"), DeltaTableDatabase(results), [1])
    assert other.run().computed == 1
    replaced = run()
    assert (replaced.computed, replaced.reused) == (4, 1)
    assert chunked_node(
        DeltaTableDatabase(records), DeltaTableDatabase(results), xs
    ).as_table().column("y").to_pylist() == [2, 3, 4, 5, 6]


def add_one_beside_another_writer(x: int) -> int:
    """``x + 1``; at ``x == 3``, when ``SIDE_STORE`` names a result store, another database
    object (as another process would) first commits a result of this function there."""
    if x == 3 and os.environ.get("SIDE_STORE"):
        side = Path(os.environ["SIDE_STORE"])
        rows = DictSource([{"k": 0, "x": 100}], tag_columns=["k"], source_id="side")
        pod = FunctionPod(PythonPacketFunction(add_one_beside_another_writer, "y"))
        node = FunctionNode(pod, rows, DeltaTableDatabase(side / "records"))
        node.attach_databases(DeltaTableDatabase(side / "records"), DeltaTableDatabase(side))
        node.run()
    return x + 1


def test_a_run_that_saw_another_writer_append_results_leaves_no_note(tmp_path, monkeypatch, checks):
    """Rows another database object (another process) committed while the run was going are
    not the run's to vouch for: the next run checks."""
    records, results = tmp_path / "records", tmp_path / "results"
    xs = [1, 2, 3, 4, 5]

    def node() -> FunctionNode:
        rows = [{"k": k, "x": x} for k, x in enumerate(xs)]
        source = DictSource(rows, tag_columns=["k"], source_id="src")
        pod = FunctionPod(PythonPacketFunction(add_one_beside_another_writer, "y"))
        made = FunctionNode(pod, source, DeltaTableDatabase(records))
        made.attach_databases(DeltaTableDatabase(records), DeltaTableDatabase(results))
        made.chunk_rows = 2
        return made

    monkeypatch.setenv("SIDE_STORE", str(results))
    assert node().run().computed == 5
    monkeypatch.delenv("SIDE_STORE")
    assert len(list(results.rglob("*.parquet"))) > 3  # the other writer's result is there
    rerun = node().run()
    assert (rerun.reused, checks) == (5, [5])  # no note: checked
    assert (node().run().reused, checks) == (5, [5])  # that check noted it
