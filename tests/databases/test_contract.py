"""The ArrowDatabase contract, run over every backend (fixtures in conftest.py)."""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from orcapod.databases import ArrowDatabase, DeltaTableDatabase, NoOpArrowDatabase
from orcapod.errors import DuplicateRecordError, InputValidationError, SchemaError
from orcapod.types.columns import RECORD_ID

P = ("results", "fn")


def rows(table: pa.Table | None, key: str = "id") -> list[dict[str, object]]:
    assert table is not None
    return sorted(table.to_pylist(), key=lambda r: str(r[key]))


def batch(ids: list[str], **columns: list[object]) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.string()), **columns})


# ---------------------------------------------------------------- protocol and validation


def test_every_backend_satisfies_the_protocol(any_db: ArrowDatabase) -> None:
    assert isinstance(any_db, ArrowDatabase)
    assert isinstance(any_db.at("a", "b"), ArrowDatabase)


def test_persistent_says_whether_other_processes_see_the_rows(any_db: ArrowDatabase) -> None:
    # the in-memory and no-op databases keep nothing another process can read; views say
    # what their database says
    expected = type(any_db).__name__ not in ("InMemoryArrowDatabase", "NoOpArrowDatabase")
    assert any_db.persistent is expected
    assert any_db.at("a", "b").persistent is expected


@pytest.mark.parametrize(
    ("path", "culprit"),
    [
        (("ok", ""), "''"),
        (("a/b",), "a/b"),
        (("a\\b",), "a\\\\b"),
        (("..",), "'..'"),
        ((".",), "'.'"),
        (("a", "x\x00y"), "x\\x00y"),
        ((), "empty"),
        ("results", "tuple"),
    ],
)
def test_invalid_paths_are_rejected_naming_the_segment(
    any_db: ArrowDatabase, path: tuple[str, ...], culprit: str
) -> None:
    with pytest.raises(InputValidationError, match=culprit.replace("\\", "\\\\")):
        any_db.add_records(path, batch(["a"]), "id")
    with pytest.raises(InputValidationError):
        any_db.get_all_records(path)


def test_invalid_view_prefix_is_rejected(any_db: ArrowDatabase) -> None:
    with pytest.raises(InputValidationError, match=r"'\.\.'"):
        any_db.at("..")


def test_noop_accepts_writes_and_reads_nothing() -> None:
    db = NoOpArrowDatabase()
    db.add_records(P, batch(["a"], v=[1]), "id")
    db.add_record(P, "b", pa.table({"v": [2]}))
    db.flush()
    assert db.get_all_records(P) is None
    assert db.get_record_by_id(P, "a") is None
    assert db.get_records_by_ids(P, ["a", "b"]) is None
    assert db.get_records_with_column_value(P, {"v": 1}) is None
    assert db.at("x").get_all_records(("y",)) is None


# ---------------------------------------------------------------- round trips


def test_add_records_round_trip_renames_or_drops_the_id(db: ArrowDatabase) -> None:
    db.add_records(P, batch(["a", "b"], v=[1, 2], s=["x", None]), "id")
    assert rows(db.get_all_records(P, record_id_column="id")) == [
        {"id": "a", "v": 1, "s": "x"},
        {"id": "b", "v": 2, "s": None},
    ]
    plain = db.get_all_records(P)
    assert plain is not None
    assert plain.column_names == ["v", "s"]
    assert rows(db.get_all_records(P, record_id_column="key"), "key")[0]["key"] == "a"
    stored = db.get_all_records(P, record_id_column=RECORD_ID)
    assert stored is not None and stored.column_names[0] == RECORD_ID


def test_add_record_and_get_record_by_id(db: ArrowDatabase) -> None:
    db.add_record(P, "r1", pa.table({"v": [10], "s": ["x"]}))
    db.add_record(P, "r2", pa.table({"v": [20], "s": ["y"]}))
    assert db.get_record_by_id(P, "r2", record_id_column="id").to_pylist() == [  # type: ignore[union-attr]
        {"id": "r2", "v": 20, "s": "y"}
    ]
    assert db.get_record_by_id(P, "missing") is None
    assert db.get_record_by_id(("elsewhere",), "r1") is None


