"""FunctionPodStream: lazy, cached by position, correct under partial iteration,
re-iteration, interleaved iterators and exceptions (from the function or the upstream);
bounded concurrent dispatch yielded in input order; as_table views."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from orcapod.data import Packet, Tag
from orcapod.databases import InMemoryArrowDatabase
from orcapod.executors import LocalExecutor
from orcapod.functions import CachedFunctionPod, FunctionPod, PythonPacketFunction
from orcapod.sources import DictSource
from orcapod.streams import StreamBase
from orcapod.streams.base import ColumnsArg
from orcapod.types import ContentHash, Schema


def counting_pod(calls: Any, *, sleep: float = 0.0, fail: Any = None, **kw: Any) -> FunctionPod:
    def inc(x: int) -> int | None:
        calls.add(x)
        if sleep:
            time.sleep(sleep)
        if fail is not None and fail(x):
            raise RuntimeError(f"failed on {x}")
        return None if x % 3 == 2 and kw.get("filter") else x + 1

    return FunctionPod(PythonPacketFunction(inc, "z", executor=kw.get("executor")))


def ids(rows: Any) -> list[int]:
    return [t["id"] for t, _ in rows]


def test_nothing_is_computed_until_rows_are_read(calls: Any, make_source: Any) -> None:
    stream = counting_pod(calls, sleep=0.001)(make_source(5))
    assert len(calls) == 0
    it = iter(stream)
    next(it)
    assert len(calls) == 1  # a slow function computes one row per read
    assert stream.keys() == (("id",), ("z",))
    assert len(calls) == 1  # schema questions compute nothing


def test_partial_iteration_then_reiteration(calls: Any, make_source: Any) -> None:
    stream = counting_pod(calls, sleep=0.001)(make_source(5))
    for i, (_tag, _packet) in enumerate(stream):
        if i == 1:
            break
    assert calls.args == [0, 1]
    rows = list(stream)
    assert [(t["id"], p["z"]) for t, p in rows] == [(i, i + 1) for i in range(5)]
    assert list(stream) == rows
    assert calls.args == [0, 1, 2, 3, 4]  # every row computed exactly once


def test_interleaved_iterators_share_results(calls: Any, make_source: Any) -> None:
    stream = counting_pod(calls)(make_source(6))
    a, b = iter(stream), iter(stream)
    got_a = [next(a)[0]["id"], next(a)[0]["id"]]
    got_b = [next(b)[0]["id"] for _ in range(4)]
    got_a += [t["id"] for t, _ in a]
    got_b += [t["id"] for t, _ in b]
    assert got_a == got_b == list(range(6))
    assert sorted(calls.args) == list(range(6))


def test_concurrent_readers_from_threads(calls: Any, make_source: Any) -> None:
    stream = counting_pod(calls)(make_source(200))
    results: list[list[int]] = []

    def read() -> None:
        results.append(ids(stream))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [list(range(200))] * 4
    assert sorted(calls.args) == list(range(200))


def test_transient_failure_is_retried_on_reiteration(calls: Any, make_source: Any) -> None:
    failed: list[int] = []

    def once_on_two(x: int) -> bool:
        if x == 2 and not failed:
            failed.append(x)
            return True
        return False

    stream = counting_pod(calls, fail=once_on_two)(make_source(5))
    seen: list[int] = []
    with pytest.raises(RuntimeError, match="failed on 2"):
        for tag, _ in stream:
            seen.append(tag["id"])
    assert seen == [0, 1]  # rows before the failure are delivered first
    rows = list(stream)
    assert [(t["id"], p["z"]) for t, p in rows] == [(i, i + 1) for i in range(5)]
    assert sorted(calls.args) == [0, 1, 2, 2, 3, 4]  # only the failed row ran twice


def test_deterministic_failure_reraises_and_never_misassigns(calls: Any, make_source: Any) -> None:
    stream = counting_pod(calls, fail=lambda x: x == 3)(make_source(6))
    for _ in range(2):
        seen: list[tuple[int, int]] = []
        with pytest.raises(RuntimeError, match="failed on 3"):
            for tag, packet in stream:
                seen.append((tag["id"], packet["z"]))
        assert seen == [(0, 1), (1, 2), (2, 3)]
    assert sorted(calls.args) == [0, 1, 2, 3, 3]


def test_failure_after_partial_iteration_in_a_fresh_iterator(calls: Any, make_source: Any) -> None:
    stream = counting_pod(calls, fail=lambda x: x == 4)(make_source(6))
    it = iter(stream)
    assert [next(it)[0]["id"] for _ in range(2)] == [0, 1]
    again = iter(stream)
    assert [next(again)[0]["id"] for _ in range(4)] == [0, 1, 2, 3]
    with pytest.raises(RuntimeError):
        next(again)
    assert [next(it)[0]["id"] for _ in range(2)] == [2, 3]


class FlakyStream(StreamBase):
    """Wraps a stream; its first iteration raises after ``fail_after`` rows."""

    def __init__(self, inner: Any, fail_after: int) -> None:
        self.inner = inner
        self.fail_after = fail_after
        self.iterations = 0

    def keys(self, columns: ColumnsArg = None, all_info: bool = False) -> Any:
        return self.inner.keys(columns, all_info)

    def output_schema(self, columns: ColumnsArg = None, all_info: bool = False) -> Any:
        return self.inner.output_schema(columns, all_info)

    def iter_packets(self) -> Iterator[tuple[Tag, Packet]]:
        self.iterations += 1
        for i, row in enumerate(self.inner.iter_packets()):
            if self.iterations == 1 and i == self.fail_after:
                raise OSError("upstream hiccup")
            yield row

    def as_table(self, columns: ColumnsArg = None, all_info: bool = False) -> pa.Table:
        return self.inner.as_table(columns, all_info)

    def content_hash(self) -> ContentHash:
        return self.inner.content_hash()

    def pipeline_hash(self) -> ContentHash:
        return self.inner.pipeline_hash()


def test_upstream_failure_loses_and_repeats_no_rows(calls: Any) -> None:
    # the packet is exactly what the function reads, so rows are pulled from the upstream
    # one by one (a wider packet is first projected, which reads the upstream as a table)
    source = DictSource([{"id": i, "x": i} for i in range(5)], tag_columns=["id"])
    upstream = FlakyStream(source, fail_after=3)
    stream = counting_pod(calls)(upstream)
    with pytest.raises(OSError, match="hiccup"):
        list(stream)
    assert ids(stream) == [0, 1, 2, 3, 4]
    assert sorted(calls.args) == [0, 1, 2, 3, 4]


def test_filtered_rows_are_skipped_consistently(calls: Any, make_source: Any) -> None:
    stream = counting_pod(calls, filter=True)(make_source(7))
    assert ids(stream) == [0, 1, 3, 4, 6]
    assert ids(stream) == [0, 1, 3, 4, 6]
    assert stream.as_table().column("id").to_pylist() == [0, 1, 3, 4, 6]
    assert len(calls) == 7


def test_all_rows_filtered_gives_an_empty_table_with_the_schema(
    calls: Any, make_source: Any
) -> None:
    def never(x: int) -> int | None:
        return None

    stream = FunctionPod(PythonPacketFunction(never, "z"))(make_source(3))
    assert list(stream) == []
    table = stream.as_table(all_info=True)
    assert table.num_rows == 0
    assert table.schema.field("z").type == pa.int64()
    assert "_source_z" in table.column_names


def test_concurrent_executor_bounded_window_in_input_order(make_source: Any) -> None:
    lock = threading.Lock()
    state = {"running": 0, "peak": 0}

    def jittery(x: int) -> int:
        with lock:
            state["running"] += 1
            state["peak"] = max(state["peak"], state["running"])
        time.sleep(0.002 * ((7 * x) % 5))
        with lock:
            state["running"] -= 1
        return x * 10

    pf = PythonPacketFunction(jittery, "z", executor=LocalExecutor(max_workers=8))
    pod = FunctionPod(pf, max_concurrency=3)
    rows = list(pod(make_source(30)))
    assert [(t["id"], p["z"]) for t, p in rows] == [(i, 10 * i) for i in range(30)]
    assert 2 <= state["peak"] <= 3


def test_concurrent_failure_keeps_earlier_rows_and_retries(calls: Any, make_source: Any) -> None:
    failed: list[int] = []

    def once_on_five(x: int) -> bool:
        if x == 5 and not failed:
            failed.append(x)
            return True
        return False

    pod = counting_pod(calls, fail=once_on_five, sleep=0.001, executor=LocalExecutor(max_workers=4))
    stream = pod(make_source(12))
    seen: list[int] = []
    with pytest.raises(RuntimeError, match="failed on 5"):
        for tag, _ in stream:
            seen.append(tag["id"])
    assert seen == [0, 1, 2, 3, 4]
    assert ids(stream) == list(range(12))
    assert {x for x in calls.args} == set(range(12))


def test_as_table_default_hides_hidden_columns(make_source: Any) -> None:
    ident = PythonPacketFunction(
        lambda x: x, "z", function_name="ident", input_schema={"x": int}, output_schema=[int]
    )
    pod = FunctionPod(ident)
    stream = pod(make_source(3))
    table = stream.as_table()
    assert table.column_names == ["id", "z"]
    assert table.to_pylist() == [{"id": i, "z": i} for i in range(3)]


def test_as_table_all_info_matches_iteration(make_source: Any) -> None:
    def inc(x: int) -> int:
        return x + 1

    stream = FunctionPod(PythonPacketFunction(inc, "z"))(make_source(4))
    rows = list(stream)
    table = stream.as_table(all_info=True)
    tag_keys, packet_keys = stream.keys(all_info=True)
    assert table.column_names == [*tag_keys, *packet_keys]
    assert table.column("_source_z").to_pylist() == [p.source_info()["z"] for _, p in rows]
    assert table.column("_content_hash").to_pylist() == [
        p.content_hash().to_string() for _, p in rows
    ]
    assert table.column("_context_key").to_pylist() == [p.context_key for _, p in rows]
    sys_cols = [k for k in tag_keys if k.startswith("_tag_")]
    assert len(sys_cols) == 2
    assert table.column(sys_cols[1]).to_pylist() == [f"row_{i}" for i in range(4)]
    schema_tags, schema_packets = stream.output_schema(all_info=True)
    assert list(schema_tags) == list(tag_keys) and list(schema_packets) == list(packet_keys)


def test_as_table_source_info_is_resolved_in_bulk_and_equals_per_packet(make_source: Any) -> None:
    def inc(x: int) -> int:
        return x + 1

    pod = FunctionPod(PythonPacketFunction(inc, "z"))
    bulk = pod(make_source(50)).as_table(columns={"source": True})
    one_by_one = [p.source_info()["z"] for _, p in pod(make_source(50))]
    assert bulk.column("_source_z").to_pylist() == one_by_one


def test_as_table_with_mixed_cache_hits_and_meta(make_source: Any) -> None:
    def inc(x: int) -> int:
        return x + 1

    cached = CachedFunctionPod(FunctionPod(PythonPacketFunction(inc, "z")), InMemoryArrowDatabase())
    list(cached(make_source(3)))  # rows 0..2 stored
    stream = cached(make_source(6))
    table = stream.as_table(all_info=True)
    assert table.column("__computed").to_pylist() == [False] * 3 + [True] * 3
    assert table.column("z").to_pylist() == [1, 2, 3, 4, 5, 6]
    assert table.schema.field("__pod_ts").type == pa.timestamp("us", tz="UTC")
    assert "__computed" not in stream.as_table().column_names
    only_computed = stream.as_table(columns={"meta": ["computed"]})
    assert only_computed.column_names == ["id", "z", "__computed"]


def test_as_table_sort_by_tags(make_source: Any) -> None:
    source = DictSource([{"id": i, "x": i} for i in (3, 1, 2)], tag_columns=["id"])

    def neg(x: int) -> int:
        return -x

    stream = FunctionPod(PythonPacketFunction(neg, "z"))(source)
    assert stream.as_table().column("id").to_pylist() == [3, 1, 2]
    assert stream.as_table(columns={"sort_by_tags": True}).column("id").to_pylist() == [1, 2, 3]


def test_output_schema_with_hidden_columns(make_source: Any) -> None:
    def inc(x: int) -> int:
        return x + 1

    stream = FunctionPod(PythonPacketFunction(inc, "z"))(make_source(2))
    _, packets = stream.output_schema(columns={"source": True, "context": True})
    assert packets == Schema({"z": int, "_source_z": str, "_context_key": str})


def test_clear_cache_recomputes(calls: Any, make_source: Any) -> None:
    stream = counting_pod(calls)(make_source(3))
    list(stream)
    stream.clear_cache()
    assert ids(stream) == [0, 1, 2]
    assert len(calls) == 6


def test_pod_stream_as_input_of_another_pod(make_source: Any) -> None:
    def inc(x: int) -> int:
        return x + 1

    def double(z: int) -> int:
        return 2 * z

    first = FunctionPod(PythonPacketFunction(inc, "z"))(make_source(4))
    second = FunctionPod(PythonPacketFunction(double, "w"))(first)
    assert [p["w"] for _, p in second] == [2, 4, 6, 8]
    table = second.as_table(all_info=True)
    assert table.column("w").to_pylist() == [2, 4, 6, 8]


def test_len_counts_rows_without_building_a_table(calls: Any, make_source: Any) -> None:
    stream = counting_pod(calls, filter=True)(make_source(7))
    assert len(stream) == 5
    assert stream._full_table is None
    assert len(calls) == 7
