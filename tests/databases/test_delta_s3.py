"""DeltaTableDatabase on object storage (the test run's S3 server on loopback): a clean error
for a missing bucket, lookup sidecars kept in the bucket and used by later instances, id
indexes advanced from the files other writers added, and a repeated read answered without a
request."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from orcapod.databases import DeltaTableDatabase, column_cache, delta_state
from orcapod.databases.column_index import INDEX_DIR, MIN_INDEXED_VALUES, PACK_AFTER, scheme
from orcapod.errors import (
    DatabaseError,
    DuplicateRecordError,
    InputValidationError,
    SchemaError,
)

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


def test_writers_on_object_storage_list_no_index_directories(s3_server: Any) -> None:
    _, base = _store(s3_server)
    db = DeltaTableDatabase(base, storage_options=s3_server.options)
    _lookup(db, [f"x{i}" for i in range(MIN_INDEXED_VALUES)])  # index "key" from now on
    db.add_records(PATH, _rows(0, 10), "id")
    db.flush()
    before = s3_server.paths()
    _lookup(db, [f"x{i}" for i in range(MIN_INDEXED_VALUES)])
    writer = DeltaTableDatabase(base, storage_options=s3_server.options)
    writer.add_records(PATH, _rows(10, 20), "id")
    writer.flush()
    after = s3_server.paths()
    listed = [k for k, n in after.items() if k.startswith("LIST ") and n > before.get(k, 0)]
    assert not [k for k in listed if INDEX_DIR in k]  # (a request per run and writer)
    # the file the writer did not index is indexed by the next lookup, which finds its rows
    wanted = [f"k{i}" for i in range(0, 2 * MIN_INDEXED_VALUES, 2)]
    later = DeltaTableDatabase(base, storage_options=s3_server.options)
    assert _lookup(later, wanted) == sorted(k for k in wanted if int(k[1:]) < 20)


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


def _connector(s3_server: Any) -> Callable[[], DeltaTableDatabase]:
    """A new connection per call to one fresh store on the server (as another process has)."""
    _, base = _store(s3_server)
    return lambda: DeltaTableDatabase(base, storage_options=s3_server.options)


def _requests(s3_server: Any, before: dict[str, int]) -> int:
    return sum(s3_server.since(before).values())


def test_reads_right_after_a_refresh_make_no_request_and_see_this_process_commits(
    s3_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delta_state, "READ_FRESH_SECONDS", 60.0)  # (a slow machine)
    connect = _connector(s3_server)
    reader, writer = connect(), connect()
    writer.add_records(PATH, _rows(0, 5), "id")
    writer.flush()
    version = reader.committed_version(PATH)
    before = s3_server.paths()
    assert reader.committed_version(PATH) == version == 0
    assert reader.get_records_with_column_value(PATH, {"key": ["k1"]}) is not None
    after = s3_server.paths()
    log = [k for k, n in after.items() if "_delta_log" in k and n > before.get(k, 0)]
    assert not log  # the snapshot confirmed moments ago
    # a commit by another database object of this process is seen at once
    writer.add_records(PATH, _rows(5, 9), "id")
    writer.flush()
    assert reader.committed_version(PATH) == 1
    table = reader.get_all_records(PATH, record_id_column="id")
    assert table is not None and table.num_rows == 9


def test_tokens_and_versions_right_after_an_own_commit_make_no_request(
    s3_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delta_state, "READ_FRESH_SECONDS", 60.0)  # (a slow machine)
    connect = _connector(s3_server)
    db = connect()
    db.add_records(PATH, _rows(0, 5), "id")
    db.flush()  # creates the table
    start = db.table_token(PATH)
    db.add_records(PATH, _rows(5, 9), "id")
    db.flush()  # an append
    before = s3_server.counts()
    token = db.table_token(PATH)
    assert token is not None and token.endswith("@1")
    assert db.appended_token(PATH, start) == token  # only this object appended since
    assert db.committed_version(PATH) == 1
    assert _requests(s3_server, before) == 0  # the commit left the snapshot current
    # another database object's commit in this process is seen at once
    other = connect()
    other.add_records(PATH, _rows(9, 12), "id")
    other.flush()
    token = db.table_token(PATH)
    assert token is not None and token.endswith("@2")
    assert db.appended_token(PATH, start) is None  # version 2 is not this object's


def test_an_unchanged_table_is_checked_by_one_request_and_new_commits_are_seen(
    s3_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delta_state, "READ_FRESH_SECONDS", 0.0)  # (each read checks)
    connect = _connector(s3_server)
    reader, writer = connect(), connect()
    assert reader.committed_version(PATH) == -1
    before = s3_server.counts()
    assert reader.committed_version(PATH) == -1  # still no table: one probe
    assert _requests(s3_server, before) == 1
    writer.add_records(PATH, _rows(0, 5), "id")
    writer.flush()
    assert reader.committed_version(PATH) == 0  # the probe found the first commit
    before = s3_server.counts()
    assert reader.committed_version(PATH) == 0
    assert _requests(s3_server, before) == 1
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
    # this object read the projection and holds every file's part: its commit rewrites the
    # pack with the new file's part instead of writing that file's sidecar
    db.flush()
    assert len(s3_server.keys(bucket, prefix)) == 7
    later = DeltaTableDatabase(base, storage_options=s3_server.options)
    before = s3_server.paths()
    assert _projected(later) == sorted(expected)
    assert _sidecar_gets(s3_server, before) == {"pack.arrow": 1}  # the pack alone
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


def _sidecar_gets(s3_server: Any, before: dict[str, int]) -> dict[str, int]:
    """The column-cache objects read since ``before``: ``pack.arrow``, or ``sidecar``."""
    after = s3_server.paths()
    found: dict[str, int] = {}
    for key, n in after.items():
        if key.startswith("GET ") and "/columns-v#/" in key and n > before.get(key, 0):
            name = "pack.arrow" if key.endswith("/pack.arrow") else "sidecar"
            found[name] = found.get(name, 0) + n - before.get(key, 0)
    return found


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
    # nothing read: the commit kept the new data file's part (and wrote its sidecar)
    assert _data_file_gets(s3_server, before) == 0
    later = DeltaTableDatabase(base, storage_options=s3_server.options)
    before = s3_server.paths()
    assert _by_key(later, keys) == expected
    assert _data_file_gets(s3_server, before) == 0  # the sidecars (pack) of all five files
    # a table above the size limit is queried instead, with the same answer
    monkeypatch.setattr(column_cache, "SMALL_TABLE_BYTES", 0)
    fresh = DeltaTableDatabase(base, storage_options=s3_server.options)
    assert _by_key(fresh, keys) == expected
    # a filter on a column no data file has yet (pending rows only) is not served from cache
    fresh.add_records(PATH, pa.table({"id": ["r50"], "key": ["k50"], "extra": ["e"]}), "id")
    found = fresh.get_records_with_column_value(PATH, {"extra": ["e"]}, record_id_column="id")
    assert found is not None and found.column("id").to_pylist() == ["r50"]


def _sidecars(s3_server: Any, bucket: str) -> dict[str, str]:
    """The column-cache sidecars of ``PATH`` by data file name (packs left out)."""
    prefix = f"store/results/fn/{INDEX_DIR}/columns-v2/"
    keys = s3_server.keys(bucket, prefix)
    return {k.rsplit("/", 1)[-1].removesuffix(".arrow"): k for k in keys if "pack" not in k}


def test_a_commit_writes_the_sidecars_of_the_projections_its_process_read(
    s3_server: Any,
) -> None:
    bucket, base = _store(s3_server)
    db = DeltaTableDatabase(base, storage_options=s3_server.options)
    # a projected read before the table exists asks for that projection's sidecars
    got = db.get_records_with_column_value(PATH, {}, record_id_column="id", columns=["id", "n"])
    assert got is None
    db.add_records(PATH, _rows(0, 10), "id")
    db.flush()
    first = {k.rsplit("/", 1)[-1] for k in s3_server.keys(bucket, "store/results/fn/part-")}
    assert set(_sidecars(s3_server, bucket)) == first  # the created table's one file
    db.add_records(PATH, _rows(10, 25), "id")
    db.flush()
    files = {k.rsplit("/", 1)[-1] for k in s3_server.keys(bucket, "store/results/fn/part-")}
    # the second commit's object held the first file's part: it wrote the pack of both
    assert set(_sidecars(s3_server, bucket)) == first
    assert _packed(s3_server, bucket) == files
    expected = [(f"r{i}", i) for i in range(25)]
    before = s3_server.paths()
    assert _projected(db) == sorted(expected)  # kept in memory too: no data file read
    assert _data_file_gets(s3_server, before) == 0
    later = DeltaTableDatabase(base, storage_options=s3_server.options)
    before = s3_server.paths()
    assert _projected(later) == sorted(expected)
    assert _data_file_gets(s3_server, before) == 0  # the sidecars, not the data files
    # another database object of this process writing the table writes them too (even one
    # that skips the duplicate check, so never reads the table)
    writer = DeltaTableDatabase(base, storage_options=s3_server.options)
    writer.add_records(PATH, _rows(25, 30), "id", absent_at=writer.committed_version(PATH))
    writer.flush()
    assert len(_sidecars(s3_server, bucket)) == 2  # (it holds no other part: no pack)
    before = s3_server.paths()
    assert _projected(later) == sorted([*expected, *((f"r{i}", i) for i in range(25, 30))])
    assert _data_file_gets(s3_server, before) == 0
    # commits to a table whose projections this process never read write none
    writer.add_records(("other",), _rows(0, 5), "id")
    writer.flush()
    assert not s3_server.keys(bucket, f"store/other/{INDEX_DIR}/columns-v2/")


def _ids(db: DeltaTableDatabase) -> list[str]:
    table = db.get_records_with_column_value(PATH, {}, record_id_column="id", columns=[])
    assert table is not None
    return sorted(table.column("id").to_pylist())


def test_a_narrow_projection_read_first_brings_the_wider_one_read_after_it(
    s3_server: Any,
) -> None:
    _, base = _store(s3_server)
    db = DeltaTableDatabase(base, storage_options=s3_server.options)
    for b in range(3):
        db.add_records(PATH, _rows(b * 10, (b + 1) * 10), "id")
        db.flush()
    # as a node does: the ids, then more columns of the same rows; then a commit
    assert _ids(db) == sorted(f"r{i}" for i in range(30))
    assert _projected(db) == sorted((f"r{i}", i) for i in range(30))
    db.add_records(PATH, _rows(30, 40), "id")
    db.flush()
    later = DeltaTableDatabase(base, storage_options=s3_server.options)
    before = s3_server.paths()
    assert _ids(later) == sorted(f"r{i}" for i in range(40))
    assert _projected(later) == sorted((f"r{i}", i) for i in range(40))
    # one object read for both projections, no data file
    assert _sidecar_gets(s3_server, before) == {"pack.arrow": 1}
    assert _data_file_gets(s3_server, before) == 0
    # the wider projection keeps its own pack, for a process that reads only it
    alone = DeltaTableDatabase(base, storage_options=s3_server.options)
    before = s3_server.paths()
    assert _projected(alone) == sorted((f"r{i}", i) for i in range(40))
    assert _sidecar_gets(s3_server, before) == {"pack.arrow": 1}
    assert _data_file_gets(s3_server, before) == 0


def _identity_row(n: int = 0, value: Any = "a") -> pa.Table:
    return pa.table({"id": [f"code{n}"], "components": [value]})


def test_an_add_of_rows_a_small_table_holds_is_told_by_its_ids_sidecar(
    s3_server: Any,
) -> None:
    _, base = _store(s3_server)
    path = ("_identity",)

    def add(row: pa.Table) -> int:
        """Add ``row`` (skip_duplicates) through a new database object: its requests."""
        db = DeltaTableDatabase(base, storage_options=s3_server.options)
        before = s3_server.counts()
        db.add_records(path, row, "id", skip_duplicates=True, flush=True)
        return _requests(s3_server, before)

    def stored() -> list[str]:
        db = DeltaTableDatabase(base, storage_options=s3_server.options)
        table = db.get_all_records(path, record_id_column="id")
        assert table is not None
        return sorted(table.column("id").to_pylist())

    add(_identity_row())  # creates the table and writes its sidecar
    # every later process: the sidecar and a listing of the log, without opening the table
    assert add(_identity_row()) == 2
    assert stored() == ["code0"]
    # an incompatible row is refused as before
    with pytest.raises(SchemaError):
        add(_identity_row(value=1))
    # a row not stored yet is added; the sidecar of the older version is not believed
    add(_identity_row(1))
    assert stored() == ["code0", "code1"]
    assert add(_identity_row()) > 2  # opens the table, finds the row, writes the sidecar
    assert add(_identity_row(1)) == 2  # (the sidecar of the new version)
    assert stored() == ["code0", "code1"]


def _packed(s3_server: Any, bucket: str) -> set[str]:
    """The data files whose parts the column-cache pack of ``PATH`` holds."""
    (key,) = [k for k in s3_server.keys(bucket, "store/results/fn/") if k.endswith("pack.arrow")]
    body = s3_server.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return set(column_cache._decode(body))


def test_a_damaged_or_stale_sidecar_is_ignored_and_rewritten(
    s3_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(column_cache, "COMMIT_PACK_BYTES", 0)  # sidecars at commit, no pack
    bucket, base = _store(s3_server)
    db = DeltaTableDatabase(base, storage_options=s3_server.options)
    db.get_records_with_column_value(PATH, {}, record_id_column="id", columns=["id", "n"])
    db.add_records(PATH, _rows(0, 10), "id")
    db.flush()
    db.add_records(PATH, _rows(10, 20), "id")
    db.flush()
    sidecars = _sidecars(s3_server, bucket)
    (first, first_key), (_, second_key) = sorted(sidecars.items())
    client = s3_server.client()
    sizes = {
        k.rsplit("/", 1)[-1]: client.head_object(Bucket=bucket, Key=k)["ContentLength"]
        for k in s3_server.keys(bucket, "store/results/fn/part-")
    }
    # stale: well formed and checksummed, but describing another size of the file (wrong rows)
    wrong = pa.table({"__record_id": [f"x{i}" for i in range(10)], "n": list(range(10))})
    stale = column_cache._encode({first: (wrong, column_cache.DataFile(sizes[first] + 1, 10))})
    client.put_object(Bucket=bucket, Key=first_key, Body=stale)
    # damaged: one byte flipped
    body = client.get_object(Bucket=bucket, Key=second_key)["Body"].read()
    client.put_object(Bucket=bucket, Key=second_key, Body=body[:-1] + bytes([body[-1] ^ 1]))
    later = DeltaTableDatabase(base, storage_options=s3_server.options)
    before = s3_server.paths()
    assert _projected(later) == sorted((f"r{i}", i) for i in range(20))  # from the data
    assert _data_file_gets(s3_server, before) > 0
    # both were rewritten from the data files: the next process reads them, not the data
    before = s3_server.paths()
    assert _projected(DeltaTableDatabase(base, storage_options=s3_server.options)) == sorted(
        (f"r{i}", i) for i in range(20)
    )
    assert _data_file_gets(s3_server, before) == 0
    # a sidecar of the right size whose rows disagree with the log's row count is ignored
    fact = column_cache.DataFile(sizes[first], 9)
    short = column_cache._encode({first: (wrong.slice(0, 9), fact)})
    client.put_object(Bucket=bucket, Key=first_key, Body=short)
    assert _projected(DeltaTableDatabase(base, storage_options=s3_server.options)) == sorted(
        (f"r{i}", i) for i in range(20)
    )


def test_the_id_index_of_a_created_table_starts_from_the_batch_that_created_it(
    s3_server: Any,
) -> None:
    _, base = _store(s3_server)
    db = DeltaTableDatabase(base, storage_options=s3_server.options)
    db.add_records(PATH, _rows(0, 20), "id")
    db.flush()
    before = s3_server.paths()
    db.add_records(PATH, _rows(20, 30), "id", skip_duplicates=True)
    db.flush()
    # fresh ids are checked against the ids this object just wrote, not the data file
    assert _data_file_gets(s3_server, before) == 0
    db.add_records(PATH, _rows(25, 35), "id", skip_duplicates=True)  # 5 clash
    db.flush()
    table = db.get_all_records(PATH, record_id_column="id")
    assert table is not None
    assert sorted(table.column("id").to_pylist()) == sorted(f"r{i}" for i in range(35))


def _two_writers(s3_server: Any) -> tuple[str, DeltaTableDatabase, DeltaTableDatabase]:
    """A fresh bucket and two database objects on one store in it (as two processes have),
    which have committed r0-r4 and r5-r9 in turn."""
    bucket, base = _store(s3_server)
    db = DeltaTableDatabase(base, storage_options=s3_server.options)
    other = DeltaTableDatabase(base, storage_options=s3_server.options)
    db.add_records(PATH, _rows(0, 5), "id")
    db.flush()
    other.add_records(PATH, _rows(5, 10), "id")
    other.flush()
    return bucket, db, other


def test_an_add_uses_the_fresh_snapshot_and_its_commit_catches_newer_rows(
    s3_server: Any,
) -> None:
    _, db, other = _two_writers(s3_server)
    before = s3_server.counts()
    # checked against this object's snapshot (refreshed moments ago): no request
    db.add_records(PATH, _rows(8, 12), "id", skip_duplicates=True)
    assert s3_server.counts() == before
    # the commit on that snapshot fails, the rows are checked again: r8, r9 stay as they were
    db.flush()
    table = db.get_all_records(PATH, record_id_column="id")
    assert table is not None
    assert sorted(table.column("id").to_pylist()) == sorted(f"r{i}" for i in range(12))
    other.add_records(PATH, _rows(12, 14), "id")
    other.flush()
    # db lost a commit to another writer moments ago: its next add probes the table first,
    # so it finds r13 stored at once instead of at a failed commit
    with pytest.raises(DuplicateRecordError, match="r13"):
        db.add_records(PATH, _rows(13, 15), "id")
    table = db.get_all_records(PATH, record_id_column="id")
    assert table is not None
    assert sorted(table.column("id").to_pylist()) == sorted(f"r{i}" for i in range(14))


def _data_files(s3_server: Any, bucket: str) -> set[str]:
    """The data files under the test table's folder (whether a commit refers to them or not)."""
    keys = s3_server.keys(bucket, "store/results/fn/")
    return {k for k in keys if k.endswith(".parquet") and "_delta_log" not in k}


