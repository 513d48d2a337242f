"""SQLiteTableSource and PostgreSQLTableSource over real databases."""

from __future__ import annotations

import datetime
import sqlite3
from decimal import Decimal
from pathlib import Path

import adbc_driver_postgresql.dbapi as pg_dbapi
import pytest

from orcapod.errors import InputValidationError
from orcapod.sources import PostgreSQLTableSource, SQLiteTableSource

UTC = datetime.UTC


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "lab.sqlite"
    with sqlite3.connect(path) as con:
        con.execute(
            "CREATE TABLE m (subject TEXT, session INTEGER, value REAL, ok BOOLEAN, day DATE, "
            "at DATETIME, raw BLOB, note VARCHAR(10), amount NUMERIC, "
            "PRIMARY KEY (subject, session))"
        )
        con.execute(
            "INSERT INTO m VALUES ('s1', 1, 0.5, 1, '2024-01-02', '2024-01-02 10:00:00', "
            "x'00ff', NULL, 3)"
        )
        con.execute("INSERT INTO m VALUES ('s2', 1, 1.5, 0, NULL, NULL, NULL, 'n', 2.5)")
    return path


def test_sqlite_table_types_follow_the_declared_types(sqlite_file: Path) -> None:
    source = SQLiteTableSource(sqlite_file, "m")
    tags, packets = source.output_schema()
    assert dict(tags) == {"subject": str, "session": int}  # the primary key
    assert dict(packets) == {
        "value": float,
        "ok": bool,
        "day": datetime.date | None,
        "at": datetime.datetime | None,
        "raw": bytes | None,
        "note": str | None,
        "amount": float,
    }
    assert source.source_id == "m"
    first = min(source.as_table().to_pylist(), key=lambda r: r["subject"])
    assert first["at"] == datetime.datetime(2024, 1, 2, 10, tzinfo=UTC)
    assert first["raw"] == b"\x00\xff" and first["ok"] is True and first["amount"] == 3.0


def test_sqlite_query_source_and_explicit_tags(sqlite_file: Path) -> None:
    source = SQLiteTableSource(
        sqlite_file,
        query="SELECT subject, value * 2 AS doubled FROM m",
        tag_columns=["subject"],
        record_id_column="subject",
    )
    assert dict(source.output_schema()[1]) == {"doubled": float}
    assert source.source_id.startswith("query-")
    assert sorted(r["doubled"] for r in source.as_table().to_pylist()) == [1.0, 3.0]


def test_sqlite_content_hash_changes_with_the_data(sqlite_file: Path) -> None:
    before = SQLiteTableSource(sqlite_file, "m")
    same = SQLiteTableSource(sqlite_file, "m")
    with sqlite3.connect(sqlite_file) as con:
        con.execute("UPDATE m SET value = 9.5 WHERE subject = 's1'")
    after = SQLiteTableSource(sqlite_file, "m")
    assert before.content_hash() == same.content_hash()
    assert before.content_hash() != after.content_hash()
    assert before.source_id == after.source_id  # stable id: entry ids survive added rows


def test_sqlite_errors_are_clear(sqlite_file: Path, tmp_path: Path) -> None:
    with pytest.raises(InputValidationError, match="no such database file"):
        SQLiteTableSource(tmp_path / "missing.sqlite", "m")
    with pytest.raises(InputValidationError, match="no table 'nope'"):
        SQLiteTableSource(sqlite_file, "nope")
    with pytest.raises(InputValidationError, match="either a table_name or a query"):
        SQLiteTableSource(sqlite_file, "m", query="SELECT 1")
    with pytest.raises(InputValidationError, match="'blank'.*only NULLs"):
        SQLiteTableSource(sqlite_file, query="SELECT subject, NULL AS blank FROM m")
    with pytest.raises(InputValidationError, match="cannot read"):
        SQLiteTableSource(sqlite_file, query="SELECT nothing FROM m")


@pytest.fixture
def pg_uri(postgresql_server) -> str:  # type: ignore[no-untyped-def]
    uri: str = postgresql_server.fresh_uri()
    with pg_dbapi.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE runs (lab TEXT, run INTEGER, score DOUBLE PRECISION, n SMALLINT, "
            "ok BOOLEAN, cost NUMERIC(10, 2), id UUID, meta JSONB, tags INTEGER[], "
            "day DATE, at TIMESTAMPTZ, raw BYTEA, PRIMARY KEY (lab, run))"
        )
        cur.execute(
            "INSERT INTO runs VALUES ('a', 1, 0.5, 3, TRUE, 12.50, "
            "'12345678-1234-5678-1234-567812345678', '{\"k\": 1}', ARRAY[1, 2], "
            "'2024-01-02', '2024-01-02 10:00:00+00', '\\x00ff'), "
            "('b', 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
        )
    return uri


def test_postgresql_table_types_map_to_orcapod_types(pg_uri: str) -> None:
    source = PostgreSQLTableSource(pg_uri, "runs")
    tags, packets = source.output_schema()
    assert dict(tags) == {"lab": str, "run": int}
    assert dict(packets) == {
        "score": float | None,
        "n": int | None,
        "ok": bool | None,
        "cost": Decimal | None,
        "id": str | None,
        "meta": str | None,
        "tags": list[int] | None,
        "day": datetime.date | None,
        "at": datetime.datetime | None,
        "raw": bytes | None,
    }
    row = min(source.as_table().to_pylist(), key=lambda r: r["lab"])
    assert row["id"] == "12345678-1234-5678-1234-567812345678"
    assert row["cost"] == Decimal("12.50") and row["tags"] == [1, 2]
    assert row["at"] == datetime.datetime(2024, 1, 2, 10, tzinfo=UTC)
    assert source.source_id == "runs"


def test_postgresql_query_and_content_hash(pg_uri: str) -> None:
    query = "SELECT lab, run * 10 AS big FROM runs"
    before = PostgreSQLTableSource(pg_uri, query=query, tag_columns=["lab"])
    assert dict(before.output_schema()[1]) == {"big": int}
    with pg_dbapi.connect(pg_uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("UPDATE runs SET run = 7 WHERE lab = 'b'")
    after = PostgreSQLTableSource(pg_uri, query=query, tag_columns=["lab"])
    assert before.source_id == after.source_id
    assert before.content_hash() != after.content_hash()


def test_postgresql_errors_are_clear(pg_uri: str) -> None:
    with pytest.raises(InputValidationError, match="no table 'nope'"):
        PostgreSQLTableSource(pg_uri, "nope")
    with pytest.raises(InputValidationError, match="'span'.*cast it"):
        PostgreSQLTableSource(pg_uri, query="SELECT lab, interval '1 day' AS span FROM runs")
    with pytest.raises(InputValidationError, match="cannot read"):
        PostgreSQLTableSource(pg_uri, query="SELECT nothing FROM runs")
