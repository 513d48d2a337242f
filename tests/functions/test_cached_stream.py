"""CachedPodStream: a cached pod's output computed chunk by chunk - failures end a chunk at
their row (earlier rows stored and delivered first, the row retried), an unstorable output
fails only its row, partial reads compute boundedly, meta and provenance are the same for
computed rows and cache hits, in memory and in Delta Lake."""

from __future__ import annotations

from typing import Any

import pytest

from orcapod.databases import ArrowDatabase
from orcapod.errors import PacketFunctionError
from orcapod.functions import CachedFunctionPod, FunctionPod, PythonPacketFunction
from orcapod.functions.cached_stream import CachedPodStream
from orcapod.sources import DictSource
from orcapod.types import ColumnConfig


def cached_pod(calls: Any, db: ArrowDatabase, fail: Any = None) -> CachedFunctionPod:
    def inc(x: int) -> int | None:
        calls.add(x)
        if fail is not None and fail(x):
            raise RuntimeError(f"failed on {x}")
        return None if x == 1 else x + 1

    return CachedFunctionPod(FunctionPod(PythonPacketFunction(inc, "z")), db)


def test_cached_pod_gives_a_chunked_stream_with_hits_marked(
    db: ArrowDatabase, calls: Any, make_source: Any
) -> None:
    pod = cached_pod(calls, db)
    first = pod(make_source(40))
    assert isinstance(first, CachedPodStream)
    rows = list(first)
    assert [(t["id"], p["z"]) for t, p in rows] == [(i, i + 1) for i in range(40) if i != 1]
    assert all(p.get_meta_value("__computed") is True for _, p in rows)
    again = list(pod(make_source(40)))
    assert [p["z"] for _, p in again] == [p["z"] for _, p in rows]
    assert not any(p.get_meta_value("__computed") for _, p in again)
    # the record id and the provenance of a hit are those of the computed row
    assert [p.get_meta_value("__packet_id") for _, p in again] == [
        p.get_meta_value("__packet_id") for _, p in rows
    ]
    assert [p.source_info() for _, p in again] == [p.source_info() for _, p in rows]
    assert len(calls) == 40  # the filtered row (x == 1) is stored too: not recomputed


def test_failure_delivers_earlier_rows_then_raises_and_retries_only_that_row(
    db: ArrowDatabase, calls: Any, make_source: Any
) -> None:
    failing = {7}
    stream = cached_pod(calls, db, fail=lambda x: x in failing)(make_source(12))
    seen: list[int] = []
    with pytest.raises(RuntimeError, match="failed on 7"):
        for t, _ in stream:
            seen.append(t["id"])
    assert seen == [0, 2, 3, 4, 5, 6]  # row 1 is filtered
    failing.clear()
    assert [t["id"] for t, _ in stream] == [i for i in range(12) if i != 1]
    assert sorted(calls.args) == sorted([*range(12), 7])  # only the failed row ran twice


def test_results_before_a_failure_are_stored(
    db: ArrowDatabase, calls: Any, make_source: Any
) -> None:
    pod = cached_pod(calls, db, fail=lambda x: x == 5)
    with pytest.raises(RuntimeError):
        list(pod(make_source(8)))
    db.flush()
    stored = pod.result_cache.get_all_records()
    assert stored is not None
    assert sorted(stored.column("z").drop_null().to_pylist()) == [1, 3, 4, 5]  # x = 0, 2, 3, 4


def test_an_unstorable_output_fails_only_its_row(
    db: ArrowDatabase, calls: Any, make_source: Any
) -> None:
    def big(x: int) -> int:
        calls.add(x)
        return 2**70 if x == 3 else x  # beyond int64 on row 3 only

    pod = CachedFunctionPod(FunctionPod(PythonPacketFunction(big, "z")), db)
    stream = pod(make_source(6))
    seen: list[int] = []
    with pytest.raises(PacketFunctionError, match="cannot be stored"):
        for _, p in stream:
            seen.append(p["z"])
    assert seen == [0, 1, 2]
    db.flush()
    stored = pod.result_cache.get_all_records()
    assert stored is not None
    # every other row computed so far is stored (row 3 is not: it cannot be)
    assert sorted(stored.column("z").to_pylist()) == sorted(x for x in calls.args if x != 3)
    assert 2**70 not in stored.column("z").to_pylist()


def test_a_partial_read_computes_a_bounded_number_of_rows(
    memory_db: ArrowDatabase, calls: Any, make_source: Any
) -> None:
    stream = cached_pod(calls, memory_db)(make_source(1000))
    it = iter(stream)
    for _ in range(20):
        next(it)
    assert 20 <= len(calls) <= 4 * 21
    assert len(list(stream)) == 999
    assert len(calls) == 1000


def test_interleaved_readers_share_one_computation(
    memory_db: ArrowDatabase, calls: Any, make_source: Any
) -> None:
    stream = cached_pod(calls, memory_db)(make_source(30))
    a, b = iter(stream), iter(stream)
    pairs = [(next(a)[0]["id"], next(b)[0]["id"]) for _ in range(10)]
    assert pairs == [(i, i) for i in [0, *range(2, 11)]]
    assert [t["id"] for t, _ in stream] == [i for i in range(30) if i != 1]
    assert sorted(calls.args) == list(range(30))


def test_as_table_with_every_column_matches_iteration(
    db: ArrowDatabase, calls: Any, make_source: Any
) -> None:
    pod = cached_pod(calls, db)
    list(pod(make_source(5)))  # rows 0-4 stored: the next stream mixes hits and computed rows
    stream = pod(make_source(9))
    table = stream.as_table(all_info=True)
    rows = list(stream)
    assert table.column("z").to_pylist() == [p["z"] for _, p in rows]
    assert table.column("__computed").to_pylist() == [i >= 5 for i in range(9) if i != 1]
    assert table.column("__packet_id").to_pylist() == [
        p.get_meta_value("__packet_id") for _, p in rows
    ]
    assert table.column("_source_z").to_pylist() == [p.source_info()["z"] for _, p in rows]
    tags = stream.as_table(ColumnConfig(system_tags=True))
    assert any(name.startswith("_tag_") for name in tags.column_names)


def test_empty_input_gives_an_empty_table_with_the_schema(
    memory_db: ArrowDatabase, calls: Any, make_source: Any
) -> None:
    empty = DictSource([], tag_columns=["id"], data_schema={"id": int, "x": int})
    stream = cached_pod(calls, memory_db)(empty)
    assert list(stream) == []
    table = stream.as_table(all_info=True)
    assert table.num_rows == 0
    assert {"id", "z", "__computed", "__packet_id", "__pod_ts"} <= set(table.column_names)