def test_add_record_takes_exactly_one_row(db: ArrowDatabase) -> None:
    with pytest.raises(InputValidationError, match="one-row"):
        db.add_record(P, "r", pa.table({"v": [1, 2]}))
    with pytest.raises(InputValidationError, match="one-row"):
        db.add_record(P, "r", pa.table({"v": pa.array([], pa.int64())}))


def test_reads_of_an_unknown_path_return_none(db: ArrowDatabase) -> None:
    assert db.get_all_records(("nothing", "here")) is None
    assert db.get_records_by_ids(("nothing",), ["a"]) is None
    assert db.get_records_with_column_value(("nothing",), {"v": 1}) is None


def test_get_records_by_ids_returns_only_stored_matches(db: ArrowDatabase) -> None:
    ids = [f"id-{i}" for i in range(200)]
    db.add_records(P, batch(ids, v=list(range(200))), "id")
    wanted = [*ids[::3], "not-there"]
    got = db.get_records_by_ids(P, wanted, record_id_column="id")
    assert rows(got) == rows(batch(ids[::3], v=list(range(0, 200, 3))))
    as_array = db.get_records_by_ids(P, pa.array(ids[:2]), record_id_column="id")
    assert [r["id"] for r in rows(as_array)] == ids[:2]
    assert db.get_records_by_ids(P, []) is None
    assert db.get_records_by_ids(P, ["nope"]) is None


@pytest.mark.parametrize(
    "as_values",
    [
        pytest.param(lambda v: pa.array(v, pa.string()), id="array"),
        pytest.param(lambda v: pa.array(v, pa.large_string()), id="large_string"),
        pytest.param(lambda v: pa.chunked_array([v[:1], v[1:]], pa.string()), id="chunked"),
        pytest.param(np.array, id="numpy_unicode"),
        pytest.param(lambda v: np.array(v, dtype=object), id="numpy_object"),
    ],
)
def test_get_records_by_ids_accepts_arrow_and_numpy_arrays(
    db: ArrowDatabase, as_values: Callable[[list[str]], Any]
) -> None:
    ids = [f"id-{i}" for i in range(100)]
    db.add_records(P, batch(ids, v=list(range(100))), "id")
    got = db.get_records_by_ids(P, as_values([ids[5], ids[50], "absent"]), record_id_column="id")
    assert rows(got) == [{"id": "id-5", "v": 5}, {"id": "id-50", "v": 50}]
    assert db.get_records_by_ids(P, as_values(["absent", "also-absent"])) is None
    assert db.get_records_by_ids(P, np.array([], dtype=str)) is None
    assert db.get_records_by_ids(P, pa.array([], pa.string())) is None


def test_get_records_by_ids_refuses_non_string_arrays(db: ArrowDatabase) -> None:
    db.add_records(P, batch(["1"], v=[1]), "id")
    with pytest.raises(InputValidationError, match="strings"):
        db.get_records_by_ids(P, pa.array([1, 2]))
    with pytest.raises(InputValidationError, match="strings"):
        db.get_records_by_ids(P, np.array([1, 2]))


def test_ids_with_quotes_and_unicode_round_trip(db: ArrowDatabase) -> None:
    ids = ["it's", 'say "hi"', "naïve ✓", "back\\slash", "semi;colon--"]
    db.add_records(P, batch(ids, v=list(range(5))), "id")
    got = db.get_records_by_ids(P, ids[1:3], record_id_column="id")
    assert [r["id"] for r in rows(got)] == sorted(ids[1:3])
    assert rows(db.get_record_by_id(P, "it's", record_id_column="id")) == [{"id": "it's", "v": 0}]


def test_reads_see_pending_and_committed_rows(db: ArrowDatabase) -> None:
    db.add_records(P, batch(["a"], v=[1]), "id")
    db.flush()
    db.add_records(P, batch(["b"], v=[2]), "id")
    assert [r["id"] for r in rows(db.get_all_records(P, "id"))] == ["a", "b"]
    assert [r["id"] for r in rows(db.get_records_by_ids(P, ["a", "b"], "id"))] == ["a", "b"]
    got = db.get_records_with_column_value(P, {"v": [1, 2]}, record_id_column="id")
    assert [r["id"] for r in rows(got)] == ["a", "b"]
    db.flush()
    assert [r["id"] for r in rows(db.get_all_records(P, "id"))] == ["a", "b"]


