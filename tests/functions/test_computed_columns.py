"""Column-wise outputs of a plain pod: the same packets and provenance as the per-packet path,
each row computed once, source info resolved in bulk for rows added at any time."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from orcapod.data import Packet
from orcapod.functions import FunctionPod, PythonPacketFunction
from orcapod.functions.computed_columns import ComputedColumns
from orcapod.sources import ArrowTableSource, DictSource
from orcapod.types import ColumnConfig
from orcapod.types.columns import SOURCE_PREFIX


def split(x: int) -> tuple[int, str]:
    return x * 2, f"v{x}"


def _source(n: int) -> DictSource:
    return DictSource([{"id": i, "x": i} for i in range(n)], tag_columns=["id"], source_id="s")


def test_pod_rows_equal_the_per_packet_call_including_source_info() -> None:
    pf = PythonPacketFunction(split, ("a", "b"))
    source = _source(5)
    rows = list(FunctionPod(pf)(source))
    expected = [pf.call(packet) for _, packet in source.iter_packets()]
    assert len(rows) == len(expected) == 5
    for (_, got), want in zip(rows, expected, strict=True):
        assert want is not None
        assert got == want
        assert got.source_info() == want.source_info()
        assert got.content_hash() == want.content_hash()
        assert got.context_key == want.context_key


def test_list_of_a_pod_stream_calls_the_function_once_per_row(calls: Any) -> None:
    def inc(x: int) -> int:
        calls.add(x)
        return x + 1

    stream = FunctionPod(PythonPacketFunction(inc, "y"))(_source(50))
    first = list(stream)  # list() asks len() first, then iterates
    assert calls.args == list(range(50))
    assert list(stream) == first  # re-iteration: equal rows, nothing recomputed
    assert calls.args == list(range(50))


def test_source_info_resolves_rows_appended_after_an_earlier_resolution() -> None:
    pf = PythonPacketFunction(split, ("a", "b"))
    computed = ComputedColumns(pf.output_packet_schema, pf.record_id_maker_for(None))
    inputs = [packet for _, packet in _source(4).iter_packets()]
    dict_input = Packet({"x": 9})  # not block-backed: hashed on its own
    for packet in inputs[:2]:
        data = pf.values_call()(packet)
        assert data is not None
        computed.append(data, packet)
    assert len(computed[SOURCE_PREFIX + "a"]) == 2
    for packet in [*inputs[2:], dict_input]:
        data = pf.values_call()(packet)
        assert data is not None
        computed.append(data, packet)
    for row, packet in enumerate([*inputs, dict_input]):
        want = pf.call(packet)
        assert want is not None
        got = computed.packet(row)
        assert got == want and got.source_info() == want.source_info()
    assert computed.num_rows == 5


def test_filtered_rows_take_no_column_row(calls: Any) -> None:
    def keep_even(x: int) -> int | None:
        return x if x % 2 == 0 else None

    stream = FunctionPod(PythonPacketFunction(keep_even, "y"))(_source(6))
    assert [p["y"] for _, p in stream] == [0, 2, 4]
    assert stream.as_table().column("y").to_pylist() == [0, 2, 4]
    assert len(stream) == 3


def test_optional_parameters_are_read_from_stream_rows_when_present() -> None:
    def add(x: int, y: int = 100) -> int:
        return x + y

    pod = FunctionPod(PythonPacketFunction(add, "z"))
    with_y = DictSource([{"id": i, "x": i, "y": 10 * i} for i in range(3)], tag_columns=["id"])
    without_y = DictSource([{"id": i, "x": i} for i in range(3)], tag_columns=["id"])
    assert [p["z"] for _, p in pod(with_y)] == [0, 11, 22]
    assert [p["z"] for _, p in pod(without_y)] == [100, 101, 102]
    derived = Packet({"x": 1, "y": 2})  # not from a stream: read from its own values
    call = pod.packet_function.values_call()
    assert call is not None and call(derived) == {"z": 3}


def test_as_table_over_several_row_blocks_matches_iteration() -> None:
    n = 40_000  # more than two of a stream's row blocks
    table = pa.table({"id": pa.array(range(n), pa.int32()), "x": pa.array(range(n), pa.int64())})
    source = ArrowTableSource(table, tag_columns=["id"], source_id="big")

    def odd_half(x: int) -> int | None:
        return x // 2 if x % 2 else None

    stream = FunctionPod(PythonPacketFunction(odd_half, "h"))(source)
    got = stream.as_table(all_info=True)
    assert got.num_rows == n // 2
    assert got.schema.field("id").type == pa.int64()  # the declared tag type (int)
    config = ColumnConfig(system_tags=True, source=True, context=True)
    sample = list(stream)[::997]
    for tag, packet in sample:
        row = tag["id"] // 2
        assert got.column("id")[row].as_py() == tag["id"]
        expected = {**tag.as_dict(config), **packet.as_dict(config)}
        assert {k: got.column(k)[row].as_py() for k in expected} == expected
