"""Compacting and vacuuming a Delta store keeps every answer, and look-ups stay indexed."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from orcapod.databases import DeltaTableDatabase
from orcapod.databases.column_index import INDEX_DIR
from orcapod.databases.maintenance import compact_store, delete_rows, find_tables
from orcapod.errors import InputValidationError
from orcapod.types.columns import INPUT_PACKET_HASH, RECORD_ID

PATH = ("_result", "fn", "v0")


def _grow(base: Path, commits: int) -> DeltaTableDatabase:
    database = DeltaTableDatabase(base, batch_size=1)
    for i in range(commits):
        rows = pa.table(
            {
                RECORD_ID: [f"id{i}-{j}" for j in range(20)],
                INPUT_PACKET_HASH: [f"h{i}-{j}" for j in range(20)],
                "value": list(range(20)),
            }
        )
        database.add_records(PATH, rows, record_id_column=RECORD_ID)
        database.flush()
    return database


def _lookup(database: DeltaTableDatabase, hashes: list[str]) -> set[str]:
    found = database.get_records_with_column_value(
        PATH, {INPUT_PACKET_HASH: hashes}, record_id_column=RECORD_ID
    )
    return set() if found is None else set(found.column(INPUT_PACKET_HASH).to_pylist())


def test_compact_and_vacuum_keep_answers_and_rebuild_lookup_sidecars(tmp_path: Path) -> None:
    base = tmp_path / "store"
    database = _grow(base, 12)
    wanted = [f"h{i}-3" for i in range(12)] + [f"missing{i}" for i in range(10)]
    assert _lookup(database, wanted) == {f"h{i}-3" for i in range(12)}  # writes sidecars
    table = Path(database.table_uri(PATH))
    old_sidecars = set(table.joinpath(INDEX_DIR).rglob("*.h64"))
    assert len(old_sidecars) == 12

    (report,) = compact_store(base, retention_hours=0)
    assert report.table == str(Path(*PATH).with_name("v0"))
    assert (report.files_before, report.files_after) == (12, 1)
    assert report.removed_files == 12
    assert len(list(table.glob("*.parquet"))) == 1
    sidecars = set(table.joinpath(INDEX_DIR).rglob("*.h64"))
    assert not sidecars & old_sidecars  # those of vacuumed files are gone
    (only,) = sidecars
    assert table.joinpath(only.name.removesuffix(".h64")).is_file()  # the new file is indexed

    fresh = DeltaTableDatabase(base)
    assert _lookup(fresh, wanted) == {f"h{i}-3" for i in range(12)}
    assert fresh.get_all_records(PATH).num_rows == 240
    fresh.add_records(
        PATH,
        pa.table({RECORD_ID: ["id0-0"], INPUT_PACKET_HASH: ["x"], "value": [1]}),
        record_id_column=RECORD_ID,
        skip_duplicates=True,
    )
    fresh.flush()
    assert fresh.get_all_records(PATH).num_rows == 240  # duplicate check still sees old ids


def test_default_retention_keeps_files_other_readers_may_use(tmp_path: Path) -> None:
    base = tmp_path / "store"
    _grow(base, 3)
    (report,) = compact_store(base)
    assert (report.files_after, report.removed_files) == (1, 0)
    with pytest.raises(InputValidationError, match="retention_hours='0' must be a whole"):
        compact_store(base, retention_hours="0")  # type: ignore[arg-type]


def test_delete_rows_and_find_tables(tmp_path: Path) -> None:
    base = tmp_path / "store"
    database = _grow(base, 2)
    assert find_tables(base) == [Path(database.table_uri(PATH))]
    table = find_tables(base)[0]
    assert delete_rows(table, INPUT_PACKET_HASH, ["h0-1", "h1-2", "nope"]) == 2
    assert database.get_all_records(PATH).num_rows == 38
    assert delete_rows(table) == 38
    assert database.get_all_records(PATH) is None  # an empty table answers nothing
    assert delete_rows(tmp_path / "no_table") == 0
    with pytest.raises(InputValidationError, match="is not a store directory"):
        find_tables(tmp_path / "nowhere")
