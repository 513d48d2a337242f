"""Membership: a function node's complete run records which of its records its input no
longer holds, so a reader of the store alone can leave them out; the runs that change
nothing write nothing for it."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from orcapod.databases import DeltaTableDatabase, InMemoryArrowDatabase
from orcapod.errors import FailedRowsWarning
from orcapod.functions import function_pod
from orcapod.nodes import FunctionNode
from orcapod.nodes.membership import SUPERSEDED_PATH, superseded_entries
from orcapod.pipeline import Pipeline, StoreView
from orcapod.sources import DictSource
from orcapod.types import ExecutorType, PipelineConfig


@function_pod("y")
def double(x: int) -> int:
    if x < 0:
        raise ValueError(f"x={x} cannot be doubled")
    return 2 * x


def numbers(rows: list[tuple[int, int]], record_ids: bool = True) -> DictSource:
    return DictSource(
        [{"k": k, "x": x} for k, x in rows],
        tag_columns=["k"],
        source_id="numbers",
        record_id_column="k" if record_ids else None,
    )


def doubling(db, rows: list[tuple[int, int]], record_ids: bool = True) -> Pipeline:
    pipeline = Pipeline("study", db)
    with pipeline:
        double.pod(numbers(rows, record_ids))
    return pipeline


def run(pipeline: Pipeline, mode: ExecutorType = ExecutorType.SYNCHRONOUS) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FailedRowsWarning)
        pipeline.run(config=PipelineConfig(executor=mode))


def recorded(db) -> str | None:
    """The membership the node's newest catalog row holds."""
    rows = [r for r in db.get_all_records(("_catalog",)).to_pylist() if r["label"] == "double"]
    return max(rows, key=lambda r: r["updated_at"])["superseded"]


def notes(store: Path) -> list[Path]:
    return sorted(store.rglob("_orcapod_index/notes/superseded.json"))


def test_an_unchanged_rerun_and_an_append_only_run_write_nothing_for_membership(tmp_path):
    store = tmp_path / "store"
    db = DeltaTableDatabase(store)
    for rows in ([(1, 1), (2, 2)], [(1, 1), (2, 2)], [(1, 1), (2, 2), (3, 3)]):
        run(doubling(db, rows))
        assert recorded(db) == ""  # known: nothing superseded
        assert not (store / "study" / "_superseded").exists()
        assert notes(store) == []
    # a failed row has no record: still nothing superseded, nothing written
    run(doubling(db, [(1, 1), (2, 2), (3, 3), (4, -4)]))
    assert recorded(db) == ""
    assert not (store / "study" / "_superseded").exists()


def test_a_superseded_set_is_written_once_and_an_unchanged_rerun_leaves_it(tmp_path):
    store = tmp_path / "store"
    db = DeltaTableDatabase(store)
    run(doubling(db, [(1, 1), (2, 2)]))
    run(doubling(db, [(1, 1)]))
    snapshot = recorded(db)
    assert snapshot
    table = ("study", *SUPERSEDED_PATH)
    (entry,) = superseded_entries(db, table, snapshot).to_pylist()
    version = db.committed_version(table)
    (note,) = notes(store)
    written = (note.read_text(), note.stat().st_mtime_ns)
    run(doubling(db, [(1, 1)]))  # unchanged: the same set, neither the table nor the note move
    assert recorded(db) == snapshot
    assert DeltaTableDatabase(store).committed_version(table) == version
    assert (note.read_text(), note.stat().st_mtime_ns) == written
    run(doubling(db, [(1, 1), (2, 2)]))  # back: nothing superseded any more
    assert recorded(db) == ""
    assert StoreView(store).node_rows("double").to_pylist() == [
        {"k": 1, "y": 2},
        {"k": 2, "y": 4},
    ]
    assert entry.startswith("arrow_row_v1:")


def test_a_streaming_run_records_the_membership_a_synchronous_run_records(tmp_path):
    found = {}
    for mode in (ExecutorType.SYNCHRONOUS, ExecutorType.ASYNC_CHANNELS):
        store = tmp_path / mode.value
        db = DeltaTableDatabase(store)
        values = []
        for rows in ([(1, 1), (2, 2), (3, 3)], [(1, 1), (2, 3)], [(1, 1), (2, 2)]):
            run(doubling(db, rows), mode)
            values.append(recorded(db))
        assert StoreView(store).node_rows("double").to_pylist() == [
            {"k": 1, "y": 2},
            {"k": 2, "y": 4},
        ]
        found[mode] = values
    assert found[ExecutorType.ASYNC_CHANNELS] == found[ExecutorType.SYNCHRONOUS]
    first, *later = found[ExecutorType.SYNCHRONOUS]
    assert first == "" and all(later)  # each later run left records behind


@pytest.mark.parametrize("chunk_rows", [4, 50_000])
def test_a_node_run_returns_the_snapshot_of_the_entries_its_input_left(chunk_rows):
    db = InMemoryArrowDatabase()

    def node_over(rows: list[tuple[int, int]]) -> FunctionNode:
        node = FunctionNode(double.pod, numbers(rows, record_ids=False), pipeline_database=db)
        node.chunk_rows = chunk_rows
        return node

    first = [(k, k) for k in range(10)]
    assert node_over(first).run().superseded == ""
    shifted = [(-1, 5), *first[:3], *first[5:]]  # a row inserted, two deleted: ids shift
    summary = node_over(shifted).run()
    assert summary.superseded
    ids = superseded_entries(db, SUPERSEDED_PATH, summary.superseded)
    assert ids is not None and len(ids) == 10  # every row moved: none is held any more
    # the same set from the same records: the same snapshot, whatever the chunking
    again = node_over(shifted)
    again.chunk_rows = 50_000 if chunk_rows == 4 else 4
    assert again.run().superseded == summary.superseded
