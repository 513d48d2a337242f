"""The @function_pod decorator and the package's public surface."""

from __future__ import annotations

import asyncio
import functools
import inspect
from typing import Any

import pytest

import orcapod.functions as functions
from orcapod.databases import InMemoryArrowDatabase
from orcapod.errors import InputValidationError
from orcapod.executors import LocalExecutor
from orcapod.functions import (
    CachedFunctionPod,
    CachedPacketFunction,
    FunctionPod,
    PythonPacketFunction,
    function_pod,
)
from orcapod.types import CacheMatch


def test_public_surface_is_exactly_these_names_sorted() -> None:
    assert functions.__all__ == [
        "CachedFunctionPod",
        "CachedPacketFunction",
        "FunctionPod",
        "FunctionPodStream",
        "PacketFunctionBase",
        "PacketFunctionWrapper",
        "PythonPacketFunction",
        "ResultCache",
        "function_pod",
    ]


def test_decorated_function_stays_a_plain_function_with_a_pod(make_source: Any) -> None:
    @function_pod("bmi")
    def compute_bmi(weight: float, height: float) -> float:
        """Body mass index."""
        return weight / height**2

    assert compute_bmi(81.0, 3.0) == 9.0
    assert compute_bmi.__name__ == "compute_bmi"
    assert compute_bmi.__doc__ == "Body mass index."
    pod = compute_bmi.pod  # type: ignore[attr-defined]
    assert type(pod) is FunctionPod
    pf = pod.packet_function
    assert isinstance(pf, PythonPacketFunction)
    assert pf.canonical_function_name == "compute_bmi"
    assert pf.uri[2] == "v0"


def test_decorator_options_reach_the_function_and_pod(make_source: Any) -> None:
    executor = LocalExecutor()

    @function_pod(
        ["a", "b"], function_name="split", version="v3.1", label="splitter", executor=executor
    )
    def f(x: int) -> tuple[int, int]:
        return x, -x

    pod = f.pod  # type: ignore[attr-defined]
    assert pod.packet_function.canonical_function_name == "split"
    assert pod.packet_function.major_version == 3
    assert pod.computed_label() == "splitter"
    assert pod.executor is executor
    rows = [(p["a"], p["b"]) for _, p in pod(make_source(3))]
    assert rows == [(0, 0), (1, -1), (2, -2)]


def test_result_database_caches_the_packet_function(make_source: Any, calls: Any) -> None:
    db = InMemoryArrowDatabase()

    @function_pod("y", result_database=db, cache_match=CacheMatch.VERSION)
    def square(x: int) -> int:
        calls.add(x)
        return x * x

    pf = square.pod.packet_function  # type: ignore[attr-defined]
    assert isinstance(pf, CachedPacketFunction)
    assert pf.cache_match is CacheMatch.VERSION
    assert pf.record_path == pf.uri
    list(square.pod(make_source(3)))  # type: ignore[attr-defined]
    list(square.pod(make_source(3)))  # type: ignore[attr-defined]
    assert sorted(calls.args) == [0, 1, 2]
    assert square(4) == 16  # the plain call bypasses every cache
    assert sorted(calls.args) == [0, 1, 2, 4]


def test_pod_cache_database_caches_the_pod(make_source: Any, calls: Any) -> None:
    db = InMemoryArrowDatabase()

    @function_pod("y", pod_cache_database=db)
    def square(x: int) -> int:
        calls.add(x)
        return x * x

    pod = square.pod  # type: ignore[attr-defined]
    assert isinstance(pod, CachedFunctionPod)
    assert pod.cache_match is CacheMatch.CODE
    assert [p.get_meta_value("__computed") for _, p in pod(make_source(2))] == [True, True]
    assert [p.get_meta_value("__computed") for _, p in pod(make_source(2))] == [False, False]
    assert sorted(calls.args) == [0, 1]


def test_async_function_stays_a_coroutine_function(make_source: Any) -> None:
    @function_pod("y")
    async def slow(x: int) -> int:
        await asyncio.sleep(0)
        return x + 100

    assert inspect.iscoroutinefunction(slow)
    assert asyncio.run(slow(1)) == 101
    assert [p["y"] for _, p in slow.pod(make_source(3))] == [100, 101, 102]  # type: ignore[attr-defined]


def test_input_and_output_schema_are_accepted(make_source: Any) -> None:
    @function_pod("total", input_schema={"x": int, "y": int}, output_schema={"total": int})
    def plus(x, y):  # type: ignore[no-untyped-def]
        return x + y

    pf = plus.pod.packet_function  # type: ignore[attr-defined]
    assert dict(pf.input_packet_schema) == {"x": int, "y": int}
    assert dict(pf.output_packet_schema) == {"total": int}
    assert [p["total"] for _, p in plus.pod(make_source(3))] == [0, 11, 22]  # type: ignore[attr-defined]


def test_the_missing_annotation_hint_names_an_accepted_keyword() -> None:
    def untyped(x):  # type: ignore[no-untyped-def]
        return x

    with pytest.raises(InputValidationError, match=r"input_schema=\{'x': \.\.\.\}"):
        function_pod("out")(untyped)
    assert "input_schema" in inspect.signature(function_pod).parameters


@pytest.mark.parametrize("keys", ["mean,std", "mean, std", "mean std"])
def test_several_names_in_one_string_ask_for_a_list(keys: str) -> None:
    def stats(x: float) -> tuple[float, float]:
        return x, x

    with pytest.raises(
        InputValidationError, match=r"pass a list of names instead: \['mean', 'std'\]"
    ):
        function_pod(keys)(stats)
    assert function_pod(["mean", "std"])(stats).pod.output_packet_schema == {  # type: ignore[attr-defined]
        "mean": float,
        "std": float,
    }


def test_a_partial_needs_a_name_and_reads_its_functions_annotations(make_source: Any) -> None:
    def weighted(x: int, y: int, w: int) -> int:
        return w * x + y

    with pytest.raises(InputValidationError, match="functools.partial.*function_name="):
        function_pod("out")(functools.partial(weighted, w=2))
    triple = function_pod("out", function_name="triple")(functools.partial(weighted, w=3))
    pod = triple.pod  # type: ignore[attr-defined]
    assert dict(pod.input_packet_schema) == {"x": int, "y": int, "w": int}
    assert [p["out"] for _, p in pod(make_source(3))] == [0, 13, 26]
    double = function_pod("out", function_name="triple")(functools.partial(weighted, w=2))
    assert double.pod.content_hash() != pod.content_hash()  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["bogus", "VERSION", 3])
def test_an_unknown_cache_match_lists_the_tiers(value: Any) -> None:
    for databases in ({}, {"result_database": InMemoryArrowDatabase()}):
        with pytest.raises(InputValidationError, match="'version', 'code', 'strict'"):
            function_pod("y", cache_match=value, **databases)


def test_cache_match_without_a_cache_is_refused_naming_the_databases() -> None:
    with pytest.raises(
        InputValidationError, match="result_database= or pod_cache_database=.*CacheMatch.CODE"
    ):
        function_pod("y", cache_match=CacheMatch.VERSION)


def test_cache_match_given_as_a_string_reaches_the_pod_cache() -> None:
    @function_pod("y", pod_cache_database=InMemoryArrowDatabase(), cache_match="version")
    def square(x: int) -> int:
        return x * x

    assert square.pod.cache_match is CacheMatch.VERSION  # type: ignore[attr-defined]
