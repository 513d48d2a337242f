"""FunctionPod: input validation at application time, invocation recording (cached pods
included), several inputs joined, identity, per-node executor copies, per-row entry points."""

from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd
import polars as pl
import pytest

from orcapod.data import Packet, Tag
from orcapod.databases import InMemoryArrowDatabase
from orcapod.errors import InputValidationError, PacketFunctionError
from orcapod.executors import LocalExecutor
from orcapod.functions import (
    CachedFunctionPod,
    FunctionPod,
    FunctionPodStream,
    PythonPacketFunction,
)
from orcapod.sources import DictSource
from orcapod.streams.tracking import Invocation, InvocationKind, no_tracking, recording


class Recorder:
    def __init__(self) -> None:
        self.invocations: list[Invocation] = []

    def record(self, invocation: Invocation) -> None:
        self.invocations.append(invocation)


def add(x: int, y: int) -> int:
    return x + y


def scale(x: float, factor: float = 2.0) -> float:
    return x * factor


def pod_of(fn: Any, keys: Any = "out", **kwargs: Any) -> FunctionPod:
    return FunctionPod(PythonPacketFunction(fn, keys, **kwargs))


def test_applying_returns_a_lazy_stream_with_the_right_schema(source: DictSource) -> None:
    stream = pod_of(add)(source)
    assert isinstance(stream, FunctionPodStream)
    tag_schema, packet_schema = stream.output_schema()
    assert dict(tag_schema) == {"id": int}
    assert dict(packet_schema) == {"out": int}
    assert stream.keys() == (("id",), ("out",))
    assert [(t["id"], p["out"]) for t, p in stream] == [(i, 11 * i) for i in range(5)]


def test_missing_packet_column_names_the_column(source: DictSource) -> None:
    def needs_z(z: int) -> int:
        return z

    with pytest.raises(InputValidationError, match="'z'") as info:
        pod_of(needs_z)(source)
    assert "packet columns: ['x', 'y']" in str(info.value)


def test_a_tag_column_is_not_a_packet_column(source: DictSource) -> None:
    def needs_id(id: int) -> int:
        return id

    with pytest.raises(InputValidationError, match="'id' is a tag column"):
        pod_of(needs_id)(source)


def test_incompatible_type_names_the_column() -> None:
    strings = DictSource([{"id": 1, "x": "a", "y": 2}], tag_columns=["id"])
    with pytest.raises(InputValidationError, match="'x' has type str.*expects int"):
        pod_of(add)(strings)


def test_nullable_column_cannot_feed_a_non_optional_parameter() -> None:
    nulls = DictSource(
        [{"id": 1, "x": 1, "y": None}, {"id": 2, "x": 2, "y": 3}], tag_columns=["id"]
    )
    with pytest.raises(InputValidationError, match="'y' has type int \\| None"):
        pod_of(add)(nulls)

    def tolerant(x: int, y: int | None) -> int:
        return x + (y or 0)

    assert [p["out"] for _, p in pod_of(tolerant)(nulls)] == [1, 5]


def test_int_column_feeds_a_float_parameter_and_defaults_apply(source: DictSource) -> None:
    out = [p["out"] for _, p in pod_of(scale)(source)]
    assert out == [2.0 * i for i in range(5)]


def test_extra_packet_columns_are_ignored(source: DictSource) -> None:
    def only_x(x: int) -> int:
        return -x

    assert [p["out"] for _, p in pod_of(only_x)(source)] == [0, -1, -2, -3, -4]


def test_no_input_stream_is_an_error() -> None:
    with pytest.raises(InputValidationError, match="at least one input stream"):
        pod_of(add)()


def test_every_application_is_recorded_cached_pods_included(source: DictSource) -> None:
    pod = pod_of(add)
    cached = CachedFunctionPod(pod, InMemoryArrowDatabase())
    recorder = Recorder()
    with recording(recorder):
        first = pod(source, label="first")
        second = cached.process(source)
        with no_tracking():
            pod(source)
    kinds = [(i.kind, i.pod, i.inputs, i.output, i.label) for i in recorder.invocations]
    assert kinds == [
        (InvocationKind.FUNCTION_POD, pod, (source,), first, "first"),
        (InvocationKind.FUNCTION_POD, cached, (source,), second, None),
    ]