# ---------------------------------------------------------------- record id validation


def test_record_id_column_must_exist_be_string_and_non_null(db: ArrowDatabase) -> None:
    with pytest.raises(InputValidationError, match="'nope'"):
        db.add_records(P, batch(["a"]), "nope")
    with pytest.raises(InputValidationError, match="strings"):
        db.add_records(P, pa.table({"id": [1, 2]}), "id")
    with pytest.raises(InputValidationError, match="null"):
        db.add_records(P, pa.table({"id": ["a", None]}), "id")
    with pytest.raises(InputValidationError, match=RECORD_ID):
        db.add_records(P, pa.table({"id": ["a"], RECORD_ID: ["b"]}), "id")
    assert db.get_all_records(P) is None


def test_renaming_the_id_onto_an_existing_column_is_refused(db: ArrowDatabase) -> None:
    db.add_records(P, batch(["a"], v=[1]), "id")
    with pytest.raises(InputValidationError, match="'v'"):
        db.get_all_records(P, record_id_column="v")


# ---------------------------------------------------------------- duplicates


def test_duplicate_of_a_stored_id_raises_naming_it(db: ArrowDatabase) -> None:
    db.add_records(P, batch(["a", "b"], v=[1, 2]), "id")
    with pytest.raises(DuplicateRecordError, match=r"\['b'\]"):
        db.add_records(P, batch(["c", "b"], v=[3, 20]), "id")
    # the failed batch stored nothing, not even its new id
    assert [r["id"] for r in rows(db.get_all_records(P, "id"))] == ["a", "b"]
    with pytest.raises(DuplicateRecordError, match="'a'"):
        db.add_record(P, "a", pa.table({"v": [5]}))


def test_duplicate_of_a_committed_id_raises(db: ArrowDatabase) -> None:
    db.add_records(P, batch(["a"], v=[1]), "id")
    db.flush()
    with pytest.raises(DuplicateRecordError, match="'a'"):
        db.add_records(P, batch(["a"], v=[2]), "id")


def test_duplicate_within_one_batch_raises_and_stores_nothing(db: ArrowDatabase) -> None:
    with pytest.raises(DuplicateRecordError, match=r"\['x'\]"):
        db.add_records(P, batch(["x", "y", "x"], v=[1, 2, 3]), "id")
    assert db.get_all_records(P) is None


def test_skip_duplicates_keeps_the_first_row(db: ArrowDatabase) -> None:
    db.add_records(P, batch(["a", "b"], v=[1, 2]), "id")
    db.flush()
    db.add_records(P, batch(["c"], v=[3]), "id")
    db.add_records(P, batch(["a", "c", "d", "d"], v=[10, 30, 4, 40]), "id", skip_duplicates=True)
    db.add_record(P, "b", pa.table({"v": [20]}), skip_duplicates=True)
    assert rows(db.get_all_records(P, "id")) == [
        {"id": "a", "v": 1},
        {"id": "b", "v": 2},
        {"id": "c", "v": 3},
        {"id": "d", "v": 4},
    ]


def test_skip_duplicates_of_only_known_ids_is_a_no_op(db: ArrowDatabase) -> None:
    db.add_records(P, batch(["a"], v=[1]), "id")
    db.add_records(P, batch(["a"], v=[9]), "id", skip_duplicates=True)
    db.flush()
    assert rows(db.get_all_records(P, "id")) == [{"id": "a", "v": 1}]


def test_same_id_under_different_paths_is_not_a_duplicate(db: ArrowDatabase) -> None:
    db.add_records(("p1",), batch(["a"], v=[1]), "id")
    db.add_records(("p1", "sub"), batch(["a"], v=[2]), "id")
    db.add_records(("p2",), batch(["a"], v=[3]), "id")
    assert rows(db.get_all_records(("p1", "sub"), "id")) == [{"id": "a", "v": 2}]


# ---------------------------------------------------------------- schema


