"""Function output checks: array values and types, every value in its stored form; output
names vs tags and reserved names."""

import datetime as dt
import enum
import zoneinfo
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import numpy as np
import pandas as pd
import pytest
from numpy.typing import NDArray

from orcapod.data.conversion import column_to_pylist, columns_to_table
from orcapod.errors import InputValidationError
from orcapod.functions.validation import check_output_names, is_compatible, make_coercer
from orcapod.types import ArrayType, Shape

FEATURES = Annotated[NDArray[np.float32], Shape(64)]
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


class Colour(enum.StrEnum):
    RED = "red"


class Level(str, enum.Enum):  # noqa: UP042 - its str() is "Level.HIGH", not its text
    HIGH = "high"


class Size(enum.IntEnum):
    BIG = 3


class Labelled(np.ndarray):  # an ndarray subclass, as some libraries return
    pass


def test_a_matching_array_is_accepted_read_only_without_a_copy():
    check = make_coercer(FEATURES)
    value = np.zeros(64, np.float32)
    out = check(value)
    assert out.dtype == np.float32 and out.shape == (64,) and np.shares_memory(out, value)
    assert not out.flags.writeable and value.flags.writeable  # the function's array untouched
    assert check(out) is out
    big_endian = np.arange(64, dtype=">f4")
    native = check(big_endian)
    assert native.dtype == np.dtype("float32") and native.dtype.isnative
    assert native.tolist() == big_endian.tolist()
    assert not make_coercer(np.ndarray)(value).flags.writeable


def _stored(value: Any, tp: Any) -> Any:
    """What the store gives back for ``value`` in a column of type ``tp``."""
    return column_to_pylist(columns_to_table({"c": [value]}, {"c": tp}).column("c"), tp)[0]


def _exactly(value: Any) -> Any:
    """Everything a function could see of a value: type, repr (time zone, fold, scale),
    text, and for arrays dtype, shape, flags and items."""
    if isinstance(value, np.ndarray):
        flags = value.flags.writeable, value.flags.c_contiguous
        return type(value), value.dtype.str, value.shape, flags, value.tolist()
    if isinstance(value, list):
        return [_exactly(v) for v in value]
    if isinstance(value, dict):
        return {_exactly(k): _exactly(v) for k, v in value.items()}
    return type(value), repr(value), str(value)


STORED_FORMS = [
    (dt.datetime, dt.datetime(2024, 1, 1, 12, tzinfo=BERLIN)),
    (dt.datetime, dt.datetime(2024, 7, 1, 12, 0, 0, 123456, tzinfo=BERLIN)),
    (dt.datetime, dt.datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=BERLIN)),
    (dt.datetime, dt.datetime(2024, 1, 1, 12)),
    (dt.datetime, dt.datetime(2024, 1, 1, 12, fold=1)),
    (dt.datetime, dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)),
    (dt.datetime, dt.datetime(2024, 1, 1, 12, tzinfo=zoneinfo.ZoneInfo("UTC"))),
    (dt.datetime, dt.datetime(1900, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=-5)))),
    (dt.datetime, pd.Timestamp("2024-01-01 12:00:00.123456789", tz="Europe/Berlin")),
    (dt.datetime, pd.Timestamp("2024-01-01 12:00:00.5")),
    (dt.time, dt.time(1, 2, 3, 4)),
    (dt.time, dt.time(1, tzinfo=BERLIN)),
    (dt.time, dt.time(1, fold=1)),
    (dt.timedelta, dt.timedelta(days=-1, microseconds=3)),
    (dt.timedelta, pd.Timedelta(1500, "ns")),
    (dt.date, dt.date(2024, 2, 29)),
    (Decimal, Decimal("0.5")),
    (Decimal, Decimal("1E+3")),
    (Decimal, Decimal("-0")),
    (Decimal, Decimal("-2.50000000000000000000000")),
    (Decimal, Decimal("99999999999999999999.999999999999999999")),
    (str, "plain"),
    (str, Colour.RED),
    (str, Level.HIGH),
    (bytes, bytearray(b"raw")),
    (int, Size.BIG),
    (int, np.int16(-7)),
    (float, np.float32(0.1)),
    (bool, np.bool_(True)),
    (Path, PurePosixPath("/data/./a.txt")),
    (Path, Path("relative/b.txt")),
    (list[dt.datetime], (dt.datetime(2024, 1, 1, 12, tzinfo=BERLIN),)),
    (dict[str, Decimal], {"b": Decimal("1.5"), "a": Decimal("2")}),
    (dict[str, str], {Colour.RED: Level.HIGH}),
    (Decimal | None, Decimal("0.25")),
    (NDArray[np.float64], np.arange(6.0).reshape(2, 3)),
    (NDArray[np.float64], np.arange(6.0).reshape(2, 3).T),
    (NDArray[np.float64], np.arange(3.0).astype(">f8")),
    (NDArray[np.float64], np.arange(2.0).view(Labelled)),
    (list[NDArray[np.int32]], [np.arange(2, dtype=np.int32)]),
]


