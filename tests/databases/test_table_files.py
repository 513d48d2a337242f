"""``TableFiles``: byte ranges of files beside a table and rows of its parquet data files."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

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
