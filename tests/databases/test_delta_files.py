"""How a DeltaTableDatabase writes: expired-log clean-up only at checkpoint commits."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
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
