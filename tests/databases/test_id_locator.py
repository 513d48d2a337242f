"""The record-id locator of DeltaTableDatabase: look-ups of a few ids through it give exactly
the rows a query gives, after many commits, other writers' commits, compaction, schema
evolution, and with a missing, damaged or wrong pack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orcapod.databases import DeltaTableDatabase
from orcapod.databases.id_locator import (
    ENTRY,
    PACK_AFTER,
    IdLocator,
    id_hashes,
    pack_name,
    write_pack,
)
from orcapod.databases.maintenance import compact_table
from orcapod.databases.object_stores import filesystem_of
from orcapod.databases.table_files import TableFiles

PATH = ("results", "fn")


def _rows(start: int, stop: int, extra: bool = False) -> pa.Table:
    columns = {
        "id": [f"r{i:05d}" for i in range(start, stop)],
        "n": list(range(start, stop)),
    }
    if extra:
        columns["note"] = [f"note {i}" for i in range(start, stop)]
    return pa.table(columns)


def _commit(db: DeltaTableDatabase, start: int, stop: int, extra: bool = False) -> None:
    db.add_records(PATH, _rows(start, stop, extra), "id")
    db.flush()


def _located(db: DeltaTableDatabase, ids: list[str]) -> pa.Table | None:
    return db.get_records_by_ids(PATH, ids, "id", locate=True)


def _queried(db: DeltaTableDatabase, ids: list[str]) -> pa.Table | None:
    return DeltaTableDatabase(db.base_path).get_records_by_ids(PATH, ids, "id")


def _same(db: DeltaTableDatabase, ids: list[str]) -> None:
    located, queried = _located(db, ids), _queried(db, ids)
    if queried is None:
        assert located is None
        return
    assert located is not None
    assert located.schema == queried.schema
    assert located.sort_by("id").to_pylist() == queried.sort_by("id").to_pylist()


def _locator(db: DeltaTableDatabase) -> IdLocator:
    files = TableFiles.for_table(db.table_uri(PATH), filesystem_of(db.base_path, None))
    assert files is not None
    return IdLocator(files)


def _pack(db: DeltaTableDatabase) -> Path:
    return Path(db.table_uri(PATH), pack_name())


WANTED = ["r00003", "r00150", "r00299", "r00042", "missing"]


def test_located_rows_equal_the_query_after_many_commits(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path / "store")
    for b in range(PACK_AFTER + 2):
        _commit(db, b * 30, (b + 1) * 30)
    _same(db, WANTED)
    _same(db, ["r00299"])
    assert _located(db, ["missing", "also missing"]) is None
    # the look-up wrote a pack covering every file, and a fresh database answers from it
    assert _pack(db).is_file()
    assert len(_locator(db).packed_files()) == PACK_AFTER + 2
    _same(DeltaTableDatabase(tmp_path / "store"), WANTED)


def test_commits_after_the_pack_by_this_and_other_writers_are_found(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path / "store")
    other = DeltaTableDatabase(tmp_path / "store")
    for b in range(PACK_AFTER):
        _commit(db, b * 30, (b + 1) * 30)
    _same(db, WANTED)
    packed = _locator(db).packed_files()
    # interleaved commits of two writers, after the pack was written
    _commit(other, 1000, 1010)
    _commit(db, 1010, 1020)
    _commit(other, 1020, 1030)
    new = ["r01005", "r01015", "r01025", "r00007"]
    _same(db, new)
    _same(other, new)
    assert _locator(db).packed_files() == packed  # (a few new files: read, not repacked)
    # uncommitted rows are found too
    db.add_records(PATH, _rows(2000, 2001), "id")
    got = _located(db, ["r02000", "r00001"])
    assert got is not None and sorted(got.column("id").to_pylist()) == ["r00001", "r02000"]


def test_after_compaction_the_pack_covers_the_new_files(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path / "store")
    for b in range(PACK_AFTER + 1):
        _commit(db, b * 30, (b + 1) * 30)
    _same(db, WANTED)
    old = _locator(db).packed_files()
    compact_table(Path(db.table_uri(PATH)), vacuum=True, retention_hours=0)
    now = _locator(db).packed_files()
    assert now and not now & old
    _same(db, WANTED)
    _same(DeltaTableDatabase(tmp_path / "store"), WANTED)


def test_an_old_pack_after_compaction_is_not_trusted(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path / "store")
    for b in range(PACK_AFTER + 1):
        _commit(db, b * 30, (b + 1) * 30)
    _same(db, WANTED)
    saved = _pack(db).read_bytes()
    compact_table(Path(db.table_uri(PATH)), vacuum=False)
    _pack(db).write_bytes(saved)  # the pack of the files before compaction
    _same(DeltaTableDatabase(tmp_path / "store"), WANTED)


@pytest.mark.parametrize("damage", ["missing", "flipped entry", "flipped header", "truncated"])
def test_a_missing_or_damaged_pack_never_gives_a_wrong_answer(tmp_path: Path, damage: str) -> None:
    db = DeltaTableDatabase(tmp_path / "store")
    for b in range(PACK_AFTER):
        _commit(db, b * 30, (b + 1) * 30)
    _same(db, WANTED)
    pack = _pack(db)
    data = bytearray(pack.read_bytes())
    if damage == "missing":
        pack.unlink()
    elif damage == "truncated":
        pack.write_bytes(bytes(data[: len(data) // 2]))
    else:
        position = len(data) - 20 if damage == "flipped entry" else 60
        data[position] ^= 0xFF
        pack.write_bytes(bytes(data))
    _same(DeltaTableDatabase(tmp_path / "store"), WANTED)
    _same(DeltaTableDatabase(tmp_path / "store"), [f"r{i:05d}" for i in range(0, 240, 7)])


def test_a_pack_pointing_at_wrong_rows_is_not_believed(tmp_path: Path) -> None:
    """A pack with valid checksums whose entries point at other rows (as a foreign or buggy
    writer might leave): every row read is checked against the id asked for."""
    db = DeltaTableDatabase(tmp_path / "store")
    for b in range(PACK_AFTER):
        _commit(db, b * 30, (b + 1) * 30)
    files = sorted(Path(db.table_uri(PATH)).glob("*.parquet"))
    parts = []
    for ordinal, file in enumerate(files):
        ids = pq.read_table(file, columns=["__record_id"]).column(0)
        part = np.empty(len(ids), dtype=ENTRY)
        part["hash"], part["file"] = id_hashes(ids), ordinal
        part["row"] = np.arange(len(ids))[::-1]  # the wrong rows
        parts.append(part)
    entries = np.concatenate(parts)
    entries = entries[np.argsort(entries["hash"])]
    _pack(db).parent.mkdir(parents=True)
    _pack(db).write_bytes(write_pack([f.name for f in files], [30] * len(files), entries))
    assert len(_locator(db).packed_files()) == len(files)
    _same(DeltaTableDatabase(tmp_path / "store"), [f"r{i:05d}" for i in range(0, 240, 5)])
    # the wrong pack was replaced by one built from the data files
    _same(DeltaTableDatabase(tmp_path / "store"), WANTED)


def test_files_written_before_a_column_existed(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path / "store")
    for b in range(PACK_AFTER):
        _commit(db, b * 30, (b + 1) * 30, extra=b >= 4)
    _same(db, ["r00001", "r00200"])
    got = _located(db, ["r00001", "r00200"])
    assert got is not None
    assert dict(zip(got.column("id").to_pylist(), got.column("note").to_pylist(), strict=True)) == {
        "r00001": None,
        "r00200": "note 200",
    }


def test_without_locate_no_locator_is_built(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path / "store")
    for b in range(PACK_AFTER):
        _commit(db, b * 30, (b + 1) * 30)
    got = db.get_records_by_ids(PATH, ["r00003"], "id")
    assert got is not None and got.column("n").to_pylist() == [3]
    assert not _pack(db).exists()


def test_a_pack_that_cannot_be_written_leaves_answers_from_memory(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path / "store")
    for b in range(PACK_AFTER):
        _commit(db, b * 30, (b + 1) * 30)
    _pack(db).mkdir(parents=True)  # (a directory where the pack would go: writing fails)
    fresh = DeltaTableDatabase(tmp_path / "store")
    _same(fresh, WANTED)
    _same(fresh, WANTED)
    assert _pack(db).is_dir()


def test_on_object_storage_the_pack_lives_beside_the_table(s3_server: Any) -> None:
    bucket = s3_server.fresh_bucket()
    base = f"s3://{bucket}/store"
    db = DeltaTableDatabase(base, storage_options=s3_server.options)
    for b in range(PACK_AFTER):
        _commit(db, b * 30, (b + 1) * 30)
    query = DeltaTableDatabase(base, storage_options=s3_server.options)
    expected = query.get_records_by_ids(PATH, WANTED, "id")
    assert expected is not None
    got = _located(db, WANTED)
    assert got is not None and got.sort_by("id").to_pylist() == expected.sort_by("id").to_pylist()
    assert f"store/results/fn/{pack_name()}" in s3_server.keys(bucket, "store/results/fn/")
    later = DeltaTableDatabase(base, storage_options=s3_server.options)
    again = _located(later, WANTED)
    assert again is not None and again.sort_by("id").to_pylist() == got.sort_by("id").to_pylist()
