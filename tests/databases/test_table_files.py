"""``TableFiles``: byte ranges of files beside a table and rows of its parquet data files."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import obstore.store
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from orcapod.databases.object_stores import object_store_of, s3_filesystem
from orcapod.databases.table_files import TableFiles
from orcapod.errors import DatabaseError


def _files(tmp_path: Path) -> TableFiles:
    files = TableFiles.for_table(str(tmp_path), pafs.LocalFileSystem())
    assert files is not None
    return files


def test_read_rows_reads_the_rows_asked_for_across_row_groups(tmp_path: Path) -> None:
    table = pa.table({"id": [f"r{i}" for i in range(100)], "n": list(range(100))})
    pq.write_table(table, tmp_path / "data.parquet", row_group_size=16)
    files = _files(tmp_path)
    got = files.read_rows(str(tmp_path / "data.parquet"), [0, 15, 16, 17, 99])
    assert got.column("n").to_pylist() == [0, 15, 16, 17, 99]
    assert files.read_rows(str(tmp_path / "data.parquet"), []).num_rows == 0
    with pytest.raises(DatabaseError, match="has 100 rows, not a row 100"):
        files.read_rows(str(tmp_path / "data.parquet"), [100])


def test_read_range_reads_part_of_a_file(tmp_path: Path) -> None:
    files = _files(tmp_path)
    files.write("_index/blob", bytes(range(100)))
    assert files.read_range("_index/blob", 10, 5) == bytes(range(10, 15))
    assert files.read_range("_index/blob", 95, 10) == bytes(range(95, 100))
    assert files.read_range("_index/missing", 0, 10) is None


def test_on_s3_a_data_file_of_known_size_is_read_without_a_head(s3_server: Any) -> None:
    """Object storage: each read of a data file whose size the snapshot gives costs GETs
    only (a HEAD per read otherwise); every read returns the same rows either way."""
    bucket = s3_server.fresh_bucket()
    filesystem = s3_filesystem(s3_server.options)
    table = pa.table({"id": [f"r{i}" for i in range(100)], "n": list(range(100))})
    with filesystem.open_output_stream(f"{bucket}/t/data.parquet") as out:
        pq.write_table(table, out, row_group_size=16)
    size = filesystem.get_file_info(f"{bucket}/t/data.parquet").size
    file = f"s3://{bucket}/t/data.parquet"

    def reads(files: TableFiles) -> tuple[list[object], dict[str, int]]:
        before = s3_server.counts()
        got: list[object] = [
            files.read_column(file, "n").to_pylist(),  # type: ignore[union-attr]
            files.read_column(file, "missing"),
            files.read_columns(file, ["id", "missing"]).column_names,
            files.read_rows(file, [0, 15, 16, 99]).column("n").to_pylist(),
            files.read_groups(file, lambda meta: [meta.num_row_groups - 1]).num_rows,  # type: ignore[union-attr]
        ]
        return got, s3_server.since(before)

    plain = TableFiles.for_table(f"s3://{bucket}/t", filesystem)
    objects = object_store_of(f"s3://{bucket}", s3_server.options)
    sized = TableFiles.for_table(f"s3://{bucket}/t", filesystem, objects)
    assert plain is not None and sized is not None
    sized.know_sizes(lambda name: size if name == "data.parquet" else None)
    got, requests = reads(sized)
    assert got == [list(range(100)), None, ["id"], [0, 15, 16, 99], 4]
    assert "HEAD" not in requests and requests["GET"] >= 1
    plain_got, plain_requests = reads(plain)
    assert plain_got == got
    assert plain_requests.get("HEAD", 0) >= 5  # (one per read of the file)


def _requests(s3_server: Any, read: Any) -> tuple[object, dict[str, int]]:
    """``read()`` and the requests it made, by kind."""
    before = s3_server.counts()
    return read(), s3_server.since(before)


def test_on_s3_a_file_beside_the_table_is_read_with_one_get(s3_server: Any) -> None:
    """Sidecars and notes (sizes unknown) are read through obstore: one GET per read of a
    whole file, a range or a missing file, where pyarrow's client first asks with a HEAD."""
    bucket = s3_server.fresh_bucket()
    uri = f"s3://{bucket}/t"
    filesystem = s3_filesystem(s3_server.options)
    files = TableFiles.for_table(uri, filesystem, object_store_of(uri, s3_server.options))
    plain = TableFiles.for_table(uri, filesystem)
    assert files is not None and plain is not None
    files.write("_orcapod_index/blob", bytes(range(100)))
    for reader in (files, plain):
        assert reader.read("_orcapod_index/blob") == bytes(range(100))
        assert reader.read_range("_orcapod_index/blob", 10, 5) == bytes(range(10, 15))
        assert reader.read_range("_orcapod_index/blob", 95, 10) == bytes(range(95, 100))
        assert reader.read("_orcapod_index/missing") is None
    for read in (
        lambda: files.read("_orcapod_index/blob"),
        lambda: files.read_range("_orcapod_index/blob", 10, 5),
        lambda: files.read("_orcapod_index/missing"),
    ):
        assert _requests(s3_server, read)[1] == {"GET": 1}
    _, requests = _requests(s3_server, lambda: plain.read("_orcapod_index/blob"))
    assert requests == {"HEAD": 1, "GET": 1}


