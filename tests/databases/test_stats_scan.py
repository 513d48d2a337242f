"""Reads by row-group statistics (``stats_scan``, ``statistics=True``): exactly the rows a
query gives, across files, row groups, types that are not pruned, files written before a
column existed, and rows pending in the writer."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orcapod.databases import DeltaTableDatabase
from orcapod.databases.delta_files import ROW_GROUP_ROWS
from orcapod.databases.maintenance import delete_rows
from orcapod.databases.object_stores import filesystem_of
from orcapod.databases.queries import normalize_constraints
from orcapod.databases.stats_scan import read_where
from orcapod.databases.table_files import TableFiles

PATH = ("records", "fn")


def _rows(start: int, stop: int, extra: bool = False) -> pa.Table:
    columns: dict[str, list[object]] = {
        "id": [f"e{i:06d}" for i in range(start, stop)],
        "n": list(range(start, stop)),
        "name": [f"s{i % 97:03d}" for i in range(start, stop)],
        "score": [i / 4 for i in range(start, stop)],
    }
    if extra:
        columns["note"] = [f"note {i % 5}" for i in range(start, stop)]
    return pa.table(columns)


@pytest.fixture
def store(tmp_path: Path) -> DeltaTableDatabase:
    db = DeltaTableDatabase(tmp_path / "store")
    db.add_records(PATH, _rows(0, 3 * ROW_GROUP_ROWS + 10), "id")
    db.flush()
    db.add_records(PATH, _rows(3 * ROW_GROUP_ROWS + 10, 3 * ROW_GROUP_ROWS + 400, True), "id")
    db.flush()
    return db


def _both(db: DeltaTableDatabase, where: dict[str, object]) -> tuple[object, object]:
    fresh = DeltaTableDatabase(db.base_path)
    by_stats = fresh.get_records_with_column_value(PATH, where, "id", statistics=True)
    queried = DeltaTableDatabase(db.base_path).get_records_with_column_value(PATH, where, "id")
    return by_stats, queried


@pytest.mark.parametrize(
    "where",
    [
        {"n": 5000},  # an ordered int: one row group of one file
        {"n": [3, 12_300, 12_301, 99_999]},  # several values, one absent
        {"name": "s042"},  # a string in no order: every row group
        {"name": "s042", "n": 42 + 97 * 3},
        {"score": 2.5},  # a float: not pruned, still exact
        {"note": "note 3"},  # a column the first file lacks
        {"n": -1},  # nothing
    ],
)
def test_statistics_read_gives_the_rows_a_query_gives(
    store: DeltaTableDatabase, where: dict[str, object]
) -> None:
    by_stats, queried = _both(store, where)
    if queried is None:
        assert by_stats is None
        return
    assert isinstance(by_stats, pa.Table) and isinstance(queried, pa.Table)
    assert by_stats.schema == queried.schema
    assert by_stats.sort_by("id").to_pylist() == queried.sort_by("id").to_pylist()


def test_only_row_groups_that_may_hold_the_value_are_read(store: DeltaTableDatabase) -> None:
    """An ordered tag reads one row group, not the table (groups are ROW_GROUP_ROWS rows)."""
    files = TableFiles.for_table(store.table_uri(PATH), filesystem_of(store.base_path, None))
    assert files is not None
    uris = sorted(str(p) for p in Path(store.table_uri(PATH)).glob("*.parquet"))
    assert max(pq.ParquetFile(u).metadata.num_row_groups for u in uris) > 1
    picked: list[list[int]] = []
    original = files.read_groups

    def counting(file, pick):  # type: ignore[no-untyped-def]
        return original(file, lambda meta: picked.append(list(pick(meta))) or picked[-1])

    files.read_groups = counting  # type: ignore[method-assign]
    schema = DeltaTableDatabase(store.base_path).get_all_records(PATH).schema  # type: ignore[union-attr]
    tests = normalize_constraints({"n": 5000}, schema, None, PATH)
    got = read_where(files, uris, schema, tests)
    assert got is not None and got.column("n").to_pylist() == [5000]
    assert sum(len(p) for p in picked) == 1


def test_a_test_matching_null_is_left_to_the_query(store: DeltaTableDatabase) -> None:
    files = TableFiles.for_table(store.table_uri(PATH), filesystem_of(store.base_path, None))
    assert files is not None
    schema = DeltaTableDatabase(store.base_path).get_all_records(PATH).schema  # type: ignore[union-attr]
    tests = normalize_constraints({"note": [None, "note 1"]}, schema, None, PATH)
    assert read_where(files, [], schema, tests) is None
    by_stats, queried = _both(store, {"note": [None, "note 1"]})
    assert isinstance(by_stats, pa.Table) and isinstance(queried, pa.Table)
    assert by_stats.num_rows == queried.num_rows > 0


def test_pending_rows_are_included(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path / "store")
    db.add_records(PATH, _rows(0, 50), "id")
    db.flush()
    db.add_records(PATH, _rows(50, 60), "id")  # not flushed
    got = db.get_records_with_column_value(PATH, {"n": [10, 55]}, "id", statistics=True)
    assert got is not None and sorted(got.column("n").to_pylist()) == [10, 55]


def test_a_table_rewritten_by_a_maintenance_delete_is_read_by_its_text_values(
    store: DeltaTableDatabase,
) -> None:
    # deltalake rewrites the files a delete touches with view types (string_view)
    deleted = delete_rows(Path(store.base_path, *PATH), "__record_id", ["e000003"])
    assert deleted == 1
    fresh = DeltaTableDatabase(store.base_path)
    where = {"name": ["s003", "s004"]}
    got = fresh.get_records_with_column_value(PATH, where, "id", statistics=True)
    assert got is not None and got.schema.field("name").type == pa.string()
    assert "e000003" not in got.column("id").to_pylist()
    assert sorted(got.column("id").to_pylist()) == sorted(
        DeltaTableDatabase(store.base_path)
        .get_records_with_column_value(PATH, where, "id")
        .column("id")
        .to_pylist()
    )