def test_new_columns_evolve_the_schema(db: ArrowDatabase) -> None:
    db.add_records(P, batch(["a"], v=[1]), "id")
    db.flush()
    db.add_records(P, batch(["b"], v=[2], extra=["x"]), "id")
    db.add_records(P, batch(["c"], extra=["y"]), "id")
    assert rows(db.get_all_records(P, "id")) == [
        {"id": "a", "v": 1, "extra": None},
        {"id": "b", "v": 2, "extra": "x"},
        {"id": "c", "v": None, "extra": "y"},
    ]
    db.flush()
    assert rows(db.get_all_records(P, "id")) == [
        {"id": "a", "v": 1, "extra": None},
        {"id": "b", "v": 2, "extra": "x"},
        {"id": "c", "v": None, "extra": "y"},
    ]


def test_type_conflict_raises_naming_the_column(db: ArrowDatabase) -> None:
    db.add_records(P, batch(["a"], v=[1]), "id")
    with pytest.raises(SchemaError, match="'v'"):
        db.add_records(P, batch(["b"], v=["one"]), "id")
    db.flush()
    with pytest.raises(SchemaError, match="'v'"):
        db.add_records(P, pa.table({"id": ["c"], "v": pa.array([1], pa.int32())}), "id")
    assert rows(db.get_all_records(P, "id")) == [{"id": "a", "v": 1}]


def test_canonical_types_round_trip(db: ArrowDatabase) -> None:
    ts = datetime.datetime(2024, 5, 6, 7, 8, 9, 123000)
    table = pa.table(
        {
            "id": pa.array(["a", "b"], pa.large_string()),
            "ls": pa.array(["x", None], pa.large_string()),
            "lst": pa.array([[1, 2], None], pa.large_list(pa.int64())),
            "st": pa.array([{"k": 1, "s": "u"}, None]),
            "ms": pa.array([ts, None], pa.timestamp("ms")),
            "utc": pa.array([ts, None], pa.timestamp("us", tz="UTC")),
            "cat": pa.array(["p", "q"]).dictionary_encode(),
            "i8": pa.array([1, -1], pa.int8()),
            "f32": pa.array([0.5, None], pa.float32()),
            "dec": pa.array([decimal.Decimal("1.25"), None], pa.decimal128(6, 2)),
            "day": pa.array([datetime.date(2024, 1, 2), None]),
            "bin": pa.array([b"\x00\x01", None], pa.large_binary()),
        }
    )
    db.add_records(P, table, "id")
    got = db.get_all_records(P, record_id_column="id")
    assert got is not None
    expected = {
        "id": pa.string(),
        "ls": pa.string(),
        "lst": pa.list_(pa.int64()),
        "st": pa.struct([("k", pa.int64()), ("s", pa.string())]),
        "ms": pa.timestamp("us"),
        "utc": pa.timestamp("us", tz="UTC"),
        "cat": pa.string(),
        "i8": pa.int8(),
        "f32": pa.float32(),
        "dec": pa.decimal128(6, 2),
        "day": pa.date32(),
        "bin": pa.binary(),
    }
    assert {f.name: f.type for f in got.schema} == expected
    assert all(f.nullable for f in got.schema)
    assert rows(got) == rows(table.cast(pa.schema(expected.items())))


@pytest.mark.parametrize(
    ("column", "hint"),
    [
        (pa.array([1], pa.uint32()), "signed"),
        (pa.array([1], pa.timestamp("ns")), "timestamp"),
        (pa.array([None], pa.null()), "null"),
        (pa.array([1], pa.timestamp("us", tz="Europe/Paris")), "UTC"),
    ],
)
def test_types_that_cannot_be_stored_exactly_are_refused(
    db: ArrowDatabase, column: pa.Array, hint: str
) -> None:
    with pytest.raises(SchemaError, match=f"'bad'.*{hint}"):
        db.add_records(P, pa.table({"id": ["a"], "bad": column}), "id")
    assert db.get_all_records(P) is None


# ---------------------------------------------------------------- column value queries


@pytest.fixture
def people(db: ArrowDatabase) -> ArrowDatabase:
    db.add_records(
        P,
        batch(["a", "b", "c"], name=["ann", "bob", "cy"], age=[30, 40, None], team=["x", "y", "x"]),
        "id",
    )
    db.flush()
    db.add_records(P, batch(["d"], name=["dee"], age=[30], team=["y"]), "id")
    return db


def test_equality_constraints_are_anded(people: ArrowDatabase) -> None:
    got = people.get_records_with_column_value(P, {"age": 30}, record_id_column="id")
    assert [r["id"] for r in rows(got)] == ["a", "d"]
    got = people.get_records_with_column_value(P, {"age": 30, "team": "y"}, "id")
    assert [r["id"] for r in rows(got)] == ["d"]
    assert people.get_records_with_column_value(P, {"age": 31}) is None