@pytest.mark.parametrize(("tp", "value"), STORED_FORMS)
def test_every_output_value_is_returned_as_the_store_gives_it_back(tp: Any, value: Any):
    out = make_coercer(tp)(value)
    assert _exactly(out) == _exactly(_stored(value, tp))
    assert _exactly(_stored(out, tp)) == _exactly(out)  # and stores unchanged


def test_an_aware_datetime_keeps_its_instant_in_utc_and_stored_values_pass_as_they_are():
    out = make_coercer(dt.datetime)(dt.datetime(2024, 1, 1, 12, tzinfo=BERLIN))
    assert out == dt.datetime(2024, 1, 1, 12, tzinfo=BERLIN) and out.hour == 11
    assert make_coercer(dt.datetime)(out) is out
    assert make_coercer(Decimal)(Decimal("0.500000000000000000")) == Decimal("0.5")
    text, moment = "x", dt.time(1)
    assert make_coercer(str)(text) is text and make_coercer(dt.time)(moment) is moment


@pytest.mark.parametrize(
    "value",
    [
        Decimal("0.1234567890123456789"),
        Decimal("123456789012345678901"),
        Decimal("NaN"),
        Decimal("-Infinity"),
    ],
)
def test_a_decimal_the_column_cannot_hold_is_refused(value: Decimal):
    with pytest.raises(TypeError, match=r"cannot be stored as decimal\(38, 18\).*quantize"):
        make_coercer(Decimal)(value)


def test_a_masked_array_is_refused_as_its_mask_cannot_be_stored():
    masked = np.ma.masked_array([1.0, 2.0], mask=[True, False])
    with pytest.raises(TypeError, match=r"masked array.*filled"):
        make_coercer(NDArray[np.float64])(masked)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.zeros(64), "dtype float64 instead of float32"),
        (np.zeros(63, np.float32), r"shape \(63,\) instead of \(64,\)"),
        (np.zeros((8, 8), np.float32), r"shape \(8, 8\) instead of \(64,\)"),
        ([0.0] * 64, "expected ArrayType"),
        (None, "expected ArrayType"),
    ],
)
def test_a_wrong_array_is_a_clear_error(value, match):
    with pytest.raises(TypeError, match=match):
        make_coercer(FEATURES)(value)


def test_optional_arrays_take_none():
    check = make_coercer(FEATURES | None)
    assert check(None) is None
    with pytest.raises(TypeError, match="dtype"):
        check(np.zeros(64, np.int32))


def test_array_columns_feed_parameters_that_accept_them():
    column = ArrayType("uint8", (480, 640, 3))
    assert is_compatible(column, np.ndarray)
    assert is_compatible(column, NDArray[np.uint8])
    assert is_compatible(column, Annotated[NDArray[np.uint8], Shape(None, None, 3)])
    assert is_compatible(column, Annotated[NDArray[np.uint8], Shape(None, None, 3)] | None)
    assert not is_compatible(column, NDArray[np.float32])
    assert not is_compatible(column, Annotated[np.ndarray, Shape(None, None, 4)])
    assert not is_compatible(ArrayType("uint8"), Annotated[np.ndarray, Shape(None, None, 3)])
    assert not is_compatible(column | None, np.ndarray)
    assert not is_compatible(int, np.ndarray)


def test_outputs_may_not_shadow_tag_columns():
    check_output_names("f", ["area", "mean"], ["subject", "image"])
    with pytest.raises(InputValidationError, match=r"'f' outputs \['image'\].*map_tags"):
        check_output_names("f", ["area", "image"], ["subject", "image"])


def test_outputs_may_not_use_reserved_names():
    with pytest.raises(InputValidationError, match="reserved"):
        check_output_names("f", ["_tag_source_id"], [])
    with pytest.raises(InputValidationError, match="reserved"):
        check_output_names("f", ["__computed"], ["subject"])
