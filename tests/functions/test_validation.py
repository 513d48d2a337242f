"""Function output checks: array values and types; output names vs tags and reserved names."""

from typing import Annotated

import numpy as np
import pytest
from numpy.typing import NDArray

from orcapod.errors import InputValidationError
from orcapod.functions.validation import check_output_names, is_compatible, make_coercer
from orcapod.types import ArrayType, Shape

FEATURES = Annotated[NDArray[np.float32], Shape(64)]


def test_a_matching_array_is_accepted_as_is():
    check = make_coercer(FEATURES)
    value = np.zeros(64, np.float32)
    assert check(value) is value
    big_endian = np.zeros(64, dtype=">f4")
    assert check(big_endian) is big_endian
    assert make_coercer(np.ndarray)(value) is value


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