def test_on_s3_only_data_files_need_pyarrows_client(s3_server: Any) -> None:
    """Writes, existence checks and listings of a table's files go through obstore, one
    request each, so pyarrow's S3 client (tens of ms to set up) is made only when a data file
    is read, and once; both clients list the same names, sizes and times (a note written by
    one process is checked against another's listing)."""
    bucket = s3_server.fresh_bucket()
    uri = f"s3://{bucket}/t"
    made: list[pafs.FileSystem] = []

    def make() -> pafs.FileSystem:
        made.append(s3_filesystem(s3_server.options))
        return made[-1]

    files = TableFiles.for_table(uri, make, object_store_of(uri, s3_server.options))
    plain = TableFiles.for_table(uri, s3_filesystem(s3_server.options))
    assert files is not None and plain is not None
    steps = [
        (lambda: files.write("_log/00.json", b"{}"), {"PUT": 1}),
        (lambda: files.write("_cols/a/x", b"1"), {"PUT": 1}),
        (lambda: files.exists("_log/00.json"), {"HEAD": 1}),
        (lambda: files.exists("_log/01.json"), {"HEAD": 1}),
        (lambda: files.list_stamps("_log"), {"LIST": 1}),
        (lambda: files.list_dirs("_cols"), {"LIST": 1}),
        (lambda: files.list_files("_nothing"), {"LIST": 1}),
    ]
    answers = []
    for step, expected in steps:
        answer, requests = _requests(s3_server, step)
        assert requests == expected
        answers.append(answer)
    assert answers[2:4] == [True, False]
    assert answers[4] == plain.list_stamps("_log") and list(answers[4]) == ["00.json"]
    assert answers[5:] == [plain.list_dirs("_cols"), []] and answers[5] == ["a"]
    assert made == []
    data = pa.BufferOutputStream()
    pq.write_table(pa.table({"n": [1, 2, 3]}), data)
    files.write("data.parquet", data.getvalue().to_pybytes())
    for _ in range(2):
        assert files.read_column(f"{uri}/data.parquet", "n").to_pylist() == [1, 2, 3]  # type: ignore[union-attr]
    assert len(made) == 1


def test_on_s3_reads_go_through_pyarrow_once_obstore_fails(s3_server: Any) -> None:
    """A client that cannot reach the store (here: a closed port) does not fail the read:
    pyarrow's client, configured from the same options, answers it and every later one."""
    bucket = s3_server.fresh_bucket()
    uri = f"s3://{bucket}/t"
    broken = obstore.store.S3Store(
        bucket,
        config={
            "aws_endpoint": "http://127.0.0.1:9",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "aws_region": "us-east-1",
            "aws_allow_http": "true",
        },
        retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=5)},
    )
    files = TableFiles.for_table(uri, s3_filesystem(s3_server.options), broken)
    assert files is not None
    files.write("notes/a", b"hello")
    assert files.read("notes/a") == b"hello"
    _, requests = _requests(s3_server, lambda: files.read_range("notes/a", 1, 3))
    assert requests == {"HEAD": 1, "GET": 1}  # pyarrow's client from now on
    assert files.read("notes/missing") is None


def test_object_store_of_is_for_s3_stores_only(tmp_path: Path, s3_server: Any) -> None:
    assert object_store_of(str(tmp_path), None) is None
    assert object_store_of("gs://bucket/store", None) is None
    assert object_store_of("s3://bucket/store", s3_server.options) is not None