def test_output_schema_does_not_record(source: DictSource) -> None:
    recorder = Recorder()
    with recording(recorder):
        schemas = pod_of(add).output_schema(source)
    assert recorder.invocations == []
    assert dict(schemas[1]) == {"out": int}


def test_several_inputs_are_joined_first() -> None:
    xs = DictSource([{"id": i, "x": i} for i in range(4)], tag_columns=["id"])
    ys = DictSource([{"id": i, "y": 100 * i} for i in (3, 1, 2)], tag_columns=["id"])
    recorder = Recorder()
    with recording(recorder):
        stream = pod_of(add)(xs, ys)
    rows = sorted((t["id"], p["out"]) for t, p in stream)
    assert rows == [(1, 101), (2, 202), (3, 303)]
    assert [i.kind for i in recorder.invocations] == [
        InvocationKind.OPERATOR,
        InvocationKind.FUNCTION_POD,
    ]
    joined = recorder.invocations[0].output
    assert recorder.invocations[1].inputs == (joined,)
    # the join keeps provenance of both inputs
    tag_keys, _ = stream.keys(columns={"system_tags": True})
    assert len([k for k in tag_keys if k.startswith("_tag_source_id")]) == 2


def test_stream_identity(make_source: Any) -> None:
    pod = pod_of(add)
    a, b = make_source(5), make_source(6)
    assert pod(a).content_hash() == pod(a).content_hash()
    assert pod(a).content_hash() != pod(b).content_hash()
    assert pod(a).pipeline_hash() == pod(b).pipeline_hash()  # same schemas, other data
    other = pod_of(add, "total")
    assert other(a).pipeline_hash() != pod(a).pipeline_hash()
    assert pod(a).content_hash() == pod.output_content_hash(a)
    assert pod(a).pipeline_hash() == pod.output_pipeline_hash(a)


def test_code_edit_changes_content_not_pipeline_hash(source: DictSource) -> None:
    def add(x: int, y: int) -> int:
        return y + x

    original, edited = pod_of(globals()["add"]), pod_of(add)
    assert original(source).pipeline_hash() == edited(source).pipeline_hash()
    assert original(source).content_hash() != edited(source).content_hash()


def test_per_node_executor_copies_leave_the_users_pod_untouched() -> None:
    base = LocalExecutor()
    pod = FunctionPod(PythonPacketFunction(add, "out", executor=base))
    node_a = pod.with_executor(base.with_options(max_workers=2))
    node_b = pod.with_executor(base.with_options(max_workers=3))
    assert pod.executor is base
    assert node_a.executor == LocalExecutor(max_workers=2)
    assert node_b.executor == LocalExecutor(max_workers=3)
    assert node_a.packet_function is not pod.packet_function
    assert node_a.content_hash() == pod.content_hash()
    node_a.executor = LocalExecutor(max_workers=5)
    assert pod.executor is base and node_b.executor == LocalExecutor(max_workers=3)


def test_with_options_is_a_new_executor_value() -> None:
    base = LocalExecutor()
    assert base.with_options() is not base
    assert base.with_options() == base
    assert base.with_options(max_workers=2) != base


def test_cached_pod_with_executor_shares_the_cache(source: DictSource) -> None:
    db = InMemoryArrowDatabase()
    cached = CachedFunctionPod(pod_of(add), db)
    copy = cached.with_executor(LocalExecutor())
    assert isinstance(copy, CachedFunctionPod)
    assert cached.executor is None and copy.executor == LocalExecutor()
    assert copy.result_cache is cached.result_cache
    assert copy.function_pod.executor == LocalExecutor()


def test_pod_executor_property_sets_the_functions_executor() -> None:
    pod = pod_of(add)
    pod.executor = LocalExecutor()
    assert pod.packet_function.executor == LocalExecutor()


def test_process_packet_and_async_process_packet() -> None:
    pod = pod_of(add)
    tag = Tag({"id": 1})
    assert pod.process_packet(tag, Packet({"x": 1, "y": 2}))[1]["out"] == 3  # type: ignore[index]
    t, out = asyncio.run(pod.async_process_packet(tag, Packet({"x": 2, "y": 2})))
    assert t is tag and out is not None and out["out"] == 4


