"""Dates and times in sources: one stored form (timestamp[us, tz=UTC]), mixed zones refused."""

import datetime as dt
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from orcapod.data.conversion import infer_schema, rows_to_table
from orcapod.data.timestamps import UTC_TIMESTAMP, with_utc_timestamps
from orcapod.errors import SchemaError
from orcapod.sources import DictSource


def test_every_timestamp_column_becomes_utc_microseconds_keeping_the_instants():
    berlin = dt.datetime(2024, 1, 1, 12, tzinfo=ZoneInfo("Europe/Berlin"))
    naive = dt.datetime(2024, 1, 1, 12)
    utc = dt.UTC
    table = pa.table(
        {
            "zoned": pa.array([berlin], pa.timestamp("ns", tz="Europe/Berlin")),
            "naive": pa.array([naive], pa.timestamp("s")),
            "listed": pa.array([[naive]], pa.list_(pa.timestamp("ms"))),
            "mapped": pa.array(
                [[("k", berlin)]], pa.map_(pa.string(), pa.timestamp("us", "+01:00"))
            ),
            "other": [1],
        }
    )
    out = with_utc_timestamps(table)
    utc_type = pa.timestamp("us", tz="UTC")
    assert out.schema.types[:3] == [utc_type, utc_type, pa.list_(utc_type)]
    assert out.schema.field("mapped").type.item_type == utc_type
    assert out.to_pylist() == [
        {
            "zoned": dt.datetime(2024, 1, 1, 11, tzinfo=utc),  # the same instant
            "naive": dt.datetime(2024, 1, 1, 12, tzinfo=utc),  # the wall-clock time, as UTC
            "listed": [dt.datetime(2024, 1, 1, 12, tzinfo=utc)],
            "mapped": [("k", dt.datetime(2024, 1, 1, 11, tzinfo=utc))],
            "other": 1,
        }
    ]
    plain = pa.table({"a": [1], "t": pa.array([berlin], utc_type)})
    assert with_utc_timestamps(plain) is plain
    finer = pa.table({"t": pa.array([1_000_000_001], pa.timestamp("ns"))})
    with pytest.raises(SchemaError, match=r"column 't'.*microseconds.*floor\('us'\)"):
        with_utc_timestamps(finer)


def test_a_column_mixing_naive_and_aware_datetimes_is_refused_naming_it():
    naive = dt.datetime(2024, 1, 1, 12)
    aware = dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)
    message = r"column 'when' mixes naive datetimes .* time-zone-aware ones.*tz_localize"
    with pytest.raises(SchemaError, match=message):
        infer_schema([{"when": aware}, {"when": None}, {"when": naive}])
    with pytest.raises(SchemaError, match=message):  # a declared type: the values' check
        rows_to_table([{"when": aware}, {"when": naive}], {"when": dt.datetime | None})
    with pytest.raises(SchemaError, match=r"column 'when\[\]' mixes naive"):  # at any depth
        rows_to_table([{"when": [aware, naive]}], {"when": list[dt.datetime]})
    with pytest.raises(SchemaError, match=r"column 'when\[\]' mixes naive"):  # an Arrow schema
        DictSource(
            [{"k": 1, "when": [aware, naive]}],
            tag_columns=["k"],
            data_schema=pa.schema([("k", pa.int64()), ("when", pa.list_(UTC_TIMESTAMP))]),
        )
    with pytest.raises(SchemaError, match=r"column 'when\[\]' mixes naive"):
        infer_schema([{"when": [aware, naive]}])
    assert infer_schema([{"when": naive}, {"when": naive}]) == {"when": dt.datetime}
