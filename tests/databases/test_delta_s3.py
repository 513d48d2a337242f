"""DeltaTableDatabase on object storage (the test run's S3 server on loopback): a clean error
for a missing bucket, lookup sidecars kept in the bucket and used by later instances, id
indexes advanced from the files other writers added, and a repeated read answered without a
request."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from orcapod.databases import DeltaTableDatabase, column_cache
from orcapod.databases.column_index import INDEX_DIR, MIN_INDEXED_VALUES, PACK_AFTER, scheme
from orcapod.errors import DatabaseError, InputValidationError

PATH = ("results", "fn")


def _rows(start: int, stop: int) -> pa.Table:
    return pa.table(
        {
            "id": [f"r{i}" for i in range(start, stop)],
            "key": [f"k{i}" for i in range(start, stop)],
            "n": list(range(start, stop)),
        }
    )


def _lookup(db: DeltaTableDatabase, keys: list[str]) -> list[str]:
    table = db.get_records_with_column_value(PATH, {"key": keys}, record_id_column="id")
    return [] if table is None else sorted(table.column("key").to_pylist())


def _store(s3_server: Any) -> tuple[str, str]:
    bucket = s3_server.fresh_bucket()
    return bucket, f"s3://{bucket}/store"


def test_a_missing_bucket_fails_at_construction_naming_it(s3_server: Any) -> None:
    with pytest.raises(InputValidationError, match=r"'no-such-bucket'.*create it"):
        DeltaTableDatabase("s3://no-such-bucket/store", storage_options=s3_server.options)


def test_lookup_sidecars_live_in_the_bucket_and_serve_a_new_instance(s3_server: Any) -> None:
    bucket, base = _store(s3_server)
    db = DeltaTableDatabase(base, storage_options=s3_server.options)
    _lookup(db, [f"x{i}" for i in range(MIN_INDEXED_VALUES)])  # index "key" from now on
    for b in range(PACK_AFTER + 1):
        db.add_records(PATH, _rows(b * 10, (b + 1) * 10), "id")
        db.flush()
    prefix = f"store/results/fn/{INDEX_DIR}/{scheme().hex()}/key/"
    assert len(s3_server.keys(bucket, prefix)) == PACK_AFTER + 1  # one sidecar per commit
    wanted = [f"k{i}" for i in range(0, 200, 3)]
    expected = sorted(k for k in wanted if int(k[1:]) < 10 * (PACK_AFTER + 1))
    later = DeltaTableDatabase(base, storage_options=s3_server.options)
    assert _lookup(later, wanted) == expected
    assert f"{prefix}pack.h64p" in s3_server.keys(bucket, prefix)  # it packed the sidecars
    # a third instance asking only for absent values reads the pack, never the data files
    # (damaged here: reading one would fail)
    client = s3_server.client()
    for key in s3_server.keys(bucket, "store/results/fn/part-"):
        client.put_object(Bucket=bucket, Key=key, Body=b"not parquet")
    third = DeltaTableDatabase(base, storage_options=s3_server.options)
    assert _lookup(third, [f"absent{i}" for i in range(50)]) == []


def test_id_index_follows_other_writers_file_by_file(s3_server: Any) -> None:
    _, base = _store(s3_server)
    one = DeltaTableDatabase(base, storage_options=s3_server.options)
    two = DeltaTableDatabase(base, storage_options=s3_server.options)
    one.add_records(PATH, _rows(0, 20), "id")
    one.flush()
    one.add_records(PATH, _rows(0, 25), "id", skip_duplicates=True)  # builds one's index
    one.flush()
    two.add_records(PATH, _rows(25, 40), "id")
    two.flush()
    # one's index takes in two's file: a clash with it is found, fresh ids are stored
    one.add_records(PATH, _rows(30, 50), "id", skip_duplicates=True)
    one.flush()
    table = one.get_all_records(PATH, record_id_column="id")
    assert table is not None
    assert table.num_rows == 50
    assert pc.count_distinct(table.column("id")).as_py() == 50


def test_an_unchanged_table_is_checked_by_one_request_and_new_commits_are_seen(
    s3_server: Any,
) -> None:
    _, base = _store(s3_server)
    reader = DeltaTableDatabase(base, storage_options=s3_server.options)
    writer = DeltaTableDatabase(base, storage_options=s3_server.options)
    assert reader.committed_version(PATH) == -1
    before = s3_server.counts()
    assert reader.committed_version(PATH) == -1  # still no table: one probe
    assert sum(s3_server.counts().values()) - sum(before.values()) == 1
    writer.add_records(PATH, _rows(0, 5), "id")
    writer.flush()
    assert reader.committed_version(PATH) == 0  # the probe found the first commit
    before = s3_server.counts()
    assert reader.committed_version(PATH) == 0
    assert sum(s3_server.counts().values()) - sum(before.values()) == 1
    writer.add_records(PATH, _rows(5, 9), "id")
    writer.flush()
    table = reader.get_all_records(PATH, record_id_column="id")
    assert table is not None
    assert table.num_rows == 9


def _projected(db: DeltaTableDatabase) -> list[tuple[Any, ...]]:
    table = db.get_records_with_column_value(PATH, {}, record_id_column="id", columns=["id", "n"])
    assert table is not None
    return sorted(zip(*(table.column(c).to_pylist() for c in ("id", "n")), strict=True))


def test_whole_projected_columns_are_cached_beside_the_table(s3_server: Any) -> None:
    bucket, base = _store(s3_server)
    db = DeltaTableDatabase(base, storage_options=s3_server.options)
    db.add_records(PATH, _rows(0, 10).drop_columns(["n"]), "id")  # a file without "n"
    db.flush()
    for b in range(1, 6):
        db.add_records(PATH, _rows(b * 10, (b + 1) * 10), "id")
        db.flush()
    db.add_records(PATH, _rows(60, 63), "id")  # pending rows are part of the answer
    expected = [(f"r{i}", None if i < 10 else i) for i in range(63)]
    assert _projected(db) == sorted(expected)
    prefix = f"store/results/fn/{INDEX_DIR}/columns-v2/"
    names = {key.rsplit("/", 1)[-1] for key in s3_server.keys(bucket, prefix)}
    assert len(names) == 7 and "pack.arrow" in names  # one sidecar per data file, a pack
    db.flush()  # (this object read the projection: its commit writes the new file's sidecar)
    assert len(s3_server.keys(bucket, prefix)) == 8
    later = DeltaTableDatabase(base, storage_options=s3_server.options)
    assert _projected(later) == sorted(expected)  # the pack, and the new file's sidecar
    # the pack answers without the data files (damaged here: reading one would fail)
    client = s3_server.client()
    for key in s3_server.keys(bucket, "store/results/fn/part-"):
        client.put_object(Bucket=bucket, Key=key, Body=b"not parquet")
    assert _projected(DeltaTableDatabase(base, storage_options=s3_server.options)) == sorted(
        expected
    )
    # a damaged pack or sidecar is never believed: the data file is read (and fails here)
    for key in s3_server.keys(bucket, prefix):
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        client.put_object(Bucket=bucket, Key=key, Body=body[:-1] + bytes([body[-1] ^ 1]))
    with pytest.raises(DatabaseError, match="Cannot read the data file"):
        _projected(DeltaTableDatabase(base, storage_options=s3_server.options))


def _data_file_gets(s3_server: Any, before: dict[str, int]) -> int:
    after = s3_server.paths()
    return sum(
        n - before.get(k, 0)
        for k, n in after.items()
        if k.startswith("GET ") and k.endswith(".parquet") and "/part-" in k
    )


def _by_key(db: DeltaTableDatabase, keys: list[str]) -> list[tuple[str, object]]:
    found = db.get_records_with_column_value(
        PATH, {"key": keys}, record_id_column="id", columns=["n"]
    )
    assert found is not None and found.column_names == ["id", "n"]
    return sorted(zip(found.column("id").to_pylist(), found.column("n").to_pylist(), strict=True))


def test_filtered_reads_of_a_small_table_read_each_data_file_once(
    s3_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, base = _store(s3_server)
    db = DeltaTableDatabase(base, storage_options=s3_server.options)
    db.add_records(PATH, _rows(0, 10).drop_columns(["n"]), "id")  # a file without "n"
    db.flush()
    for b in range(1, 4):
        db.add_records(PATH, _rows(b * 10, (b + 1) * 10), "id")
        db.flush()
    db.add_records(PATH, _rows(40, 42), "id")  # pending rows are part of the answer
    keys = ["k3", "k15", "k33", "k41", "k99"]
    expected = [("r15", 15), ("r3", None), ("r33", 33), ("r41", 41)]
    assert _by_key(db, keys) == expected
    before = s3_server.paths()
    assert _by_key(db, keys) == expected
    assert _data_file_gets(s3_server, before) == 0  # answered from the columns read before
    db.flush()
    before = s3_server.paths()
    assert _by_key(db, keys) == expected
    # the new data file only (its footer and columns: one or two reads), not the 4 older ones
    assert 0 < _data_file_gets(s3_server, before) <= 2
    # a table above the size limit is queried instead, with the same answer
    monkeypatch.setattr(column_cache, "SMALL_TABLE_BYTES", 0)
    fresh = DeltaTableDatabase(base, storage_options=s3_server.options)
    assert _by_key(fresh, keys) == expected
    # a filter on a column no data file has yet (pending rows only) is not served from cache
    fresh.add_records(PATH, pa.table({"id": ["r50"], "key": ["k50"], "extra": ["e"]}), "id")
    found = fresh.get_records_with_column_value(PATH, {"extra": ["e"]}, record_id_column="id")
    assert found is not None and found.column("id").to_pylist() == ["r50"]