def test_collection_values_mean_in_and_none_matches_null(people: ArrowDatabase) -> None:
    got = people.get_records_with_column_value(P, {"name": ["bob", "dee", "zed"]}, "id")
    assert [r["id"] for r in rows(got)] == ["b", "d"]
    got = people.get_records_with_column_value(P, {"age": None}, "id")
    assert [r["id"] for r in rows(got)] == ["c"]
    got = people.get_records_with_column_value(P, {"age": (40, None)}, "id")
    assert [r["id"] for r in rows(got)] == ["b", "c"]
    assert people.get_records_with_column_value(P, {"age": []}) is None


def test_array_values_mean_in_and_nulls_match_null(people: ArrowDatabase) -> None:
    for names in (
        pa.array(["bob", "dee", "zed"]),
        pa.chunked_array([["bob"], ["dee", "zed"]], pa.large_string()),
        np.array(["bob", "dee", "zed"]),
    ):
        got = people.get_records_with_column_value(P, {"name": names}, "id")
        assert [r["id"] for r in rows(got)] == ["b", "d"]
    got = people.get_records_with_column_value(P, {"age": np.array([40, 30], np.int32)}, "id")
    assert [r["id"] for r in rows(got)] == ["a", "b", "d"]
    got = people.get_records_with_column_value(P, {"age": pa.array([40, None])}, "id")
    assert [r["id"] for r in rows(got)] == ["b", "c"]
    got = people.get_records_with_column_value(
        P, {"id": pa.array(["a", "c", "d"]), "age": pa.array([30], pa.int8())}, "id"
    )
    assert [r["id"] for r in rows(got)] == ["a", "d"]
    assert people.get_records_with_column_value(P, {"age": pa.array([], pa.int64())}) is None


def test_array_values_of_another_kind_are_refused(people: ArrowDatabase) -> None:
    with pytest.raises(InputValidationError, match="'name'"):
        people.get_records_with_column_value(P, {"name": pa.array([1, 2])})
    with pytest.raises(InputValidationError, match="'age'"):
        people.get_records_with_column_value(P, {"age": np.array(["30"])})
    with pytest.raises(InputValidationError, match="'age'"):
        people.get_records_with_column_value(P, {"age": np.array([1.5])})


def test_long_array_values_match_like_lists(db: ArrowDatabase) -> None:
    ids = [f"k{i:05d}" for i in range(3000)]
    db.add_records(P, batch(ids, n=list(range(3000))), "id")
    db.flush()
    wanted = np.arange(0, 6000, 3, dtype=np.int64)
    got = db.get_records_with_column_value(P, {"n": wanted}, "id", columns=["n"])
    assert [r["id"] for r in rows(got)] == ids[::3]
    by_id = db.get_records_by_ids(P, pa.array(ids[::7]), "id")
    assert [r["id"] for r in rows(by_id)] == ids[::7]


def test_long_in_lists_match_like_short_ones(db: ArrowDatabase) -> None:
    ids = [f"k{i:04d}" for i in range(500)]
    db.add_records(P, batch(ids, n=list(range(500))), "id")
    got = db.get_records_with_column_value(P, {"n": list(range(0, 1000, 2))}, "id")
    assert [r["id"] for r in rows(got)] == ids[::2]


def test_projection_and_record_id_constraint(people: ArrowDatabase) -> None:
    got = people.get_records_with_column_value(P, {"team": "x"}, columns=["name"])
    assert got is not None and got.column_names == ["name"]
    assert sorted(got.column("name").to_pylist()) == ["ann", "cy"]
    got = people.get_records_with_column_value(
        P, {"id": ["a", "d"]}, record_id_column="id", columns=["age"]
    )
    assert got is not None and got.column_names == ["id", "age"]
    assert rows(got) == [{"id": "a", "age": 30}, {"id": "d", "age": 30}]
    got = people.get_records_with_column_value(P, {}, columns=["team"])
    assert got is not None and sorted(got.column("team").to_pylist()) == ["x", "x", "y", "y"]


