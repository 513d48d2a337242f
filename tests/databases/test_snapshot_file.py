"""Snapshot sidecars (``snapshot_file``): a look-up that reads a table's files directly uses
the sidecar only while it names the table's newest commit; other writers' commits, damage and
a rewritten log make it fall back to opening the table, and never give stale rows. The ids
sidecar on object storage answers only for the commit it was recorded for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from orcapod.databases import DeltaTableDatabase
from orcapod.databases.object_stores import filesystem_of
from orcapod.databases.snapshot_file import IDS_SIDECAR, SIDECAR, current, known_ids
from orcapod.databases.table_files import TableFiles

PATH = ("results", "fn")


def _rows(start: int, stop: int) -> pa.Table:
    return pa.table({"id": [f"r{i:04d}" for i in range(start, stop)], "n": range(start, stop)})


def _commit(db: DeltaTableDatabase, start: int, stop: int) -> None:
    db.add_records(PATH, _rows(start, stop), "id")
    db.flush()


def _files(db: DeltaTableDatabase) -> TableFiles:
    files = TableFiles.for_table(db.table_uri(PATH), filesystem_of(db.base_path, None))
    assert files is not None
    return files


def _by_tag(db: DeltaTableDatabase, n: int) -> list[int]:
    got = db.get_records_with_column_value(PATH, {"n": n}, "id", statistics=True)
    return [] if got is None else got.column("n").to_pylist()


def _by_id(db: DeltaTableDatabase, i: int) -> list[int]:
    got = db.get_records_by_ids(PATH, [f"r{i:04d}"], "id", locate=True)
    return [] if got is None else got.column("n").to_pylist()


def test_a_direct_read_records_the_snapshot_and_the_next_process_uses_it(
    tmp_path: Path,
) -> None:
    writer = DeltaTableDatabase(tmp_path / "store")
    _commit(writer, 0, 20)
    assert current(_files(writer), writer.table_uri(PATH)) is None  # (nothing recorded yet)
    assert _by_tag(DeltaTableDatabase(writer.base_path), 7) == [7]
    snapshot = current(_files(writer), writer.table_uri(PATH))
    assert snapshot is not None
    assert snapshot.version == 0
    assert [Path(u).name for u in snapshot.uris] == [
        p.name for p in Path(writer.table_uri(PATH)).glob("*.parquet")
    ]
    assert snapshot.schema.names == ["__record_id", "n"]
    reader = DeltaTableDatabase(writer.base_path)
    assert _by_tag(reader, 8) == [8] and _by_id(reader, 9) == [9]
    assert reader._states[PATH].table is None  # (answered without opening the table)


@pytest.mark.parametrize("read", [_by_tag, _by_id])
def test_commits_after_the_sidecar_are_seen(tmp_path: Path, read) -> None:  # type: ignore[no-untyped-def]
    writer = DeltaTableDatabase(tmp_path / "store")
    _commit(writer, 0, 20)
    reader = DeltaTableDatabase(writer.base_path)
    assert read(reader, 25) == []
    _commit(writer, 20, 40)  # another writer's commit: the sidecar is one version behind
    assert current(_files(writer), writer.table_uri(PATH)) is None
    assert read(reader, 25) == [25]
    assert read(DeltaTableDatabase(writer.base_path), 33) == [33]
    snapshot = current(_files(writer), writer.table_uri(PATH))
    assert snapshot is not None and snapshot.version == 1


@pytest.mark.parametrize("damage", ["flipped byte", "truncated", "other commit"])
def test_a_damaged_or_foreign_sidecar_is_not_used(tmp_path: Path, damage: str) -> None:
    writer = DeltaTableDatabase(tmp_path / "store")
    _commit(writer, 0, 20)
    assert _by_tag(DeltaTableDatabase(writer.base_path), 3) == [3]
    sidecar = Path(writer.table_uri(PATH), SIDECAR)
    data = bytearray(sidecar.read_bytes())
    if damage == "flipped byte":
        data[20] ^= 0xFF
        sidecar.write_bytes(bytes(data))
    elif damage == "truncated":
        sidecar.write_bytes(bytes(data[:30]))
    else:  # the table's newest commit is not the one the sidecar was written for
        log = Path(writer.table_uri(PATH), "_delta_log", f"{0:020d}.json")
        log.write_bytes(log.read_bytes() + b"\n")
    assert current(_files(writer), writer.table_uri(PATH)) is None
    assert _by_tag(DeltaTableDatabase(writer.base_path), 4) == [4]
    assert _by_id(DeltaTableDatabase(writer.base_path), 5) == [5]


def test_an_unwritable_sidecar_leaves_reads_working(tmp_path: Path) -> None:
    writer = DeltaTableDatabase(tmp_path / "store")
    _commit(writer, 0, 20)
    Path(writer.table_uri(PATH), SIDECAR).parent.mkdir(parents=True, exist_ok=True)
    Path(writer.table_uri(PATH), SIDECAR).mkdir()  # (a directory where the file would go)
    assert _by_tag(DeltaTableDatabase(writer.base_path), 3) == [3]
    assert current(_files(writer), writer.table_uri(PATH)) is None


def _known(db: DeltaTableDatabase, options: dict[str, str]) -> frozenset[str] | None:
    files = TableFiles.for_table(db.table_uri(PATH), filesystem_of(db.base_path, options))
    assert files is not None
    found = known_ids(files)
    return None if found is None else found[0]


@pytest.mark.parametrize("change", ["flipped byte", "new commit", "log created again"])
def test_known_ids_on_object_storage_hold_only_for_the_recorded_newest_commit(
    s3_server: Any, change: str
) -> None:
    bucket = s3_server.fresh_bucket()
    options = s3_server.options
    db = DeltaTableDatabase(f"s3://{bucket}/store", storage_options=options)
    _commit(db, 0, 3)  # (the commit that creates a small table records its ids)
    assert _known(db, options) == {f"r{i:04d}" for i in range(3)}
    client = s3_server.client()
    sidecar = f"store/results/fn/{IDS_SIDECAR}"
    if change == "flipped byte":
        body = bytearray(client.get_object(Bucket=bucket, Key=sidecar)["Body"].read())
        body[10] ^= 0xFF
        client.put_object(Bucket=bucket, Key=sidecar, Body=bytes(body))
    elif change == "new commit":
        _commit(DeltaTableDatabase(f"s3://{bucket}/store", storage_options=options), 3, 4)
    else:  # the table deleted (but for its sidecar) and created again: version 0 again
        for key in s3_server.keys(bucket, "store/results/fn/"):
            if key != sidecar:
                client.delete_object(Bucket=bucket, Key=key)
        write_deltalake(db.table_uri(PATH), _rows(5, 9), storage_options=options)
    assert _known(db, options) is None
