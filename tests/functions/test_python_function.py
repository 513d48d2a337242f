"""PythonPacketFunction: schemas from signatures, rejected signatures, output parsing and
validation, None filtering, sync/async functions, executor routing, deterministic provenance."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import zoneinfo
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pytest
from numpy.typing import NDArray

from orcapod import Pipeline, function_pod
from orcapod.data import Packet
from orcapod.databases import DeltaTableDatabase
from orcapod.errors import InputValidationError, PacketFunctionError, SchemaError
from orcapod.executors import LocalExecutor
from orcapod.functions import PythonPacketFunction
from orcapod.sources import DictSource
from orcapod.types import ArrayType, Schema, Shape


def add(x: int, y: int = 1) -> int:
    return x + y


def test_input_schema_from_annotations_defaults_are_optional() -> None:
    pf = PythonPacketFunction(add, "sum")
    assert pf.input_packet_schema == Schema({"x": int, "y": int}, optional_fields=["y"])
    assert pf.output_packet_schema == Schema({"sum": int})


def test_string_annotations_are_resolved() -> None:
    def f(x: int) -> list[str]:
        return [str(x)]

    pf = PythonPacketFunction(f, "out")
    assert pf.input_packet_schema == Schema({"x": int})
    assert pf.output_packet_schema == Schema({"out": list[str]})


def test_input_schema_override_and_unknown_override() -> None:
    def f(x, y: int) -> int:  # type: ignore[no-untyped-def]
        return x + y

    pf = PythonPacketFunction(f, "z", input_schema={"x": float})
    assert pf.input_packet_schema == Schema({"x": float, "y": int})
    with pytest.raises(InputValidationError, match="not parameters"):
        PythonPacketFunction(add, "z", input_schema={"nope": int})


def test_missing_annotation_is_rejected_naming_the_parameter() -> None:
    def f(x, y: int) -> int:  # type: ignore[no-untyped-def]
        return y

    with pytest.raises(InputValidationError, match="'x'.*no type annotation"):
        PythonPacketFunction(f, "z")


@pytest.mark.parametrize(
    "fn",
    [
        lambda: None,
    ],
)
def test_lambda_needs_a_function_name(fn: Any) -> None:
    with pytest.raises(InputValidationError, match="function_name"):
        PythonPacketFunction(fn, "z")


def test_varargs_and_kwargs_and_positional_only_are_rejected() -> None:
    def star(*xs: int) -> int:
        return 0

    def starstar(**kw: int) -> int:
        return 0

    def posonly(x: int, /) -> int:
        return x

    with pytest.raises(InputValidationError, match=r"\*xs"):
        PythonPacketFunction(star, "z")
    with pytest.raises(InputValidationError, match=r"\*\*kw"):
        PythonPacketFunction(starstar, "z")
    with pytest.raises(InputValidationError, match="positional-only"):
        PythonPacketFunction(posonly, "z")


def test_output_keys_validation() -> None:
    with pytest.raises(InputValidationError, match="at least one output key"):
        PythonPacketFunction(add, [])
    with pytest.raises(InputValidationError, match="reserved"):
        PythonPacketFunction(add, "_hidden")
    with pytest.raises(InputValidationError, match="repeated"):
        PythonPacketFunction(add, ["a", "a"], output_schema=[int, int])


def test_several_keys_from_a_tuple_annotation() -> None:
    def divmod_(a: int, b: int) -> tuple[int, int]:
        return divmod(a, b)

    pf = PythonPacketFunction(divmod_, ["q", "r"])
    assert pf.output_packet_schema == Schema({"q": int, "r": int})
    out = pf.call(Packet({"a": 7, "b": 2}))
    assert out is not None and out.as_dict() == {"q": 3, "r": 1}


def test_several_keys_need_a_matching_annotation_or_output_schema() -> None:
    def f(a: int) -> int:
        return a

    with pytest.raises(InputValidationError, match="tuple"):
        PythonPacketFunction(f, ["p", "q"])

    def g(a: int) -> tuple[int, int, int]:
        return a, a, a

    with pytest.raises(InputValidationError, match="tuple"):
        PythonPacketFunction(g, ["p", "q"])
    pf = PythonPacketFunction(f, ["p", "q"], output_schema={"p": int, "q": str})
    assert pf.output_packet_schema == Schema({"p": int, "q": str})
    pf = PythonPacketFunction(f, ["p", "q"], output_schema=[float, int])
    assert pf.output_packet_schema == Schema({"p": float, "q": int})


def test_unannotated_output_needs_output_schema() -> None:
    def f(a: int):  # type: ignore[no-untyped-def]
        return a

    with pytest.raises(InputValidationError, match="no type"):
        PythonPacketFunction(f, "z")
    assert PythonPacketFunction(f, "z", output_schema={"z": int}).output_packet_schema == {"z": int}


def test_return_none_annotation_with_keys_is_rejected() -> None:
    def f(a: int) -> None:
        return None

    with pytest.raises(InputValidationError, match="None"):
        PythonPacketFunction(f, "z")


def test_unsupported_types_fail_at_construction() -> None:
    def f(a: int) -> set[int]:
        return {a}

    with pytest.raises(SchemaError, match="output schema"):
        PythonPacketFunction(f, "z")

    def g(a: object) -> int:
        return 1

    with pytest.raises(SchemaError, match="input schema"):
        PythonPacketFunction(g, "z")


def test_single_key_wraps_the_whole_return_value_even_a_list() -> None:
    def f(a: int) -> list[int]:
        return [a, a]

    out = PythonPacketFunction(f, "pair").call(Packet({"a": 3}))
    assert out is not None and out["pair"] == [3, 3]


def test_several_keys_accept_a_dict_with_exactly_those_keys() -> None:
    def f(a: int) -> tuple[int, int]:
        return {"p": a, "q": -a}  # type: ignore[return-value]

    out = PythonPacketFunction(f, ["p", "q"]).call(Packet({"a": 3}))
    assert out is not None and out.as_dict() == {"p": 3, "q": -3}

    def g(a: int) -> tuple[int, int]:
        return {"p": a}  # type: ignore[return-value]

    with pytest.raises(PacketFunctionError, match=r"missing \['q'\]"):
        PythonPacketFunction(g, ["p", "q"]).call(Packet({"a": 3}))


def test_wrong_arity_is_an_error_naming_the_keys() -> None:
    def f(a: int) -> tuple[int, int]:
        return (a, a, a)  # type: ignore[return-value]

    with pytest.raises(PacketFunctionError, match=r"3 values for the 2 output keys \['p', 'q'\]"):
        PythonPacketFunction(f, ["p", "q"]).call(Packet({"a": 1}))

    def g(a: int) -> tuple[int, int]:
        return a  # type: ignore[return-value]

    with pytest.raises(PacketFunctionError, match="returned a int"):
        PythonPacketFunction(g, ["p", "q"]).call(Packet({"a": 1}))


@pytest.mark.parametrize(
    ("declared", "value"),
    [
        (int, "3"),
        (int, 2.5),
        (int, True),
        (str, 3),
        (float, "x"),
        (list[int], [1, "2"]),
        (dict[str, int], {"a": "b"}),
        (bool, 1),
        (dt.date, dt.datetime(2024, 1, 1)),
        (Path, 3),
        (Decimal, Decimal("0.1234567890123456789")),
    ],
)
def test_output_values_are_validated_against_the_schema(declared: Any, value: Any) -> None:
    def f(a: int) -> Any:
        return value

    pf = PythonPacketFunction(f, "out", output_schema={"out": declared})
    with pytest.raises(PacketFunctionError, match="output key 'out'"):
        pf.call(Packet({"a": 1}))


def test_wrong_type_in_second_key_names_that_key() -> None:
    def f(a: int) -> tuple[int, str]:
        return a, a  # type: ignore[return-value]

    with pytest.raises(PacketFunctionError, match="'label'.*expected str, got int"):
        PythonPacketFunction(f, ["n", "label"]).call(Packet({"a": 1}))


@pytest.mark.parametrize(
    ("declared", "value", "stored"),
    [
        (float, 3, 3.0),
        (int, np.int64(4), 4),
        (float, np.float32(0.5), 0.5),
        (list[float], (1, 2.5), [1.0, 2.5]),
        (Path, Path("a/b"), Path("a/b")),
        (int | None, None, None),
    ],
)
def test_compatible_values_are_normalised(declared: Any, value: Any, stored: Any) -> None:
    def f(a: int) -> tuple[Any, int]:
        return value, 0

    out = PythonPacketFunction(f, ["out", "k"], output_schema={"out": declared}).call(
        Packet({"a": 1})
    )
    assert out is not None
    assert out["out"] == stored and type(out["out"]) is type(stored)


def test_none_filters_the_packet_out() -> None:
    def keep_even(x: int) -> int | None:
        return x if x % 2 == 0 else None

    pf = PythonPacketFunction(keep_even, "x2")
    assert pf.call(Packet({"x": 3})) is None
    assert pf.call(Packet({"x": 4}))["x2"] == 4  # type: ignore[index]


def test_optional_parameter_uses_its_default_when_the_column_is_absent() -> None:
    pf = PythonPacketFunction(add, "sum")
    assert pf.call(Packet({"x": 1}))["sum"] == 2  # type: ignore[index]
    assert pf.call(Packet({"x": 1, "y": 5}))["sum"] == 6  # type: ignore[index]


def test_only_parameters_are_passed_extra_columns_ignored() -> None:
    pf = PythonPacketFunction(add, "sum")
    assert pf.call(Packet({"x": 1, "y": 2, "other": "ignored"}))["sum"] == 3  # type: ignore[index]


def test_missing_required_column_at_call_time() -> None:
    with pytest.raises(InputValidationError, match="'x'"):
        PythonPacketFunction(add, "sum").call(Packet({"y": 1}))


async def slow_square(x: int) -> int:
    await asyncio.sleep(0)
    return x * x


def test_async_function_through_every_entry_point() -> None:
    pf = PythonPacketFunction(slow_square, "sq")
    packet = Packet({"x": 3})
    assert pf.is_async
    assert pf.call(packet)["sq"] == 9  # type: ignore[index]
    assert asyncio.run(pf.async_call(packet))["sq"] == 9  # type: ignore[index]
    pf.executor = LocalExecutor()
    assert pf.call(packet)["sq"] == 9  # type: ignore[index]
    assert asyncio.run(pf.async_call(packet))["sq"] == 9  # type: ignore[index]


def test_sync_call_of_async_function_inside_a_running_loop() -> None:
    pf = PythonPacketFunction(slow_square, "sq")

    async def main() -> Any:
        return pf.call(Packet({"x": 4}))  # blocking call from inside the loop

    assert asyncio.run(main())["sq"] == 16


def test_sync_function_in_async_call_does_not_block_the_loop() -> None:
    import threading

    threads: list[str] = []

    def where(x: int) -> int:
        threads.append(threading.current_thread().name)
        return x

    pf = PythonPacketFunction(where, "y")

    async def main() -> Any:
        return await pf.async_call(Packet({"x": 1}))

    assert asyncio.run(main())["y"] == 1
    assert threads and threads[0] != threading.main_thread().name


def test_execute_callable_routing_with_local_executor_sync_and_async() -> None:
    for fn in (add, slow_square):
        pf = PythonPacketFunction(fn, "out", executor=LocalExecutor())
        expected = fn(3) if fn is add else 9  # type: ignore[operator]
        assert pf.call(Packet({"x": 3}))["out"] == expected  # type: ignore[index]
        assert asyncio.run(pf.async_call(Packet({"x": 3})))["out"] == expected  # type: ignore[index]


def test_user_exception_propagates_unchanged() -> None:
    class Boom(Exception):
        pass

    def fail(x: int) -> int:
        raise Boom(f"bad {x}")

    for executor in (None, LocalExecutor()):
        pf = PythonPacketFunction(fail, "y", executor=executor)
        with pytest.raises(Boom, match="bad 7"):
            pf.call(Packet({"x": 7}))


def test_logger_without_executor_still_captures_output() -> None:
    captured: list[Any] = []

    class Logger:
        def record(self, out: Any) -> None:
            captured.append(out)

    def noisy(x: int) -> int:
        print("hello", x)
        return x

    out = PythonPacketFunction(noisy, "y").call(Packet({"x": 2}), logger=Logger())
    assert out is not None and out["y"] == 2
    assert len(captured) == 1 and "hello 2" in captured[0].stdout


def test_source_info_is_deterministic_and_points_at_the_function() -> None:
    pf = PythonPacketFunction(add, "sum")
    a = pf.call(Packet({"x": 1, "y": 2}))
    b = PythonPacketFunction(add, "sum").call(Packet({"x": 1, "y": 2}))
    c = pf.call(Packet({"x": 2, "y": 2}))
    assert a is not None and b is not None and c is not None
    token = a.source_info()["sum"]
    uri, record_id, column = token.split("::")
    assert uri == ":".join(pf.uri)
    assert column == "sum"
    assert len(record_id) == 32 and int(record_id, 16) >= 0
    assert b.source_info() == a.source_info()  # recomputation reproduces provenance
    assert c.source_info()["sum"] != token  # another input, another record


def test_source_info_depends_on_code_and_executor() -> None:
    def add(x: int, y: int = 1) -> int:  # same name and schema, other code
        return y + x + 0

    packet = Packet({"x": 1, "y": 2})
    original = PythonPacketFunction(globals()["add"], "sum")
    edited = PythonPacketFunction(add, "sum")
    local = original.with_executor(LocalExecutor())
    tokens = {pf.call(packet).source_info()["sum"] for pf in (original, edited, local)}  # type: ignore[union-attr]
    assert len(tokens) == 3


def test_output_packet_content_hash_matches_a_freshly_built_packet() -> None:
    out = PythonPacketFunction(add, "sum").call(Packet({"x": 1, "y": 2}))
    assert out is not None
    assert out.content_hash() == Packet({"sum": 3}).content_hash()
    assert out.context_key == Packet({"x": 1}).context_key


def test_pickles_and_copies_with_standard_pickle() -> None:
    import copy
    import pickle

    pf = PythonPacketFunction(add, "sum", executor=LocalExecutor())
    for clone in (pickle.loads(pickle.dumps(pf)), copy.copy(pf), copy.deepcopy(pf)):
        assert clone.uri == pf.uri
        assert clone.call(Packet({"x": 2, "y": 3}))["sum"] == 5  # type: ignore[index]


def stamp(x: int) -> tuple[dt.datetime, Decimal, list[int]]:
    return dt.datetime(2024, 1, 1, x), Decimal(x), [x]


def test_a_function_with_any_output_types_pickles() -> None:
    import pickle

    pf = PythonPacketFunction(stamp, ["when", "amount", "items"])
    out = pickle.loads(pickle.dumps(pf)).call(Packet({"x": 2}))
    assert out is not None and out["amount"] == Decimal(2) and out["when"].hour == 2


# --- numpy arrays ---------------------------------------------------------------------


def test_array_annotations_give_array_schemas() -> None:
    def features(
        image: Annotated[NDArray[np.uint8], Shape(None, None, 3)], raw: np.ndarray
    ) -> tuple[Annotated[NDArray[np.float32], Shape(2)], NDArray[np.int64]]:
        return np.zeros(2, np.float32), np.zeros(1, np.int64)

    pf = PythonPacketFunction(features, ["feat", "idx"])
    assert pf.input_packet_schema == Schema(
        {"image": ArrayType("uint8", (None, None, 3)), "raw": ArrayType()}
    )
    assert pf.output_packet_schema == Schema(
        {"feat": ArrayType("float32", (2,)), "idx": ArrayType("int64")}
    )
    out = pf.call(Packet({"image": np.zeros((2, 2, 3), np.uint8), "raw": np.zeros(1)}))
    assert out is not None and out["feat"].dtype == np.float32


def test_an_array_output_needs_a_dtype() -> None:
    def f(x: int) -> np.ndarray:
        return np.zeros(x)

    with pytest.raises(SchemaError, match=r"output schema of 'f'.*no dtype.*NDArray"):
        PythonPacketFunction(f, "out")


def test_a_returned_array_of_the_wrong_dtype_or_shape_names_the_key() -> None:
    def f(n: int) -> Annotated[NDArray[np.float32], Shape(3)]:
        return np.zeros(n, np.float32 if n == 3 else np.float64)

    pf = PythonPacketFunction(f, "v")
    assert pf.call(Packet({"n": 3}))["v"].shape == (3,)  # type: ignore[index]
    with pytest.raises(PacketFunctionError, match=r"'v'.*dtype float64 instead of float32"):
        pf.call(Packet({"n": 4}))


class Increment:
    def __init__(self, step: int) -> None:
        self.step = step

    def __call__(self, x: int) -> int:
        return x + self.step


def test_a_callable_object_is_refused_with_how_to_write_it() -> None:
    with pytest.raises(InputValidationError, match=r"instance of Increment\) cannot be .*def f"):
        PythonPacketFunction(Increment(1), "y")


def test_values_call_runs_through_an_executor_subclass_and_awaits_async_results() -> None:
    """The sequential local executor's calls are made directly; a subclass that runs calls
    its own way is still asked, and an awaitable result is awaited either way."""

    class Counting(LocalExecutor):
        calls = 0

        def execute_callable(
            self, fn: Any, kwargs: Any, executor_options: Any = None, *, logger: Any = None
        ) -> Any:
            Counting.calls += 1
            return super().execute_callable(fn, kwargs, executor_options, logger=logger)

    def plus_one(x: int) -> int:
        return x + 1

    pf = PythonPacketFunction(plus_one, "y")
    pf.set_executor(Counting())
    call = pf.values_call()
    assert [call(Packet({"x": x})) for x in (1, 2)] == [{"y": 2}, {"y": 3}]
    assert Counting.calls == 2

    async def later(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    apf = PythonPacketFunction(later, "y")
    apf.set_executor(LocalExecutor())
    assert apf.values_call()(Packet({"x": 4})) == {"y": 8}

    def text(x: int) -> Any:
        return "text"

    bad = PythonPacketFunction(text, "y", output_schema={"y": int})
    bad.set_executor(LocalExecutor())
    with pytest.raises(PacketFunctionError, match="bad value for output key 'y'"):
        bad.values_call()(Packet({"x": 1}))


class Grade(enum.StrEnum):
    GOOD = "good"


@function_pod(["when", "price", "grade", "spots"])
def measure(h: int) -> tuple[dt.datetime, Decimal, str, NDArray[np.float64]]:
    when = dt.datetime(2024, 1, 1, h, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin"))
    return when, Decimal("0.5"), Grade.GOOD, np.ones(2)


@function_pod("report")
def describe(when: dt.datetime, price: Decimal, grade: str, spots: np.ndarray) -> str:
    return f"{when.hour} {when.tzinfo} {price} {type(grade).__name__} {spots.flags.writeable}"


def test_a_downstream_function_sees_the_stored_values_standalone_and_in_a_pipeline(
    tmp_path: Path,
) -> None:
    source = DictSource([{"id": "a", "h": 12}], tag_columns=["id"], source_id="s")
    standalone = describe.pod(measure.pod(source)).as_table().to_pylist()
    with Pipeline("chain", DeltaTableDatabase(tmp_path / "store")) as pipeline:
        describe.pod(measure.pod(source))
    pipeline.run()
    expected = [{"id": "a", "report": "11 UTC 0.500000000000000000 str False"}]
    assert standalone == pipeline.describe.as_table().to_pylist() == expected