def test_constraint_on_a_column_only_newer_rows_have(people: ArrowDatabase) -> None:
    people.add_records(P, batch(["e"], name=["eve"], level=[3]), "id")
    got = people.get_records_with_column_value(P, {"level": 3}, "id", columns=["name", "level"])
    assert rows(got) == [{"id": "e", "name": "eve", "level": 3}]
    got = people.get_records_with_column_value(P, {"level": None, "team": "y"}, "id")
    assert [r["id"] for r in rows(got)] == ["b", "d"]
    people.flush()
    got = people.get_records_with_column_value(P, {"level": 3}, "id", columns=["level"])
    assert rows(got) == [{"id": "e", "level": 3}]


def test_bad_constraints_and_columns_are_refused(people: ArrowDatabase) -> None:
    with pytest.raises(InputValidationError, match="'nope'"):
        people.get_records_with_column_value(P, {"nope": 1})
    with pytest.raises(InputValidationError, match="'age'"):
        people.get_records_with_column_value(P, {"age": "thirty"})
    with pytest.raises(InputValidationError, match="'missing'"):
        people.get_records_with_column_value(P, {"age": 30}, columns=["missing"])


@pytest.mark.parametrize(
    ("column", "value"),
    [
        (pa.array([True, False, None]), False),
        (pa.array([1, 2, None], pa.int8()), 2),
        (pa.array([0.1, 0.2, None], pa.float32()), 0.2),
        (pa.array([0.1, 0.2, None], pa.float64()), 0.2),
        (
            pa.array([decimal.Decimal("1.10"), decimal.Decimal("2.20"), None]),
            decimal.Decimal("2.2"),
        ),
        (
            pa.array([datetime.date(2020, 1, 1), datetime.date(2021, 1, 1), None]),
            datetime.date(2021, 1, 1),
        ),
        (
            pa.array(
                [datetime.datetime(2020, 1, 1), datetime.datetime(2021, 1, 1), None],
                pa.timestamp("us"),
            ),
            datetime.datetime(2021, 1, 1),
        ),
        (
            pa.array(
                [datetime.datetime(2020, 1, 1), datetime.datetime(2021, 1, 1), None],
                pa.timestamp("us", tz="UTC"),
            ),
            datetime.datetime(2021, 1, 1, tzinfo=datetime.UTC),
        ),
        (pa.array([b"a'b", b"\x00\xff", None]), b"\x00\xff"),
        (pa.array(["a'b", "it's", None]), "it's"),
    ],
)
def test_constraints_match_by_value_for_every_scalar_type(
    db: ArrowDatabase, column: pa.Array, value: object
) -> None:
    db.add_records(P, pa.table({"id": ["r0", "r1", "r2"], "c": column}), "id")
    db.flush()
    assert [r["id"] for r in rows(db.get_records_with_column_value(P, {"c": value}, "id"))] == [
        "r1"
    ]
    got = db.get_records_with_column_value(P, {"c": [value, None]}, "id")
    assert [r["id"] for r in rows(got)] == ["r1", "r2"]


# ---------------------------------------------------------------- scoped views


def test_view_writes_land_under_the_prefix(db: ArrowDatabase) -> None:
    db.at("a").add_records(("b",), batch(["x"], v=[1]), "id")
    db.at("a", "b").add_record(("c",), "y", pa.table({"v": [2]}))
    db.at("a").at("b").flush()
    assert rows(db.get_all_records(("a", "b"), "id")) == [{"id": "x", "v": 1}]
    assert rows(db.get_all_records(("a", "b", "c"), "id")) == [{"id": "y", "v": 2}]
    view = db.at("a")
    assert rows(view.get_record_by_id(("b",), "x", "id")) == [{"id": "x", "v": 1}]
    assert rows(view.get_records_by_ids(("b", "c"), ["y"], "id")) == [{"id": "y", "v": 2}]
    assert rows(view.get_records_with_column_value(("b",), {"v": 1}, "id")) == [{"id": "x", "v": 1}]
    assert view.get_all_records(("a", "b")) is None


def test_views_share_duplicate_state(db: ArrowDatabase) -> None:
    db.add_records(("a", "b"), batch(["x"], v=[1]), "id")
    with pytest.raises(DuplicateRecordError, match="'x'"):
        db.at("a").add_records(("b",), batch(["x"], v=[2]), "id")


