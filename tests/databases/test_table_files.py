"""``TableFiles``: byte ranges of files beside a table and rows of its parquet data files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from orcapod.databases.table_files import TableFiles, s3_filesystem
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
        after = s3_server.counts()
        return got, {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}

    plain = TableFiles.for_table(f"s3://{bucket}/t", filesystem)
    sized = TableFiles.for_table(f"s3://{bucket}/t", filesystem)
    assert plain is not None and sized is not None
    sized.know_sizes(lambda name: size if name == "data.parquet" else None)
    got, requests = reads(sized)
    assert got == [list(range(100)), None, ["id"], [0, 15, 16, 99], 4]
    assert "HEAD" not in requests and requests["GET"] >= 1
    plain_got, plain_requests = reads(plain)
    assert plain_got == got
    assert plain_requests.get("HEAD", 0) >= 5  # (one per read of the file)
