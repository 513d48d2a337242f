"""CachedPacketFunction and CachedFunctionPod: one ResultCache, keyed by input packet hash
only; miss/hit, same packet under other tags, inactive functions, filtered results, output
schema delegation, dual caching, async, batched iteration, match tiers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from orcapod.data import Packet, Tag
from orcapod.databases import ArrowDatabase, InMemoryArrowDatabase
from orcapod.functions import (
    CachedFunctionPod,
    CachedPacketFunction,
    FunctionPod,
    PythonPacketFunction,
)
from orcapod.functions.result_cache import FILTERED
from orcapod.types import CacheMatch


def counting_pf(calls: Any, name: str = "square") -> PythonPacketFunction:
    def square(x: int) -> int | None:
        calls.add(x)
        return None if x < 0 else x * x

    return PythonPacketFunction(square, "y", function_name=name)


def tag(i: int) -> Tag:
    return Tag({"id": i})


# -- CachedFunctionPod -------------------------------------------------------------------


def test_pod_miss_then_hit(db: ArrowDatabase, calls: Any) -> None:
    pod = CachedFunctionPod(FunctionPod(counting_pf(calls)), db)
    t, first = pod.process_packet(tag(1), Packet({"x": 3}))
    assert t == tag(1) and first is not None
    assert first["y"] == 9 and first.get_meta_value("__computed") is True
    t, second = pod.process_packet(tag(1), Packet({"x": 3}))
    assert second is not None and second["y"] == 9
    assert second.get_meta_value("__computed") is False
    assert second.get_meta_value("__packet_id") == first.get_meta_value("__packet_id")
    assert second.source_info() == first.source_info()
    assert calls.args == [3]


def test_same_packet_different_tags_is_a_hit(db: ArrowDatabase, calls: Any) -> None:
    pod = CachedFunctionPod(FunctionPod(counting_pf(calls)), db)
    t1, a = pod.process_packet(tag(1), Packet({"x": 4}))
    t2, b = pod.process_packet(tag(2), Packet({"x": 4}))
    assert (t1["id"], t2["id"]) == (1, 2)  # tags pass through untouched
    assert a is not None and b is not None and a["y"] == b["y"] == 16
    assert b.get_meta_value("__computed") is False
    assert calls.args == [4]
    records = pod.result_cache.get_all_records(include_system_columns=True)
    assert records is not None and records.num_rows == 1


def test_same_tag_different_packets_are_cached_separately(memory_db: Any, calls: Any) -> None:
    pod = CachedFunctionPod(FunctionPod(counting_pf(calls)), memory_db)
    pod.process_packet(tag(1), Packet({"x": 1}))
    pod.process_packet(tag(1), Packet({"x": 2}))
    assert calls.args == [1, 2]
    assert pod.result_cache.get_all_records().num_rows == 2  # type: ignore[union-attr]


def test_inactive_function_computes_and_stores_nothing(
    make_source: Any, db: ArrowDatabase, calls: Any
) -> None:
    pf = counting_pf(calls)
    pod = CachedFunctionPod(FunctionPod(pf), db)
    pf.set_active(False)
    assert pod.process_packet(tag(1), Packet({"x": 3})) == (tag(1), None)
    assert asyncio.run(pod.async_process_packet(tag(1), Packet({"x": 3}))) == (tag(1), None)
    assert list(pod(make_source(3))) == []
    assert calls.args == []
    assert pod.result_cache.get_all_records(include_system_columns=True) is None


def test_inactive_function_still_serves_stored_results(memory_db: Any, calls: Any) -> None:
    pf = counting_pf(calls)
    pod = CachedFunctionPod(FunctionPod(pf), memory_db)
    pod.process_packet(tag(1), Packet({"x": 3}))
    pf.set_active(False)
    _, hit = pod.process_packet(tag(1), Packet({"x": 3}))
    assert hit is not None and hit["y"] == 9
    assert calls.args == [3]


def test_filtered_result_is_cached_and_not_recomputed(db: ArrowDatabase, calls: Any) -> None:
    pod = CachedFunctionPod(FunctionPod(counting_pf(calls)), db)
    assert pod.process_packet(tag(1), Packet({"x": -1})) == (tag(1), None)
    assert pod.result_cache.lookup(Packet({"x": -1})) is FILTERED
    assert pod.process_packet(tag(2), Packet({"x": -1})) == (tag(2), None)
    assert calls.args == [-1]


def test_output_schema_and_identity_delegate_to_the_wrapped_pod(
    calls: Any, make_source: Any, memory_db: Any
) -> None:
    inner = FunctionPod(counting_pf(calls), label="sq")
    pod = CachedFunctionPod(inner, memory_db)
    source = make_source()
    assert pod.output_schema(source) == inner.output_schema(source)
    assert pod.output_packet_schema == inner.output_packet_schema
    assert pod.uri == inner.uri
    assert pod.content_hash() == inner.content_hash()
    assert pod.pipeline_hash() == inner.pipeline_hash()
    assert pod.computed_label() == "sq"
    assert pod.record_path == inner.uri
    assert pod(source).pipeline_hash() == inner(source).pipeline_hash()
    _, meta_packets = pod.output_schema(source, columns={"meta": True})
    assert set(meta_packets) == {"y", "__computed", "__packet_id", "__pod_ts"}
    assert set(inner.output_schema(source, columns={"meta": True})[1]) == {"y"}


def test_record_path_prefix(calls: Any, memory_db: Any) -> None:
    inner = FunctionPod(counting_pf(calls))
    pod = CachedFunctionPod(inner, memory_db, ("team", "results"))
    assert pod.record_path == ("team", "results", *inner.uri)
    with pytest.raises(ValueError, match="tuple"):
        CachedFunctionPod(inner, memory_db, "team")  # type: ignore[arg-type]


def test_async_process_packet_hits_and_misses(db: ArrowDatabase, calls: Any) -> None:
    pod = CachedFunctionPod(FunctionPod(counting_pf(calls)), db)

    async def run() -> list[Any]:
        first = await pod.async_process_packet(tag(1), Packet({"x": 5}))
        second = await pod.async_process_packet(tag(2), Packet({"x": 5}))
        return [first[1], second[1]]

    first, second = asyncio.run(run())
    assert first["__computed" if False else "y"] == 25
    assert first.get_meta_value("__computed") is True
    assert second.get_meta_value("__computed") is False
    assert calls.args == [5]


def test_pod_level_cache_hit_via_iteration_with_mixed_hits(
    make_source: Any, db: ArrowDatabase, calls: Any
) -> None:
    pod = CachedFunctionPod(FunctionPod(counting_pf(calls)), db)
    pod.process_packet(tag(0), Packet({"x": 2, "y": 20}))  # the source's packets
    pod.process_packet(tag(0), Packet({"x": 4, "y": 40}))
    pod.process_packet(tag(0), Packet({"x": 3}))  # the key is what the function reads: x
    out = pod(make_source(6))
    rows = [(t["id"], p["y"], p.get_meta_value("__computed")) for t, p in out]
    assert rows == [
        (0, 0, True),
        (1, 1, True),
        (2, 4, False),
        (3, 9, False),
        (4, 16, False),
        (5, 25, True),
    ]
    assert sorted(calls.args) == [0, 1, 2, 3, 4, 5]  # x=3 computed once
    table = out.as_table(columns={"meta": True})
    assert table.column("__computed").to_pylist() == [True, True, False, False, False, True]
    # a second application over the same input computes nothing
    assert [p["y"] for _, p in pod(make_source(6))] == [0, 1, 4, 9, 16, 25]
    assert len(calls) == 6


def test_repeated_packets_in_one_stream_are_computed_once(memory_db: Any, calls: Any) -> None:
    from orcapod.sources import DictSource

    source = DictSource([{"id": i, "x": i % 2} for i in range(6)], tag_columns=["id"])
    pod = CachedFunctionPod(FunctionPod(counting_pf(calls)), memory_db)
    assert [p["y"] for _, p in pod(source)] == [0, 1, 0, 1, 0, 1]
    assert sorted(calls.args) == [0, 1]


def test_batched_iteration_flushes_by_policy_and_at_the_end(make_source: Any, calls: Any) -> None:
    flushes: list[int] = []

    class Counting(InMemoryArrowDatabase):
        def flush(self) -> None:
            flushes.append(1)

    pod = CachedFunctionPod(FunctionPod(counting_pf(calls)), Counting())
    list(pod(make_source(20)))
    assert 1 <= len(flushes) <= 3  # batched commits, not one per row
    assert pod.result_cache.get_all_records().num_rows == 20  # type: ignore[union-attr]
    off = CachedFunctionPod(FunctionPod(counting_pf(calls)), Counting(), auto_flush=False)
    before = len(flushes)
    list(off(make_source(5)))
    assert len(flushes) == before


def test_code_tier_ignores_results_of_other_code(memory_db: Any, calls: Any) -> None:
    def square(x: int) -> int | None:  # same name/schema as counting_pf, different code
        calls.add(("edited", x))
        return x * x + 0

    old = CachedFunctionPod(FunctionPod(counting_pf(calls)), memory_db)
    old.process_packet(tag(1), Packet({"x": 3}))
    edited_pf = PythonPacketFunction(square, "y")
    code = CachedFunctionPod(FunctionPod(edited_pf), memory_db)
    _, out = code.process_packet(tag(1), Packet({"x": 3}))
    assert out is not None and out.get_meta_value("__computed") is True
    version = CachedFunctionPod(
        FunctionPod(PythonPacketFunction(square, "y")), memory_db, cache_match=CacheMatch.VERSION
    )
    _, hit = version.process_packet(tag(1), Packet({"x": 3}))
    assert hit is not None and hit.get_meta_value("__computed") is False
    assert calls.args == [3, ("edited", 3)]
    assert old.result_cache.get_all_records().num_rows == 2  # type: ignore[union-attr]


def test_strict_tier_recomputes_on_another_executor(memory_db: Any, calls: Any) -> None:
    from orcapod.executors import LocalExecutor

    pf = counting_pf(calls)
    strict = CachedFunctionPod(FunctionPod(pf), memory_db, cache_match="strict")
    strict.process_packet(tag(1), Packet({"x": 2}))
    local = strict.with_executor(LocalExecutor())
    _, out = local.process_packet(tag(1), Packet({"x": 2}))
    assert out is not None and out.get_meta_value("__computed") is True
    code = CachedFunctionPod(FunctionPod(pf), memory_db)
    assert code.process_packet(tag(1), Packet({"x": 2}))[1].get_meta_value("__computed") is False  # type: ignore[union-attr]
    assert calls.args == [2, 2]


# -- CachedPacketFunction ----------------------------------------------------------------


def test_packet_function_miss_then_hit(db: ArrowDatabase, calls: Any) -> None:
    pf = CachedPacketFunction(counting_pf(calls), db)
    first = pf.call(Packet({"x": 6}))
    second = pf.call(Packet({"x": 6}))
    assert first is not None and second is not None
    assert (first["y"], second["y"]) == (36, 36)
    assert first.get_meta_value("__computed") is True
    assert second.get_meta_value("__computed") is False
    assert calls.args == [6]
    assert pf.record_path == pf.uri
    assert pf.get_cached_output_for_packet(Packet({"x": 6})) is not None


def test_packet_function_skip_flags_and_async(memory_db: Any, calls: Any) -> None:
    pf = CachedPacketFunction(counting_pf(calls), memory_db, ("prefix",))
    assert pf.record_path[0] == "prefix"
    pf.call(Packet({"x": 1}), skip_cache_insert=True)
    assert pf.get_all_cached_outputs() is None
    pf.call(Packet({"x": 1}))
    pf.call(Packet({"x": 1}), skip_cache_lookup=True)
    assert calls.args == [1, 1, 1]
    out = asyncio.run(pf.async_call(Packet({"x": 1})))
    assert out is not None and out.get_meta_value("__computed") is False
    assert len(calls) == 3


def test_packet_function_inactive_and_filtered(memory_db: Any, calls: Any) -> None:
    pf = CachedPacketFunction(counting_pf(calls), memory_db)
    assert pf.call(Packet({"x": -2})) is None
    assert pf.call(Packet({"x": -2})) is None
    assert calls.args == [-2]
    pf.set_active(False)
    assert pf.call(Packet({"x": 7})) is None
    assert pf.get_cached_output_for_packet(Packet({"x": 7})) is None
    assert calls.args == [-2]


def test_packet_function_record_packet_and_meta_schema(calls: Any, memory_db: Any) -> None:
    pf = CachedPacketFunction(counting_pf(calls), memory_db)
    record_id = pf.record_packet(Packet({"x": 2}), Packet({"y": 99}))
    hit = pf.call(Packet({"x": 2}))
    assert hit is not None and hit["y"] == 99 and hit.get_meta_value("__packet_id") == record_id
    assert hit.source_info()["y"] == ":".join(pf.uri) + f"::{record_id}::y"
    assert set(pf.output_meta_schema()) == {"__computed", "__packet_id", "__pod_ts"}


def test_dual_caching_both_levels_store_and_serve(calls: Any) -> None:
    pf_db, pod_db = InMemoryArrowDatabase(), InMemoryArrowDatabase()
    cached_pf = CachedPacketFunction(counting_pf(calls), pf_db)
    pod = CachedFunctionPod(FunctionPod(cached_pf), pod_db)
    _, out = pod.process_packet(tag(1), Packet({"x": 3}))
    assert out is not None and out.get_meta_value("__computed") is True
    assert cached_pf.get_all_cached_outputs().num_rows == 1  # type: ignore[union-attr]
    assert pod.result_cache.get_all_records().num_rows == 1  # type: ignore[union-attr]
    # a new pod-level cache over the same function: served by the function-level cache
    fresh = CachedFunctionPod(FunctionPod(cached_pf), InMemoryArrowDatabase())
    _, again = fresh.process_packet(tag(2), Packet({"x": 3}))
    assert again is not None and again["y"] == 9
    assert again.get_meta_value("__computed") is False
    assert fresh.result_cache.get_all_records().num_rows == 1  # type: ignore[union-attr]
    assert calls.args == [3]
    assert set(pod.meta_schema()) == {"__computed", "__packet_id", "__pod_ts"}


def test_dual_caching_through_the_decorator(make_source: Any, calls: Any) -> None:
    from orcapod.functions import function_pod

    pf_db, pod_db = InMemoryArrowDatabase(), InMemoryArrowDatabase()

    @function_pod("y", result_database=pf_db, pod_cache_database=pod_db)
    def triple(x: int) -> int:
        calls.add(x)
        return 3 * x

    assert isinstance(triple.pod, CachedFunctionPod)  # type: ignore[attr-defined]
    assert isinstance(triple.pod.packet_function, CachedPacketFunction)  # type: ignore[attr-defined]
    assert [p["y"] for _, p in triple.pod(make_source(3))] == [0, 3, 6]  # type: ignore[attr-defined]
    assert [p["y"] for _, p in triple.pod(make_source(3))] == [0, 3, 6]  # type: ignore[attr-defined]
    assert sorted(calls.args) == [0, 1, 2]
    assert pf_db.get_all_records(triple.pod.packet_function.record_path).num_rows == 3  # type: ignore[attr-defined, union-attr]
    assert pod_db.get_all_records(triple.pod.record_path).num_rows == 3  # type: ignore[attr-defined, union-attr]


def test_provenance_is_the_same_computed_cached_and_stored(make_source: Any) -> None:
    def inc(x: int) -> int:
        return x + 1

    plain = FunctionPod(PythonPacketFunction(inc, "z"))
    cached = CachedFunctionPod(plain, InMemoryArrowDatabase())
    fresh = [p.source_info()["z"] for _, p in plain(make_source(4))]
    computed = [p.source_info()["z"] for _, p in cached(make_source(4))]
    hits = [p.source_info()["z"] for _, p in cached(make_source(4))]
    stored = cached.result_cache.get_all_records()
    assert fresh == computed == hits
    assert sorted(stored.column("_source_z").to_pylist()) == sorted(fresh)  # type: ignore[union-attr]
    ids = [p.get_meta_value("__packet_id") for _, p in cached(make_source(4))]
    assert [token.split("::")[1] for token in fresh] == ids


def test_iter_process_accepts_precomputed_input_hashes(memory_db: Any, calls: Any) -> None:
    from orcapod.functions.provenance import packet_hashes

    pod = CachedFunctionPod(FunctionPod(counting_pf(calls)), memory_db)
    rows = [(tag(i), Packet({"x": i})) for i in range(5)]
    hashes = packet_hashes([p for _, p in rows])
    assert hashes == [p.content_hash() for _, p in rows]
    first = list(pod.iter_process(rows, input_hashes=hashes))
    assert [o["y"] for _, o in first] == [0, 1, 4, 9, 16]  # type: ignore[index]
    again = list(pod.iter_process(rows, input_hashes=hashes))
    assert [o.get_meta_value("__computed") for _, o in again] == [False] * 5  # type: ignore[union-attr]
    assert len(calls) == 5
    with pytest.raises(ValueError, match="shorter"):
        list(pod.iter_process(rows, input_hashes=hashes[:2]))


class Concurrency:
    """Tracks how many calls run at once (its identity is fixed: it does not change results)."""

    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def __enter__(self) -> None:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.running -= 1

    def identity_structure(self) -> str:
        return "concurrency-probe"


def test_cached_pod_with_a_concurrent_executor_is_bounded_and_ordered(
    memory_db: Any, make_source: Any
) -> None:
    import time

    from orcapod.executors import LocalExecutor

    probe = Concurrency()

    def jitter(x: int) -> int:
        with probe:
            time.sleep(0.001 * ((3 * x) % 4))
        return -x

    pf = PythonPacketFunction(jitter, "z", executor=LocalExecutor(max_workers=6))
    pod = CachedFunctionPod(FunctionPod(pf, max_concurrency=3), memory_db)
    assert [(t["id"], p["z"]) for t, p in pod(make_source(25))] == [(i, -i) for i in range(25)]
    assert 2 <= probe.peak <= 3
    assert pod.result_cache.get_all_records().num_rows == 25  # type: ignore[union-attr]
    probe.peak = 0
    assert [p.get_meta_value("__computed") for _, p in pod(make_source(25))] == [False] * 25
    assert probe.peak == 0


def test_async_process_packet_awaits_only_the_computation(memory_db: Any) -> None:
    import time

    async def slow(x: int) -> int:
        await asyncio.sleep(0.2)
        return x

    pod = CachedFunctionPod(FunctionPod(PythonPacketFunction(slow, "y")), memory_db)

    async def run() -> list[Any]:
        return await asyncio.gather(
            *(pod.async_process_packet(tag(i), Packet({"x": i})) for i in range(4))
        )

    start = time.perf_counter()
    outcomes = asyncio.run(run())
    assert time.perf_counter() - start < 0.6  # the four computations overlapped
    assert [o["y"] for _, o in outcomes] == [0, 1, 2, 3]
    assert pod.result_cache.get_all_records().num_rows == 4  # type: ignore[union-attr]
