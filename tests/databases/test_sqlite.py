"""SQLiteDatabase specifics: construction checks, path -> table mapping, atomic flushes that
keep failed rows pending, lookup indexes, nested values (the contract is in test_contract.py,
processes in test_sql_processes.py)."""

from __future__ import annotations

import datetime
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from orcapod.databases import SQLiteDatabase
from orcapod.errors import FlushError, InputValidationError
from orcapod.types.columns import INPUT_PACKET_HASH


def test_bad_locations_fail_at_construction(tmp_path: Path) -> None:
    with pytest.raises(InputValidationError, match="is a directory"):
        SQLiteDatabase(tmp_path)
    with pytest.raises(InputValidationError, match="does not exist"):
        SQLiteDatabase(tmp_path / "missing" / "db.sqlite")
    with pytest.raises(InputValidationError, match="batch_size"):
        SQLiteDatabase(tmp_path / "db.sqlite", batch_size=0)


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path: Path) -> None:
    notes = tmp_path / "notes.sqlite"
    notes.write_text("hello")
    with pytest.raises(InputValidationError, match="exists but is not an SQLite database"):
        SQLiteDatabase(notes)
    assert notes.read_text() == "hello"


def _catalog(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as con:
        return dict(con.execute("SELECT path, table_name FROM orcapod_catalog").fetchall())


def test_every_path_gets_its_own_table(tmp_path: Path) -> None:
    file = tmp_path / "db.sqlite"
    db = SQLiteDatabase(file)
    paths = [("a_b",), ("a", "b"), ("a b",), ("A", "b"), ("a", "b", "c")]
    for i, path in enumerate(paths):
        db.add_records(path, pa.table({"id": [f"r{i}"], "v": [i]}), "id")
    db.flush()
    catalog = _catalog(file)
    assert len(set(catalog.values())) == len(paths)
    for i, path in enumerate(paths):
        got = db.get_all_records(path)
        assert got is not None and got.column("v").to_pylist() == [i]


def test_a_failed_flush_stores_nothing_and_keeps_the_rows_pending(tmp_path: Path) -> None:
    file = tmp_path / "db.sqlite"
    db = SQLiteDatabase(file)
    db.add_records(("t",), pa.table({"id": ["a"], "v": [1]}), "id", flush=True)
    table = _catalog(file)['["t"]']
    with sqlite3.connect(file) as con:
        con.execute(
            f'CREATE TRIGGER refuse BEFORE INSERT ON "{table}" WHEN NEW.v < 0 '
            "BEGIN SELECT RAISE(ABORT, 'negative v'); END"
        )
    db.add_records(("t",), pa.table({"id": ["b", "c"], "v": [2, -3]}), "id")
    with pytest.raises(FlushError, match=r"\('t',\).*negative v"):
        db.flush()
    with sqlite3.connect(file) as con:  # no half-written batch: b is not there either
        assert con.execute(f'SELECT count(*) FROM "{table}"').fetchone() == (1,)
        con.execute("DROP TRIGGER refuse")
    got = db.get_all_records(("t",), record_id_column="id")  # the rows are still pending
    assert got is not None and sorted(got.column("id").to_pylist()) == ["a", "b", "c"]
    db.flush()
    assert SQLiteDatabase(file).get_all_records(("t",)).num_rows == 3  # type: ignore[union-attr]


def test_a_lookup_by_a_column_indexes_it_for_every_later_process(tmp_path: Path) -> None:
    file = tmp_path / "db.sqlite"
    db = SQLiteDatabase(file)
    hashes = [f"h{i}" for i in range(50)]
    db.add_records(
        ("r",), pa.table({"id": [f"r{i}" for i in range(50)], INPUT_PACKET_HASH: hashes}), "id"
    )
    db.flush()
    got = db.get_records_with_column_value(("r",), {INPUT_PACKET_HASH: hashes[:3]})
    assert got is not None and got.num_rows == 3
    table = _catalog(file)['["r"]']
    with sqlite3.connect(file) as con:
        plan = con.execute(
            f'EXPLAIN QUERY PLAN SELECT * FROM "{table}" WHERE "{INPUT_PACKET_HASH}" = \'h1\''
        ).fetchall()
    assert "USING INDEX orcapod_ix_" in str(plan)


def test_nested_values_round_trip_exactly(tmp_path: Path) -> None:
    ts = datetime.datetime(2024, 1, 2, 3, 4, 5, 6)
    inner = pa.struct([("when", pa.timestamp("us")), ("blob", pa.binary())])
    table = pa.table(
        {
            "id": ["a", "b", "c"],
            "deep": pa.array(
                [[{"when": ts, "blob": b"\x00"}], [], None], pa.list_(pa.field("item", inner))
            ),
            "m": pa.array(
                [[("k", 1)], None, [("x", -2), ("y", 3)]], pa.map_(pa.string(), pa.int32())
            ),
        }
    )
    db = SQLiteDatabase(tmp_path / "db.sqlite")
    db.add_records(("n",), table, "id", flush=True)
    got = SQLiteDatabase(tmp_path / "db.sqlite").get_all_records(("n",), record_id_column="id")
    assert got is not None
    got = got.sort_by("id")
    assert got.schema.field("deep").type == table.schema.field("deep").type
    assert got.schema.field("m").type == table.schema.field("m").type
    assert got.column("deep").to_pylist() == table.column("deep").to_pylist()
    assert got.column("m").to_pylist() == table.column("m").to_pylist()


def test_orcapod_imports_without_the_drivers_and_using_a_store_names_the_extra(
    tmp_path: Path,
) -> None:
    code = (
        "import sys\n"
        "for name in ('adbc_driver_manager', 'adbc_driver_sqlite', 'adbc_driver_postgresql'):\n"
        "    sys.modules[name] = None\n"
        "import orcapod\n"
        "from orcapod.databases import SQLiteDatabase\n"
        "from orcapod.errors import DatabaseError\n"
        "try:\n"
        f"    SQLiteDatabase({str(tmp_path / 'db.sqlite')!r})\n"
        "except DatabaseError as err:\n"
        "    print(err)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'orcapod[sqlite]'" in done.stdout
