"""DeltaTableDatabase behaviour beyond the shared contract: persistence, layout, batching,
append-only history, flush failures and commit conflicts between writers (in one process;
the multi-process tests live in test_delta_processes.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from orcapod.databases import DeltaTableDatabase, id_index
from orcapod.databases.delta_state import PathState
from orcapod.errors import DatabaseError, DuplicateRecordError, FlushError, InputValidationError
from orcapod.types.columns import RECORD_ID

P = ("cache", "fn")


def batch(ids: list[str], **columns: list[object]) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.string()), **columns})


def ids_of(table: pa.Table | None) -> list[str]:
    assert table is not None
    return sorted(table.column("id").to_pylist())


def test_second_instance_sees_flushed_rows_but_not_pending_ones(tmp_path: Path) -> None:
    writer = DeltaTableDatabase(tmp_path, batch_size=1000)
    writer.add_records(P, batch(["a", "b"], v=[1, 2]), "id")
    reader = DeltaTableDatabase(tmp_path)
    assert reader.get_all_records(P) is None
    writer.flush()
    assert ids_of(reader.get_all_records(P, "id")) == ["a", "b"]
    writer.add_records(P, batch(["c"], v=[3]), "id")
    writer.flush()
    # an open reader sees later commits too
    assert ids_of(reader.get_records_by_ids(P, ["a", "c"], "id")) == ["a", "c"]


def test_batch_size_commits_automatically(tmp_path: Path) -> None:
    writer = DeltaTableDatabase(tmp_path, batch_size=3)
    reader = DeltaTableDatabase(tmp_path)
    writer.add_records(P, batch(["a", "b"], v=[1, 2]), "id")
    assert reader.get_all_records(P) is None
    writer.add_record(P, "c", pa.table({"v": [3]}))
    assert ids_of(reader.get_all_records(P, "id")) == ["a", "b", "c"]


def test_duplicate_check_sees_rows_committed_by_another_instance(tmp_path: Path) -> None:
    first = DeltaTableDatabase(tmp_path)
    first.add_records(P, batch(["a"], v=[1]), "id")
    first.flush()
    second = DeltaTableDatabase(tmp_path)
    with pytest.raises(DuplicateRecordError, match="'a'"):
        second.add_records(P, batch(["a"], v=[2]), "id")


def test_table_layout_is_filesystem_safe(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path)
    path = ("fn:v1", "_delta_log", "trailing.", "100%")
    db.add_records(path, batch(["a"], v=[1]), "id")
    db.flush()
    table_dir = tmp_path / "fn~3Av1" / "~5Fdelta_log" / "trailing~2E" / "100~25"
    assert (table_dir / "_delta_log").is_dir()
    assert db.table_uri(path) == str(table_dir)
    assert not any(":" in p.name for p in tmp_path.rglob("*"))
    assert ids_of(DeltaTableDatabase(tmp_path).get_all_records(path, "id")) == ["a"]


def test_object_store_uris_are_joined_with_slashes() -> None:
    db = DeltaTableDatabase("s3://bucket/root/", storage_options={"AWS_REGION": "us-east-1"})
    assert db.base_path == "s3://bucket/root"
    assert db.table_uri(("a:b", "c")) == "s3://bucket/root/a~3Ab/c"


def test_history_holds_only_appends(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path, batch_size=1)
    db.add_records(P, batch(["a"], v=[1]), "id")
    db.add_records(P, batch(["b"], v=[2], extra=["x"]), "id")
    db.add_records(P, batch(["c"]), "id")
    db.add_records(P, batch(["a", "d"], v=[9, 4]), "id", skip_duplicates=True)
    history = DeltaTable(db.table_uri(P)).history()
    modes = [entry["operationParameters"]["mode"] for entry in history]
    assert sorted(modes) == ["Append", "Append", "Append", "ErrorIfExists"]
    assert all(entry["operation"] == "WRITE" for entry in history)


def test_failed_flush_names_the_path_and_keeps_the_rows(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path)
    good, bad = ("good",), ("bad", "table")
    db.add_records(good, batch(["g"], v=[0]), "id")
    db.add_records(bad, batch(["a", "b"], v=[1, 2]), "id")
    blocker = Path(db.table_uri(bad))
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a directory")
    with pytest.raises(FlushError, match=r"\('bad', 'table'\)") as info:
        db.flush()
    assert "good" not in str(info.value).split("(")[1]
    assert isinstance(info.value.__cause__, DatabaseError)
    # the healthy path was committed; reads of the broken location fail loudly
    assert ids_of(DeltaTableDatabase(tmp_path).get_all_records(good, "id")) == ["g"]
    with pytest.raises(DatabaseError, match="bad"):
        db.get_all_records(bad)
    blocker.unlink()
    # the failed rows are still pending: readable, duplicate-checked, then committed
    assert ids_of(db.get_all_records(bad, "id")) == ["a", "b"]
    assert DeltaTableDatabase(tmp_path).get_all_records(bad) is None
    with pytest.raises(DuplicateRecordError):
        db.add_records(bad, batch(["a"], v=[3]), "id")
    db.flush()
    assert ids_of(DeltaTableDatabase(tmp_path).get_all_records(bad, "id")) == ["a", "b"]


def test_failed_flush_of_an_existing_table_keeps_the_rows(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path)
    db.add_records(P, batch(["a"], v=[1]), "id")
    db.flush()
    db.add_records(P, batch(["b"], v=[2]), "id")
    table_dir = Path(db.table_uri(P))
    moved = tmp_path / "moved-away"
    shutil.move(table_dir, moved)
    table_dir.write_text("the table directory was replaced by a file")
    with pytest.raises(FlushError, match=r"\('cache', 'fn'\)"):
        db.flush()
    table_dir.unlink()
    shutil.move(moved, table_dir)
    db.flush()
    assert ids_of(DeltaTableDatabase(tmp_path).get_all_records(P, "id")) == ["a", "b"]


def test_automatic_commit_failure_raises_flush_error(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path, batch_size=2)
    blocker = Path(db.table_uri(P)).parent  # a file where the parent directory should be
    blocker.write_text("x")
    db.add_records(P, batch(["a"], v=[1]), "id")
    with pytest.raises(FlushError):
        db.add_records(P, batch(["b"], v=[2]), "id")
    blocker.unlink()
    assert ids_of(db.get_all_records(P, "id")) == ["a", "b"]
    db.flush()
    assert ids_of(DeltaTableDatabase(tmp_path).get_all_records(P, "id")) == ["a", "b"]


def test_reading_a_broken_location_raises_database_error(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path)
    blocker = Path(db.table_uri(P))
    blocker.parent.mkdir(parents=True)
    blocker.write_text("x")
    with pytest.raises(DatabaseError, match="cache"):
        db.get_all_records(P)


def test_concurrent_writers_of_distinct_ids_both_commit(tmp_path: Path) -> None:
    one, two = DeltaTableDatabase(tmp_path), DeltaTableDatabase(tmp_path)
    one.add_records(P, batch(["a", "b"], v=[1, 2]), "id")
    two.add_records(P, batch(["c", "d"], v=[3, 4]), "id")
    one.flush()
    two.flush()  # its commit conflicts with one's, is re-checked and retried
    assert ids_of(DeltaTableDatabase(tmp_path).get_all_records(P, "id")) == ["a", "b", "c", "d"]


def test_concurrent_creation_of_a_table_keeps_both_batches(tmp_path: Path) -> None:
    one, two = DeltaTableDatabase(tmp_path), DeltaTableDatabase(tmp_path)
    one.add_records(P, batch(["a"], v=[1]), "id")
    two.add_records(P, batch(["b"], v=[2], other=["x"]), "id")
    two.flush()
    one.flush()
    got = DeltaTableDatabase(tmp_path).get_all_records(P, "id")
    assert got is not None
    assert sorted(got.to_pylist(), key=lambda r: r["id"]) == [
        {"id": "a", "v": 1, "other": None},
        {"id": "b", "v": 2, "other": "x"},
    ]


def test_overlapping_ids_under_skip_duplicates_keep_the_first_commit(tmp_path: Path) -> None:
    one, two = DeltaTableDatabase(tmp_path), DeltaTableDatabase(tmp_path)
    one.add_records(P, batch(["a", "b"], v=[1, 2]), "id", skip_duplicates=True)
    two.add_records(P, batch(["b", "c"], v=[20, 30]), "id", skip_duplicates=True)
    one.flush()
    two.flush()
    got = DeltaTableDatabase(tmp_path).get_all_records(P, "id")
    assert got is not None
    assert sorted(got.to_pylist(), key=lambda r: r["id"]) == [
        {"id": "a", "v": 1},
        {"id": "b", "v": 2},
        {"id": "c", "v": 30},
    ]


def test_overlapping_strict_ids_raise_at_flush_and_commit_the_rest(tmp_path: Path) -> None:
    one, two = DeltaTableDatabase(tmp_path), DeltaTableDatabase(tmp_path)
    one.add_records(P, batch(["a", "b"], v=[1, 2]), "id")
    two.add_records(P, batch(["b", "c"], v=[20, 30]), "id")
    one.flush()
    with pytest.raises(DuplicateRecordError, match=r"\['b'\].*another writer"):
        two.flush()
    got = DeltaTableDatabase(tmp_path).get_all_records(P, "id")
    assert got is not None
    assert sorted(got.to_pylist(), key=lambda r: r["id"]) == [
        {"id": "a", "v": 1},
        {"id": "b", "v": 2},
        {"id": "c", "v": 30},
    ]
    assert two.get_all_records(P) is not None
    two.flush()  # nothing left pending


def test_constructor_validates_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        DeltaTableDatabase(tmp_path, batch_size=0)
    with pytest.raises(ValueError, match="max_commit_attempts"):
        DeltaTableDatabase(tmp_path, max_commit_attempts=0)


def test_store_path_and_storage_options_of_the_wrong_kind_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputValidationError, match="base_path must be a non-empty str"):
        DeltaTableDatabase("")  # e.g. an unset environment variable
    assert list(tmp_path.iterdir()) == []  # the current directory did not become a store
    with pytest.raises(InputValidationError, match=r"base_path .* got 5 \(int\)"):
        DeltaTableDatabase(5)  # type: ignore[arg-type]
    for options in ("s", {"AWS_REGION": 1}):
        with pytest.raises(InputValidationError, match="storage_options must be a dict of str"):
            DeltaTableDatabase(tmp_path / "store", storage_options=options)  # type: ignore[arg-type]


@pytest.mark.slow
def test_an_error_after_the_commit_landed_neither_loses_nor_repeats_the_batch(
    tmp_path: Path,
) -> None:
    """Delta writes a checkpoint after commit 99; a directory squatting on the checkpoint's
    name makes that post-commit step fail, so write_deltalake raises although the commit
    landed. The database must see its transaction in the log and treat the batch as stored."""
    db = DeltaTableDatabase(tmp_path)
    uri = db.table_uri(P)
    for version in range(99):
        write_deltalake(uri, pa.table({RECORD_ID: [f"old-{version}"]}), mode="append")
    assert DeltaTable(uri).version() == 98
    Path(uri, "_delta_log", f"{99:020d}.checkpoint.parquet", "squatter").mkdir(parents=True)
    db.add_records(P, batch(["new-a", "new-b"]), "id")
    db.flush()  # the write raises internally; the commit is recognised as landed
    assert DeltaTable(uri).version() == 99
    db.flush()
    stored = DeltaTableDatabase(tmp_path).get_all_records(P, "id")
    assert stored is not None and stored.num_rows == 101
    assert ids_of(db.get_records_by_ids(P, ["new-a", "new-b"], "id")) == ["new-a", "new-b"]


# ---------------------------------------------------------------- committed-id index


def test_duplicate_checks_see_ids_other_writers_commit_after_the_index_was_built(
    tmp_path: Path,
) -> None:
    mine, other = DeltaTableDatabase(tmp_path, batch_size=1), DeltaTableDatabase(tmp_path)
    mine.add_records(P, batch(["a", "b"], v=[1, 2]), "id")
    mine.add_records(P, batch(["c"], v=[3]), "id")  # checked against the index of a, b
    for name, value in (("x", 10), ("y", 20)):
        other.add_records(P, batch([name], v=[value]), "id")
        other.flush()
    with pytest.raises(DuplicateRecordError, match="'y'"):
        mine.add_records(P, batch(["d", "y"], v=[4, 5]), "id")
    mine.add_records(P, batch(["x", "d", "a"], v=[0, 4, 0]), "id", skip_duplicates=True)
    mine.add_records(P, batch(["e"], v=[6]), "id")
    got = DeltaTableDatabase(tmp_path).get_all_records(P, "id")
    assert got is not None
    assert sorted((r["id"], r["v"]) for r in got.to_pylist()) == [
        ("a", 1),
        ("b", 2),
        ("c", 3),
        ("d", 4),
        ("e", 6),
        ("x", 10),
        ("y", 20),
    ]


def test_duplicate_checks_survive_another_process_compacting_the_table(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path, batch_size=1)
    for i in range(4):
        db.add_records(P, batch([f"id-{i}"], v=[i]), "id")
    DeltaTable(db.table_uri(P)).optimize.compact()  # removes the files the index was built on
    with pytest.raises(DuplicateRecordError, match="'id-2'"):
        db.add_records(P, batch(["id-2"], v=[0]), "id")
    db.add_records(P, batch(["id-1", "id-9"], v=[0, 9]), "id", skip_duplicates=True)
    assert ids_of(db.get_all_records(P, "id")) == ["id-0", "id-1", "id-2", "id-3", "id-9"]


def test_hash_collisions_never_reject_or_drop_a_fresh_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every id hashes alike, so every check is a hash hit that must be confirmed
    monkeypatch.setattr(
        "orcapod.databases.id_index.hash_ids", lambda ids: np.zeros(len(ids), dtype=np.uint64)
    )
    db = DeltaTableDatabase(tmp_path, batch_size=1)
    db.add_records(P, batch(["a", "b"], v=[1, 2]), "id")
    db.add_records(P, batch(["c", "d"], v=[3, 4]), "id")
    with pytest.raises(DuplicateRecordError, match=r"\['b'\]"):
        db.add_records(P, batch(["e", "b"], v=[5, 0]), "id")
    db.add_records(P, batch(["a", "e"], v=[0, 5]), "id", skip_duplicates=True)
    # ids verified absent are checked against a partial index: collisions there too
    version = db.committed_version(P)
    DeltaTableDatabase(tmp_path).add_records(P, batch(["f"], v=[6]), "id")  # pending elsewhere
    other = DeltaTableDatabase(tmp_path)
    other.add_records(P, batch(["g"], v=[7]), "id")
    other.flush()
    db.add_records(P, batch(["g", "h"], v=[0, 8]), "id", skip_duplicates=True, absent_at=version)
    db.add_records(P, batch(["i"], v=[9]), "id", absent_at=version)
    got = DeltaTableDatabase(tmp_path).get_all_records(P, "id")
    assert got is not None
    assert sorted((r["id"], r["v"]) for r in got.to_pylist()) == [
        ("a", 1),
        ("b", 2),
        ("c", 3),
        ("d", 4),
        ("e", 5),
        ("g", 7),
        ("h", 8),
        ("i", 9),
    ]


# ---------------------------------------------------------------- writes of verified-absent ids


def rows_of(db: DeltaTableDatabase) -> list[tuple[str, int]]:
    got = db.get_all_records(P, "id")
    assert got is not None
    return sorted((r["id"], r["v"]) for r in got.to_pylist())


def test_committed_version_is_the_latest_version_any_writer_committed(tmp_path: Path) -> None:
    db, other = DeltaTableDatabase(tmp_path), DeltaTableDatabase(tmp_path)
    assert db.committed_version(P) == -1
    db.add_records(P, batch(["a"], v=[1]), "id")
    assert db.committed_version(P) == -1  # pending rows are no version
    db.flush()
    assert db.committed_version(P) == 0
    other.add_records(P, batch(["b"], v=[2]), "id")
    other.flush()
    assert db.committed_version(P) == 1


def test_a_write_verified_at_the_latest_version_reads_no_committed_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = DeltaTableDatabase(tmp_path)
    writer.add_records(P, batch([f"old-{i}" for i in range(100)], v=list(range(100))), "id")
    writer.flush()
    db = DeltaTableDatabase(tmp_path)
    queries: list[str] = []
    real_query = PathState.query

    def spy(self: PathState, sql: str) -> pa.Table:
        queries.append(sql)
        return real_query(self, sql)

    monkeypatch.setattr(PathState, "query", spy)
    version = db.committed_version(P)
    for start in (0, 3):  # the second write is checked against the first one's commit only
        new = [f"new-{i}" for i in range(start, start + 3)]
        db.add_records(P, batch(new, v=[0] * 3), "id", skip_duplicates=True, absent_at=version)
        db.flush()
    assert not [q for q in queries if "WHERE" not in q]  # never the whole id column
    assert [i for i, _ in rows_of(db) if i.startswith("new")] == [f"new-{i}" for i in range(6)]


def test_verified_absent_ids_still_clash_with_rows_committed_after_the_check(
    tmp_path: Path,
) -> None:
    mine, other = DeltaTableDatabase(tmp_path), DeltaTableDatabase(tmp_path)
    other.add_records(P, batch(["a"], v=[1]), "id")
    other.flush()
    version = mine.committed_version(P)
    assert mine.get_records_by_ids(P, ["x", "y"]) is None  # verified absent at `version`
    for name, value in (("b", 2), ("x", 10), ("c", 3)):  # committed after the check
        other.add_records(P, batch([name], v=[value]), "id")
        other.flush()
    with pytest.raises(DuplicateRecordError, match="'x'"):
        mine.add_records(P, batch(["x", "y"], v=[0, 20]), "id", absent_at=version)
    mine.add_records(P, batch(["x", "y"], v=[0, 20]), "id", skip_duplicates=True, absent_at=version)
    mine.flush()
    assert rows_of(mine) == [("a", 1), ("b", 2), ("c", 3), ("x", 10), ("y", 20)]


def test_verified_absent_ids_another_writer_commits_before_the_flush_are_not_stored_twice(
    tmp_path: Path,
) -> None:
    mine = DeltaTableDatabase(tmp_path, batch_size=1000)
    other = DeltaTableDatabase(tmp_path)
    other.add_records(P, batch(["a"], v=[1]), "id")
    other.flush()
    version = mine.committed_version(P)
    mine.add_records(P, batch(["x", "y"], v=[0, 20]), "id", skip_duplicates=True, absent_at=version)
    mine.add_records(P, batch(["s"], v=[0]), "id", absent_at=version)
    other.add_records(P, batch(["x", "s"], v=[10, 30]), "id")
    other.flush()  # mine's compare-and-swap commit now fails and re-checks its pending ids
    with pytest.raises(DuplicateRecordError, match="'s'"):
        mine.flush()
    assert rows_of(DeltaTableDatabase(tmp_path)) == [("a", 1), ("s", 30), ("x", 10), ("y", 20)]


def test_an_unverified_write_after_verified_ones_is_checked_against_every_row(
    tmp_path: Path,
) -> None:
    other = DeltaTableDatabase(tmp_path)
    other.add_records(P, batch(["a", "b"], v=[1, 2]), "id")
    other.flush()
    db = DeltaTableDatabase(tmp_path, batch_size=1)
    db.add_records(P, batch(["x"], v=[10]), "id", absent_at=db.committed_version(P))
    with pytest.raises(DuplicateRecordError, match="'a'"):
        db.add_records(P, batch(["a"], v=[0]), "id")
    # an older verification than the index covers is checked against every row too
    with pytest.raises(DuplicateRecordError, match="'b'"):
        db.add_records(P, batch(["b"], v=[0]), "id", absent_at=-1)
    assert rows_of(db) == [("a", 1), ("b", 2), ("x", 10)]


def test_verified_writes_survive_another_process_compacting_the_table(tmp_path: Path) -> None:
    db, other = DeltaTableDatabase(tmp_path, batch_size=1), DeltaTableDatabase(tmp_path)
    other.add_records(P, batch(["a"], v=[1]), "id")
    other.flush()
    version = db.committed_version(P)
    db.add_records(P, batch(["x"], v=[10]), "id", absent_at=version)
    other.add_records(P, batch(["y"], v=[20]), "id")
    other.flush()
    DeltaTable(db.table_uri(P)).optimize.compact()  # removes the files the index knows
    with pytest.raises(DuplicateRecordError, match="'y'"):
        db.add_records(P, batch(["y"], v=[0]), "id", absent_at=version)
    db.add_records(P, batch(["y", "z"], v=[0, 30]), "id", skip_duplicates=True, absent_at=version)
    assert rows_of(db) == [("a", 1), ("x", 10), ("y", 20), ("z", 30)]


def test_tables_checkpoint_every_checkpoint_interval_commits(tmp_path: Path) -> None:
    """Opening and committing replay the commits since the last checkpoint: a short interval
    keeps both cheap however long the history (module docstring)."""
    db = DeltaTableDatabase(tmp_path, checkpoint_interval=4)
    for i in range(9):
        db.add_records(P, batch([f"id{i}"], v=[i]), "id")
        db.flush()
    table = DeltaTable(db.table_uri(P))
    assert table.metadata().configuration["delta.checkpointInterval"] == "4"
    log = Path(db.table_uri(P), "_delta_log")
    # after the 4th and the 8th commit (versions 3 and 7)
    assert sorted(p.name.split(".")[0] for p in log.glob("*.checkpoint.parquet")) == [
        "00000000000000000003",
        "00000000000000000007",
    ]
    fresh = DeltaTableDatabase(tmp_path)
    assert sorted(i for i, _ in rows_of(fresh)) == [f"id{i}" for i in range(9)]
    for bad in (0, 2.5, True):
        with pytest.raises(InputValidationError, match="checkpoint_interval"):
            DeltaTableDatabase(tmp_path, checkpoint_interval=bad)  # type: ignore[arg-type]


def test_a_flush_right_after_another_writer_committed_loses_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    """The flush may commit on the snapshot its add just refreshed; if another writer moved
    the table in between, the compare-and-swap commit fails and is re-checked and retried."""
    mine, other = DeltaTableDatabase(tmp_path), DeltaTableDatabase(tmp_path)
    mine.add_records(P, batch(["a"], v=[1]), "id")
    mine.flush()
    mine.add_records(P, batch(["b", "c"], v=[2, 3]), "id", skip_duplicates=True)
    mine.add_records(P, batch(["e"], v=[5]), "id")
    other.add_records(P, batch(["c", "d", "e"], v=[30, 4, 50]), "id")
    other.flush()
    with pytest.raises(DuplicateRecordError, match="'e'"):
        mine.flush()  # 'e' was added strictly: named; the rest is committed
    assert rows_of(DeltaTableDatabase(tmp_path)) == [
        ("a", 1),
        ("b", 2),
        ("c", 30),
        ("d", 4),
        ("e", 50),
    ]


def test_data_files_are_compressed_and_id_columns_have_no_dictionary(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path)
    n = 500
    table = pa.table(
        {
            "id": [f"id-{i}" for i in range(n)],
            "_source_y": [f"src::{i}" for i in range(n)],
            "fn": ["same"] * n,
        }
    )
    db.add_records(P, table, "id")
    db.flush()
    (file,) = DeltaTable(db.table_uri(P)).file_uris()
    meta = pq.ParquetFile(file).metadata.row_group(0)
    chunks = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    assert {c.compression for c in chunks.values()} == {"SNAPPY"}
    dictionary = {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}
    assert not dictionary & set(chunks[RECORD_ID].encodings)
    assert not dictionary & set(chunks["_source_y"].encodings)
    assert dictionary & set(chunks["fn"].encodings)  # repeated values keep their dictionary


def test_the_store_directory_is_created_unless_create_base_path_is_false(tmp_path: Path) -> None:
    DeltaTableDatabase(tmp_path / "made" / "here")
    assert (tmp_path / "made" / "here").is_dir()
    with pytest.raises(InputValidationError, match="create_base_path=True"):
        DeltaTableDatabase(tmp_path / "missing", create_base_path=False)
    assert not (tmp_path / "missing").exists()


def test_a_store_path_that_is_a_file_is_rejected_at_construction(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputValidationError, match="is a file"):
        DeltaTableDatabase(tmp_path / "file")


def test_store_arguments_are_checked_at_construction(tmp_path: Path) -> None:
    with pytest.raises(InputValidationError, match=r"batch_size must be an int, got '10'"):
        DeltaTableDatabase(tmp_path / "a", batch_size="10")  # type: ignore[arg-type]
    read_only = DeltaTableDatabase("/sys/kernel")  # read-only even for root: can be read
    assert read_only.get_all_records(("nothing",)) is None
    with pytest.raises(InputValidationError, match="is not writable"):
        read_only.check_writable()
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(InputValidationError, match="is a file, not a directory"):
        DeltaTableDatabase(a_file)


def test_a_name_too_long_for_a_file_name_fails_before_anything_is_written(tmp_path: Path) -> None:
    database = DeltaTableDatabase(tmp_path / "store")
    with pytest.raises(InputValidationError, match="over the 255-byte limit of a file name"):
        database.at("é" * 100)  # e.g. Pipeline("é" * 100, database)
    with pytest.raises(InputValidationError, match="over the 255-byte limit of a file name"):
        database.get_all_records(("ok", "x" * 300))


def test_a_created_table_checks_later_ids_against_the_batch_that_created_it(
    tmp_path: Path,
) -> None:
    db = DeltaTableDatabase(tmp_path)
    db.add_records(P, batch(["a", "b"], v=[1, 2]), "id")
    db.flush()
    # the table's only data file is unreadable: a check that read it would fail
    (data,) = (tmp_path / "cache" / "fn").glob("*.parquet")
    original = data.read_bytes()
    data.write_bytes(b"not parquet")
    db.add_records(P, batch(["c"], v=[3]), "id", skip_duplicates=True)
    db.flush()
    data.write_bytes(original)
    db.add_records(P, batch(["a", "d"], v=[9, 4]), "id", skip_duplicates=True)  # "a" clashes
    db.flush()
    assert ids_of(DeltaTableDatabase(tmp_path).get_all_records(P, "id")) == ["a", "b", "c", "d"]


def test_duplicates_are_refused_after_the_id_index_forgot_old_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer adding verified ids keeps a bounded id index; an unverified add afterwards is
    still checked against every committed id (read again), and a verified one against the
    ids committed after its version."""
    monkeypatch.setattr(id_index, "MAX_HELD_IDS", 4)
    db = DeltaTableDatabase(tmp_path)
    for b in range(12):  # each batch verified absent at the version before it
        version = db.committed_version(P)
        ids = [f"b{b}-{i}" for i in range(3)]
        db.add_records(P, batch(ids, v=[b] * 3), "id", absent_at=version, flush=True)
    with pytest.raises(DuplicateRecordError, match="b0-1"):
        db.add_records(P, batch(["b0-1", "new"], v=[0, 0]), "id", flush=True)
    version = db.committed_version(P)
    db.add_records(P, batch(["late"], v=[1]), "id", flush=True)
    with pytest.raises(DuplicateRecordError, match="late"):
        db.add_records(P, batch(["late", "x"], v=[0, 0]), "id", absent_at=version, flush=True)
    got = DeltaTableDatabase(tmp_path).get_all_records(P, "id")
    assert got is not None and got.num_rows == 12 * 3 + 1
