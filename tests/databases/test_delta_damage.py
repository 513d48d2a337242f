"""A damaged Delta table is reported with its path, the damaged file and the remedy."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from orcapod.databases import DeltaTableDatabase
from orcapod.errors import DatabaseError
from orcapod.types.columns import RECORD_ID

PATH = ("results", "fn")


def _store(base: Path, commits: int) -> Path:
    database = DeltaTableDatabase(base, batch_size=1)
    for i in range(commits):
        rows = pa.table({RECORD_ID: [f"id{i}"], "value": [i]})
        database.add_records(PATH, rows, record_id_column=RECORD_ID)
        database.flush()
    return Path(database.table_uri(PATH))


def _corrupt_commit(table: Path) -> Path:
    damaged = table / "_delta_log" / f"{1:020d}.json"
    damaged.write_text("{not json")
    return damaged


def _remove_commit(table: Path) -> Path:
    missing = table / "_delta_log" / f"{1:020d}.json"
    missing.unlink()
    return missing


def _corrupt_checkpoint(table: Path) -> Path:
    (damaged,) = (table / "_delta_log").glob("*.checkpoint.parquet")
    damaged.write_bytes(b"garbage")
    return damaged


def _corrupt_data(table: Path) -> Path:
    damaged = sorted(table.glob("*.parquet"))[0]
    damaged.write_bytes(b"garbage" * 10)
    return damaged


@pytest.mark.parametrize(
    ("commits", "damage", "what"),
    [
        (3, _corrupt_commit, "a commit file of its log is not valid JSON"),
        (3, _remove_commit, "a commit file of its log is missing (a gap in the versions)"),
        (12, _corrupt_checkpoint, "a checkpoint of its log is not a readable Parquet file"),
        (3, _corrupt_data, "a data file is not a readable Parquet file"),
    ],
    ids=["log-json", "log-gap", "checkpoint", "data-parquet"],
)
def test_damage_names_table_file_and_remedy(
    tmp_path: Path, commits: int, damage: Callable[[Path], Path], what: str
) -> None:
    table = _store(tmp_path / "store", commits)
    damaged = damage(table)
    database = DeltaTableDatabase(tmp_path / "store")
    with pytest.raises(DatabaseError) as caught:
        database.get_all_records(PATH)
    message = str(caught.value)
    assert f"The Delta table of path {PATH!r} at {table} is damaged: {what}: {damaged}" in message
    assert "Restore the table from a backup, or delete the folder" in message
    assert "\n" not in message  # no Rust backtrace
    assert caught.value.__cause__ is not None
    shutil.rmtree(table)  # the advice works: the path is empty again, and writable
    database = DeltaTableDatabase(tmp_path / "store")
    assert database.get_all_records(PATH) is None
    database.add_records(
        PATH, pa.table({RECORD_ID: ["a"], "value": [1]}), record_id_column=RECORD_ID
    )
    database.flush()
    assert database.get_all_records(PATH).num_rows == 1