def test_iter_process_outcomes_in_order_with_exceptions_returned() -> None:
    def fragile(x: int) -> int:
        if x == 2:
            raise ValueError("two")
        return x

    pod = pod_of(fragile)
    rows = [(Tag({"id": i}), Packet({"x": i})) for i in range(4)]
    outcomes = list(pod.iter_process(rows, return_exceptions=True))
    assert [t["id"] for t, _ in outcomes] == [0, 1, 2, 3]
    assert isinstance(outcomes[2][1], ValueError)
    assert [o["out"] for _, o in outcomes if isinstance(o, Packet)] == [0, 1, 3]
    with pytest.raises(ValueError, match="two"):
        list(pod.iter_process(rows))


def test_iter_process_concurrent_keeps_order_and_returns_exceptions() -> None:
    import time

    def slow(x: int) -> int:
        time.sleep(0.01 * (5 - x))
        if x == 1:
            raise KeyError("one")
        return x

    pod = FunctionPod(PythonPacketFunction(slow, "out", executor=LocalExecutor(max_workers=4)))
    assert pod.concurrency_window() >= 2  # twice the CPU count by default
    assert pod.concurrency_window(3) == 3
    rows = [(Tag({"id": i}), Packet({"x": i})) for i in range(5)]
    outcomes = list(pod.iter_process(rows, max_concurrency=3, return_exceptions=True))
    assert [t["id"] for t, _ in outcomes] == [0, 1, 2, 3, 4]
    assert isinstance(outcomes[1][1], KeyError)


def test_bad_return_value_surfaces_when_rows_are_read(source: DictSource) -> None:
    def wrong(x: int) -> int:
        return "nope"  # type: ignore[return-value]

    stream = pod_of(wrong)(source)  # applying validates inputs only
    with pytest.raises(PacketFunctionError, match="output key 'out'"):
        list(stream)


def test_max_concurrency_must_be_positive() -> None:
    with pytest.raises(InputValidationError, match="max_concurrency"):
        FunctionPod(PythonPacketFunction(add, "out"), max_concurrency=0)
    with pytest.raises(InputValidationError, match="packet function"):
        FunctionPod(add)  # type: ignore[arg-type]


def test_pods_tell_a_batching_executor_when_the_last_row_has_started(
    hinted_executor: Any,
) -> None:
    """Plain and cached pods say ``no_more_calls`` once every row is submitted, before the
    last outcomes are collected, so an executor holding calls back can finish them at once."""

    def times_ten(x: int) -> int:
        return x * 10

    rows = [(Tag({"id": i}), Packet({"x": i})) for i in range(5)]
    plain = pod_of(times_ten, executor=hinted_executor(2))
    cached = CachedFunctionPod(
        pod_of(times_ten, executor=hinted_executor(2)), InMemoryArrowDatabase()
    )
    for pod in (plain, cached):
        outcomes = list(pod.iter_process(rows, max_concurrency=2))
        assert [o["out"] for _, o in outcomes] == [0, 10, 20, 30, 40]  # type: ignore[index]
        log = pod.executor.log
        assert log.count("no more calls") == 1
        assert log.index("no more calls") == log.index("submit 4") + 1


def test_an_output_named_like_a_tag_column_is_rejected_at_application(
    source: DictSource,
) -> None:
    def relabel(x: int) -> int:
        return -x

    with pytest.raises(InputValidationError, match=r"outputs \['id'\], which are tag columns"):
        pod_of(relabel, "id")(source)
    with pytest.raises(InputValidationError, match="map_tags"):
        pod_of(relabel, "id")(source.join(source.map_packets({"x": "z", "y": "w"})))
    renamed = source.map_tags({"id": "key"})
    assert pod_of(relabel, "id")(renamed).keys() == (("key",), ("id",))


@pytest.mark.parametrize("kind", ["pandas", "polars"])
def test_a_dataframe_input_points_to_dataframe_source(kind: str) -> None:
    rows = {"id": [1, 2], "x": [3, 4], "y": [5, 6]}
    frame = pd.DataFrame(rows) if kind == "pandas" else pl.DataFrame(rows)
    with pytest.raises(InputValidationError, match=rf"{kind} DataFrame.*DataFrameSource\(df"):
        pod_of(add)(frame)
    with pytest.raises(InputValidationError, match="input 1 is a dict.*DictSource"):
        pod_of(add)(DictSource([rows], tag_columns=[]), {"id": 1})
