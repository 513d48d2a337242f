"""How a DeltaTableDatabase writes: expired-log clean-up only at checkpoint commits; the
encodings of its id columns."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

from orcapod.databases import DeltaTableDatabase
from orcapod.databases.delta_files import log_cleanup


def test_only_checkpoint_commits_clean_up_the_log(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path, checkpoint_interval=3)
    for i in range(4):
        db.add_records(("t",), pa.table({"id": [f"r{i}"], "n": [i]}), "id")
        db.flush()
    table = DeltaTable(str(tmp_path / "t"))
    assert [log_cleanup(table, v) for v in range(1, 7)] == [False, None, False, False, None, False]
    assert log_cleanup(None, 0) is False  # a commit creating the table: nothing to clean
    assert (tmp_path / "t" / "_delta_log" / "00000000000000000002.checkpoint.parquet").exists()
    found = db.get_all_records(("t",), record_id_column="id")
    assert found is not None and sorted(found.column("id").to_pylist()) == ["r0", "r1", "r2", "r3"]


def test_id_strings_are_delta_encoded_and_other_types_under_id_names_still_write(
    tmp_path: Path,
) -> None:
    """Distinct-valued string columns (ids, hashes, source info) are written with the
    DELTA_BYTE_ARRAY encoding; a column of another type under such a name (which that
    encoding cannot hold) is written as usual, and every value reads back."""
    db = DeltaTableDatabase(tmp_path)
    n = 500
    table = pa.table(
        {
            "__record_id": [f"arrow_row_v1:{i:032x}" for i in range(n)],
            "_source_y": [f"src::{i}::y" for i in range(n)],
            "_source_n": list(range(n)),  # an int under a source-info name
            "_content_hash": pa.array([i.to_bytes(16, "big") for i in range(n)], pa.binary()),
            "y": [f"value {i % 3}" for i in range(n)],
        }
    )
    db.add_records(("t",), table, "__record_id")
    db.flush()
    (data_file,) = DeltaTable(str(tmp_path / "t")).file_uris()
    meta = pq.ParquetFile(data_file).metadata.row_group(0)
    encodings = {
        meta.column(i).path_in_schema: set(meta.column(i).encodings)
        for i in range(meta.num_columns)
    }
    for name in ("__record_id", "_source_y", "_content_hash"):
        assert "DELTA_BYTE_ARRAY" in encodings[name], (name, encodings[name])
    assert "DELTA_BYTE_ARRAY" not in encodings["_source_n"] | encodings["y"]
    stored = db.get_all_records(("t",), record_id_column="__record_id")
    assert stored is not None
    assert stored.sort_by("__record_id").select(table.column_names).to_pylist() == (
        table.to_pylist()
    )
