"""Schemas read from a function's signature: the output keys' checks and the rule that a
``-> T | None`` function filters with None, so its outputs are typed ``T``."""

from __future__ import annotations

from typing import Any

import pytest

from orcapod import function_pod
from orcapod.errors import InputValidationError
from orcapod.functions import PythonPacketFunction
from orcapod.functions.signature_schema import check_output_keys
from orcapod.sources import DictSource
from orcapod.types import Schema


@pytest.mark.parametrize("keys", [123, {"a", "b"}, 1.5])
def test_output_keys_that_are_not_a_string_or_a_sequence_are_named(keys: Any) -> None:
    with pytest.raises(
        InputValidationError, match="output keys must be a string or a sequence of strings"
    ):
        check_output_keys(keys)


def test_a_wrong_output_keys_type_fails_when_function_pod_is_called() -> None:
    with pytest.raises(InputValidationError, match=r"got int 123.*pass e\.g\. 'result'"):
        function_pod(123)  # type: ignore[arg-type]


def test_a_filtering_single_key_function_outputs_the_plain_type() -> None:
    def keep_small(x: float) -> float | None:
        return None if x > 1 else x

    pf = PythonPacketFunction(keep_small, "o")
    assert pf.output_packet_schema == Schema({"o": float})
    pf = PythonPacketFunction(keep_small, "o", output_schema={"o": float | None})
    assert pf.output_packet_schema == Schema({"o": float})


def test_a_filtering_several_key_function_keeps_its_optional_keys() -> None:
    def split(x: float) -> tuple[float, int | None] | None:
        return None if x > 1 else (x, None)

    pf = PythonPacketFunction(split, ["a", "b"])
    assert pf.output_packet_schema == Schema({"a": float, "b": int | None})


def test_none_filters_the_row_and_a_downstream_function_takes_the_plain_type() -> None:
    @function_pod("o")
    def keep_small(x: float) -> float | None:
        return None if x > 1 else x

    @function_pod("z")
    def double(o: float) -> float:
        return 2 * o

    source = DictSource(
        [{"s": "a", "x": 1.0}, {"s": "b", "x": 2.0}], tag_columns=["s"], source_id="xs"
    )
    filtered = keep_small.pod(source)  # type: ignore[attr-defined]
    assert filtered.as_table().to_pylist() == [{"s": "a", "o": 1.0}]
    assert double.pod(filtered).as_table().to_pylist() == [{"s": "a", "z": 2.0}]  # type: ignore[attr-defined]