def test_a_flush_pausing_after_a_lost_commit_lets_the_process_read_meanwhile(
    s3_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # after a lost commit the writer pauses before its next attempt (up to a second on object
    # storage); the database's other users in the process (look-ups in other threads) go on
    _, db, _ = _two_writers(s3_server)
    paused = threading.Event()

    def lost(self: delta_state.PathState, started: float, attempts: int) -> float:
        paused.set()
        return 5.0

    monkeypatch.setattr(delta_state.PathState, "lost", lost)
    db.add_records(PATH, _rows(10, 12), "id")  # on a stale snapshot: its commit fails once
    errors: list[BaseException] = []

    def flush() -> None:
        try:
            db.flush()
        except BaseException as err:  # (re-raised below, in the test's thread)
            errors.append(err)

    flushing = threading.Thread(target=flush)
    flushing.start()
    assert paused.wait(60)
    # answered while the flush waits (a probe of the log: milliseconds, not the 5 s pause)
    assert db.committed_version(PATH) == 1
    assert flushing.is_alive()
    flushing.join()
    assert not errors, errors
    assert _lookup(db, ["k1", "k7", "k11"]) == ["k1", "k11", "k7"]
    stored = db.get_all_records(PATH, record_id_column="id")
    assert stored is not None
    assert sorted(stored.column("id").to_pylist()) == sorted(f"r{i}" for i in range(12))


def test_a_writer_that_lost_a_commit_probes_before_the_next_one(s3_server: Any) -> None:
    # a commit attempted on a stale snapshot fails after its data file was written; once a
    # writer has lost a commit to another, it probes the log before each add and commit
    bucket, db, other = _two_writers(s3_server)
    for writer, first in ((db, 10), (other, 12)):  # on snapshots read moments ago: stale
        writer.add_records(PATH, _rows(first, first + 2), "id")
        writer.flush()  # fails once (its data file stays behind, unreferenced), then lands
    assert len(_data_files(s3_server, bucket)) == 4 + 2  # (4 commits landed, 2 lost)
    for round_ in range(3):  # the two go on committing in turn
        first = 14 + 4 * round_
        other.add_records(PATH, _rows(first, first + 2), "id")
        other.flush()
        db.add_records(PATH, _rows(first + 2, first + 4), "id")
        db.flush()
    stored = db.get_all_records(PATH, record_id_column="id")
    assert stored is not None
    assert sorted(stored.column("id").to_pylist()) == sorted(f"r{i}" for i in range(26))
    assert len(_data_files(s3_server, bucket)) == 4 + 6 + 2  # no commit failed again


def test_a_store_configured_by_the_environment_alone_reads_what_it_wrote(
    s3_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credentials, endpoint and plain HTTP given only as ``AWS_*`` environment variables (as
    deltalake reads them) serve every client of the store: a rerun reads the rows and the
    lookup sidecars the first run wrote."""
    for name, value in s3_server.options.items():
        monkeypatch.setenv(name, value)
    _, base = _store(s3_server)
    db = DeltaTableDatabase(base)
    _lookup(db, [f"x{i}" for i in range(MIN_INDEXED_VALUES)])
    for b in range(3):
        db.add_records(PATH, _rows(b * 10, (b + 1) * 10), "id")
        db.flush()
    again = DeltaTableDatabase(base)
    assert _lookup(again, ["k3", "k25", "nope"]) == ["k25", "k3"]
    assert _projected(again) == sorted((f"r{i}", i) for i in range(30))  # data files read