# ---------------------------------------------------------------- verified writes and flush=


def test_committed_version_grows_with_each_committed_write_and_is_seen_through_views(
    db: ArrowDatabase,
) -> None:
    view = db.at("results")
    assert db.committed_version(P) == -1 == view.committed_version(("fn",))
    db.add_records(P, batch(["a"], v=[1]), "id", flush=True)
    first = db.committed_version(P)
    assert first is not None and first >= 0
    assert view.committed_version(("fn",)) == first
    db.add_records(P, batch(["b"], v=[2]), "id", flush=True)
    second = db.committed_version(P)
    assert second is not None and second > first


def test_a_verified_write_is_still_checked_against_rows_committed_after_its_version(
    db: ArrowDatabase,
) -> None:
    db.add_records(P, batch(["old"], v=[0]), "id", flush=True)
    version = db.committed_version(P)
    assert db.get_records_by_ids(P, ["x", "y"]) is None  # the read that verifies absence
    db.add_records(P, batch(["x"], v=[10]), "id", flush=True)  # another writer, after it
    with pytest.raises(DuplicateRecordError, match="'x'"):
        db.add_records(P, batch(["x", "y"], v=[0, 20]), "id", absent_at=version)
    db.at("results").add_records(
        ("fn",), batch(["x", "y"], v=[0, 20]), "id", skip_duplicates=True, absent_at=version
    )
    db.flush()
    assert rows(db.get_all_records(P, "id")) == [
        {"id": "old", "v": 0},
        {"id": "x", "v": 10},
        {"id": "y", "v": 20},
    ]


def test_a_verified_write_is_checked_against_pending_rows(db: ArrowDatabase) -> None:
    version = db.committed_version(P)
    db.add_records(P, batch(["p"], v=[1]), "id")
    db.add_records(P, batch(["p", "q"], v=[9, 2]), "id", skip_duplicates=True, absent_at=version)
    assert rows(db.get_all_records(P, "id")) == [{"id": "p", "v": 1}, {"id": "q", "v": 2}]


def test_flush_true_commits_the_write(db: ArrowDatabase) -> None:
    db.add_record(P, "a", pa.table({"v": [1]}), flush=True)
    after_one = db.committed_version(P)
    assert after_one is not None and after_one >= 0
    db.add_records(P, batch(["b"], v=[2]), "id", flush=True)
    assert (db.committed_version(P) or 0) > after_one
    assert [r["v"] for r in rows(db.get_all_records(P, "id"))] == [1, 2]


def test_record_id_column_defaults_to_the_first_column(db: ArrowDatabase) -> None:
    db.add_records(P, pa.table({"key": ["k1", "k2"], "v": [1, 2]}))
    assert rows(db.get_all_records(P, "key"), "key") == [
        {"key": "k1", "v": 1},
        {"key": "k2", "v": 2},
    ]


def test_the_noop_database_keeps_no_versions() -> None:
    noop = NoOpArrowDatabase()
    noop.add_records(P, batch(["a"], v=[1]), "id", flush=True, absent_at=3)
    assert noop.committed_version(P) is None
    assert noop.at("x").committed_version(("y",)) is None


# ---------------------------------------------------------------- table tokens and notes

#: backends that cannot name their tables' states, so keep no notes
_UNNAMED_STATES = ("SQLiteDatabase", "PostgreSQLDatabase")


def test_a_note_is_answered_only_while_its_table_is_unchanged(db: ArrowDatabase) -> None:
    assert db.table_token(P) is None  # no table yet
    db.add_records(P, batch(["a"], v=[1]), "id", flush=True)
    token = db.table_token(P)
    db.write_note(P, "checked", "all good")
    if type(db).__name__ in _UNNAMED_STATES:
        assert token is None and db.read_note(P, "checked") is None
        return
    assert token is not None and db.table_token(P) == token  # reads do not move it
    db.get_all_records(P)
    assert db.table_token(P) == token
    assert db.read_note(P, "checked") == "all good"
    assert db.at("results").read_note(("fn",), "checked") == "all good"  # views share notes
    assert db.read_note(P, "other") is None
    assert db.read_note(("results", "gn"), "checked") is None
    db.add_records(P, batch(["b"], v=[2]), "id")  # pending or committed: another state
    assert db.read_note(P, "checked") is None
    db.flush()
    assert db.table_token(P) not in (None, token)
    assert db.read_note(P, "checked") is None
    db.write_note(P, "checked", "still good")
    assert db.read_note(P, "checked") == "still good"


