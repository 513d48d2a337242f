from typing import Annotated

import numpy as np
import pytest
from numpy.typing import NDArray

from orcapod.errors import SchemaError
from orcapod.types import ArrayType, Schema, Shape
from orcapod.types.arrays import normalize_type


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        (np.ndarray, ArrayType()),
        (NDArray[np.float32], ArrayType("float32")),
        (Annotated[NDArray[np.float32], Shape(64)], ArrayType("float32", (64,))),
        (Annotated[NDArray[np.uint8], Shape(None, None, 3)], ArrayType("uint8", (None, None, 3))),
        (Annotated[np.ndarray, Shape(2, 2)], ArrayType(None, (2, 2))),
        (np.ndarray[tuple[int], np.dtype[np.int16]], ArrayType("int16")),
        (ArrayType(np.float64, 3), ArrayType("float64", (3,))),
        (Annotated[NDArray[np.float32], "doc", Shape(2)], ArrayType("float32", (2,))),
    ],
)
def test_every_array_declaration_normalises_to_one_array_type(declared, expected):
    assert normalize_type(declared) == expected
    assert Schema({"x": declared}) == Schema({"x": expected})


def test_normalisation_reaches_inside_optional_and_containers_and_strips_other_annotations():
    assert normalize_type(NDArray[np.float32] | None) == (ArrayType("float32") | None)
    assert (
        normalize_type(list[Annotated[NDArray[np.int8], Shape(2)]]) == list[ArrayType("int8", (2,))]
    )
    assert normalize_type(Annotated[int, "a note"]) is int
    assert normalize_type(dict[str, int]) == dict[str, int]


def test_dtype_is_stored_by_name_in_native_byte_order():
    assert ArrayType(">f4") == ArrayType(np.float32) == ArrayType("float32")
    assert ArrayType("float32").dtype == "float32"
    assert hash(ArrayType("f8", 3)) == hash(ArrayType(np.float64, (3,)))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("complex128",), "not supported"),
        (("U4",), "not supported"),
        (("not a dtype",), "not a numpy dtype"),
        (("float32", (2, -1)), "non-negative int or None"),
        (("float32", "3"), "tuple of ints"),
    ],
)
def test_bad_array_types_are_refused_with_the_reason(args, match):
    with pytest.raises(SchemaError, match=match):
        ArrayType(*args)


def test_a_shape_stated_twice_differently_is_an_error():
    with pytest.raises(SchemaError, match="state the shape once"):
        normalize_type(Annotated[ArrayType("float32", (2,)), Shape(3)])
    with pytest.raises(SchemaError, match="2 Shapes"):
        normalize_type(Annotated[np.ndarray, Shape(2), Shape(3)])


def test_accepts_and_check_follow_dtype_and_fixed_dimensions():
    any_array = ArrayType()
    images = ArrayType("uint8", (None, None, 3))
    assert any_array.accepts(images)
    assert images.accepts(ArrayType("uint8", (480, 640, 3)))
    assert not images.accepts(ArrayType("uint8", (480, 640, 4)))
    assert not images.accepts(ArrayType("uint8"))
    assert not images.accepts(ArrayType("float32", (1, 1, 3)))
    assert images.check(np.zeros((2, 5, 3), np.uint8)) is None
    assert "dtype float64 instead of uint8" in images.check(np.zeros((2, 5, 3)))
    assert "shape (2, 5) instead of (None, None, 3)" in images.check(np.zeros((2, 5), np.uint8))
    assert ArrayType("float32", (64,)).is_fixed and not images.is_fixed


def test_calling_an_array_type_converts_a_value():
    assert ArrayType("float32", (2,))([1, 2]).dtype == np.float32
    with pytest.raises(SchemaError, match="does not fit"):
        ArrayType("float32", (3,))([1, 2])


def test_schema_repr_shows_array_types():
    assert repr(Schema({"x": NDArray[np.float32]})) == "Schema({'x': ArrayType('float32')})"


def test_array_types_have_a_stable_object_hash():
    from orcapod.hashing import hash_object

    assert hash_object(ArrayType("float32", (3,))).to_string() == (
        "object_v1:3bca30483e0504b0f14982cbe84b254b5a0eb7ad180d5f2b7e3139caf9e1b1b0"
    )
    assert hash_object(Schema({"x": NDArray[np.float32] | None})) == hash_object(
        Schema({"x": ArrayType("float32") | None})
    )


def test_normalising_keeps_the_spelling_of_types_that_need_no_change():
    import typing

    assert repr(normalize_type(typing.Optional[int])) == "typing.Optional[int]"  # noqa: UP045
    assert repr(normalize_type(int | None)) == "int | None"
