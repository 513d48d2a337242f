"""``--where COLUMN=VALUE``: values take their tag column's type, in every command."""

import datetime

import pyarrow as pa
import pytest
import typer

from orcapod.cli.where import arrow_types, catalog_types, parse_where, single_values


def test_values_are_converted_by_the_columns_type_not_by_their_look():
    types = arrow_types({"sid": str, "visit": int, "ok": bool, "day": datetime.date})
    where = ["sid=1", "sid=true", "sid=null", "visit=3", "ok=true", "day=2024-01-31"]
    assert parse_where(where, types) == {
        "sid": ["1", "true", "null"],
        "visit": [3],
        "ok": [True],
        "day": [datetime.date(2024, 1, 31)],
    }


def test_the_catalogs_type_names_give_the_same_types():
    types = catalog_types({"sid": "str", "visit": "int", "weight": "float | None", "p": "Path"})
    assert types == {
        "sid": pa.large_string(),
        "visit": pa.int64(),
        "weight": pa.float64(),
        "p": None,
    }
    assert parse_where(["sid=007", "visit=2", "weight=1.5", "p=a.txt"], types) == {
        "sid": ["007"],
        "visit": [2],
        "weight": [1.5],
        "p": ["a.txt"],  # no text form known: kept as written
    }


def test_a_value_of_the_wrong_type_is_refused_naming_the_columns_type(capsys):
    with pytest.raises(typer.Exit):
        parse_where(["visit=two"], arrow_types({"visit": int}))
    said = " ".join(capsys.readouterr().err.split())
    assert "'visit' holds int64 values and 'two' is not one" in said


def test_an_item_without_a_value_and_a_repeated_column_for_one_row_are_refused(capsys):
    with pytest.raises(typer.Exit):
        parse_where(["visit"])
    assert "write COLUMN=VALUE" in capsys.readouterr().err
    with pytest.raises(typer.Exit):
        single_values(parse_where(["sid=a", "sid=b"]))
    assert "more than once" in capsys.readouterr().err
    assert single_values(parse_where(["sid=a", "visit=1"])) == {"sid": "a", "visit": "1"}