def test_note_names_are_checked(any_db: ArrowDatabase) -> None:
    with pytest.raises(InputValidationError, match="note name"):
        any_db.write_note(P, "../escape", "x")
    with pytest.raises(InputValidationError, match="note name"):
        any_db.read_note(P, "a b")


def test_the_noop_database_names_no_states_and_keeps_no_notes() -> None:
    noop = NoOpArrowDatabase()
    noop.add_records(P, batch(["a"], v=[1]), "id", flush=True)
    noop.write_note(P, "checked", "x")
    assert noop.table_token(P) is None and noop.read_note(P, "checked") is None


def test_appended_token_vouches_only_for_rows_this_object_appended(db: ArrowDatabase) -> None:
    assert db.appended_token(P, None) is None  # no table
    db.add_records(P, batch(["a"], v=[1]), "id", flush=True)
    start = db.table_token(P)
    if type(db).__name__ in _UNNAMED_STATES:
        assert db.appended_token(P, None) is None
        return
    assert db.appended_token(P, None) == start  # it created the table
    db.add_records(P, batch(["b"], v=[2]), "id", flush=True)
    now = db.table_token(P)
    assert now != start and db.appended_token(P, start) == now
    assert db.at("results").appended_token(("fn",), start) == now
    db.add_records(("results", "gn"), batch(["c"], v=[3]), "id", flush=True)
    assert db.appended_token(("results", "gn"), start) is None  # a token of another table


def test_count_records_counts_the_rows_a_read_returns_or_says_it_cannot(
    any_db: ArrowDatabase,
) -> None:
    """``count_records`` is the number of rows a read returns (0 without a table), through
    views too, or None where the backend cannot tell without reading them; committed rows,
    duplicates dropped and several commits are counted exactly."""
    db = any_db
    assert db.count_records(P) == 0  # no table
    db.add_records(P, batch(["a", "b"], v=[1, 2]), "id", flush=True)
    db.add_records(P, batch(["b", "c"], v=[9, 3]), "id", skip_duplicates=True, flush=True)
    stored = db.get_all_records(P)
    expected = 0 if stored is None else stored.num_rows
    assert db.count_records(P) == expected
    assert db.at(P[0]).count_records(P[1:]) == expected
    assert db.count_records(("results", "gn")) == 0
    db.add_records(P, batch(["d"], v=[4]), "id")  # pending where the backend batches
    assert db.count_records(P) in (None, expected + (stored is not None))
    db.flush()
    assert db.count_records(P) == (0 if stored is None else expected + 1)


def test_ids_pending_from_several_writes_are_all_checked(db: ArrowDatabase) -> None:
    db.add_records(P, batch(["a"], v=[1]), "id")
    db.add_records(P, batch(["b"], v=[2]), "id")
    db.add_records(P, batch(["c"], v=[3]), "id")  # (after the pending ids were first needed)
    with pytest.raises(DuplicateRecordError, match="'c'"):
        db.add_records(P, batch(["c"], v=[9]), "id")
    db.add_records(P, batch(["a", "d"], v=[9, 4]), "id", skip_duplicates=True)
    db.flush()
    assert [r["v"] for r in rows(db.get_all_records(P, "id"))] == [1, 2, 3, 4]


def test_only_a_delta_store_keeps_object_logs(any_db: ArrowDatabase) -> None:
    """``object_log`` is None everywhere but on a Delta store (local or on object storage),
    where a view hands out the log of the full path and an append is read back."""
    is_delta = isinstance(any_db, DeltaTableDatabase)
    log = any_db.object_log(P)
    assert (log is not None) is is_delta
    view_log = any_db.at(P[0]).object_log(P[1:])
    assert (view_log is not None) is is_delta
    if log is not None and view_log is not None:
        stamp = log.append(["an entry"])
        assert [(e.at_us, e.text) for e in view_log.read()] == [(stamp, "an entry")]
        assert any_db.get_all_records(P) is None  # the log is not the table's rows
    with pytest.raises(InputValidationError):
        any_db.object_log(("a/b",))
