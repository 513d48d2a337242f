"""PostgreSQLDatabase specifics on the test run's real server: construction checks, path ->
table mapping, atomic flushes that keep failed rows pending, lookup indexes, nested values
(the contract is in test_contract.py, processes in test_sql_processes.py)."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import adbc_driver_postgresql.dbapi as pg_dbapi
import pyarrow as pa
import pytest

from orcapod.databases import PostgreSQLDatabase
from orcapod.errors import DatabaseError, FlushError, InputValidationError
from orcapod.types.columns import INPUT_PACKET_HASH


@pytest.fixture
def uri(postgresql_server: Any) -> str:
    fresh: str = postgresql_server.fresh_uri()
    return fresh


def sql(uri: str, statement: str) -> list[tuple[Any, ...]]:
    with pg_dbapi.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(statement)
        return list(cur.fetchall()) if cur.description else []


def test_bad_uris_fail_at_construction(postgresql_server: Any) -> None:
    with pytest.raises(InputValidationError, match="postgresql://"):
        PostgreSQLDatabase("/tmp/not-a-uri")
    dead = f"postgresql://postgres@127.0.0.1:{postgresql_server.port}/no_such_database"
    with pytest.raises(DatabaseError, match="Cannot connect to PostgreSQL"):
        PostgreSQLDatabase(dead)


def test_every_path_gets_its_own_table(uri: str) -> None:
    db = PostgreSQLDatabase(uri)
    paths = [("a_b",), ("a", "b"), ("a b",), ("A", "b"), ("a", "b", "c"), ("x" * 300,)]
    for i, path in enumerate(paths):
        db.add_records(path, pa.table({"id": [f"r{i}"], "v": [i]}), "id")
    db.flush()
    names = [row[0] for row in sql(uri, "SELECT table_name FROM orcapod_catalog")]
    assert len(set(names)) == len(paths) and max(len(n) for n in names) <= 63
    for i, path in enumerate(paths):
        got = db.get_all_records(path)
        assert got is not None and got.column("v").to_pylist() == [i]


def test_a_failed_flush_stores_nothing_and_keeps_the_rows_pending(uri: str) -> None:
    db = PostgreSQLDatabase(uri)
    db.add_records(("t",), pa.table({"id": ["a"], "v": [1]}), "id", flush=True)
    (table,) = sql(uri, "SELECT table_name FROM orcapod_catalog")[0]
    sql(
        uri,
        "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF NEW.v < 0 THEN "
        "RAISE EXCEPTION 'negative v'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
    )
    sql(
        uri,
        f'CREATE TRIGGER refuse BEFORE INSERT ON "{table}" FOR EACH ROW EXECUTE FUNCTION refuse()',
    )
    db.add_records(("t",), pa.table({"id": ["b", "c"], "v": [2, -3]}), "id")
    with pytest.raises(FlushError, match=r"\('t',\).*negative v"):
        db.flush()
    assert sql(uri, f'SELECT count(*) FROM "{table}"') == [(1,)]  # no half-written batch
    assert db.committed_version(("t",)) == 0
    sql(uri, f'DROP TRIGGER refuse ON "{table}"')
    got = db.get_all_records(("t",), record_id_column="id")  # the rows are still pending
    assert got is not None and sorted(got.column("id").to_pylist()) == ["a", "b", "c"]
    db.flush()
    assert db.committed_version(("t",)) == 1
    assert PostgreSQLDatabase(uri).get_all_records(("t",)).num_rows == 3  # type: ignore[union-attr]


def test_a_lookup_by_a_column_indexes_it(uri: str) -> None:
    db = PostgreSQLDatabase(uri)
    hashes = [f"h{i}" for i in range(2000)]
    ids = [f"r{i}" for i in range(2000)]
    db.add_records(("r",), pa.table({"id": ids, INPUT_PACKET_HASH: hashes}), "id", flush=True)
    got = db.get_records_with_column_value(("r",), {INPUT_PACKET_HASH: hashes[::2]})  # long list
    assert got is not None and got.num_rows == 1000
    indexes = sql(
        uri,
        "SELECT indexdef FROM pg_indexes WHERE indexname LIKE 'orcapod_ix_%' "
        "AND schemaname = current_schema()",
    )
    assert len(indexes) == 1 and INPUT_PACKET_HASH in indexes[0][0]


def test_native_types_and_nested_values_round_trip(uri: str) -> None:
    ts = datetime.datetime(2024, 1, 2, 3, 4, 5, 6)
    table = pa.table(
        {
            "id": ["a", "b"],
            "cost": pa.array([Decimal("12.50"), None], pa.decimal128(10, 2)),
            "at": pa.array([ts, None], pa.timestamp("us", tz="UTC")),
            "deep": pa.array(
                [[{"when": ts, "blob": b"\x00"}], None],
                pa.list_(pa.struct([("when", pa.timestamp("us")), ("blob", pa.binary())])),
            ),
        }
    )
    db = PostgreSQLDatabase(uri)
    db.add_records(("n",), table, "id", flush=True)
    (name,) = sql(uri, "SELECT table_name FROM orcapod_catalog")[0]
    types = dict(
        sql(
            uri,
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_name = '{name}'",
        )
    )
    assert types["cost"] == "numeric" and types["at"] == "timestamp with time zone"
    assert types["deep"] == "bytea"
    got = PostgreSQLDatabase(uri).get_all_records(("n",), record_id_column="id")
    assert got is not None
    assert got.sort_by("id").to_pylist() == table.to_pylist()
    assert got.schema == table.schema


def test_column_names_longer_than_postgresql_allows_stay_apart(uri: str) -> None:
    long_a, long_b = "measurement_" + "x" * 60 + "_a", "measurement_" + "x" * 60 + "_b"
    db = PostgreSQLDatabase(uri)
    table = pa.table({"id": ["r1", "r2"], long_a: [1, 2], long_b: ["p", "q"]})
    db.add_records(("long",), table, "id", flush=True)
    got = PostgreSQLDatabase(uri).get_records_with_column_value(
        ("long",), {long_a: 2}, record_id_column="id", columns=[long_b]
    )
    assert got is not None and got.to_pylist() == [{"id": "r2", long_b: "q"}]
    everything = db.get_all_records(("long",), record_id_column="id")
    assert everything is not None and everything.sort_by("id").to_pylist() == table.to_pylist()
