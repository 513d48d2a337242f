"""Column-wise outputs of a plain pod: the same packets and provenance as the per-packet path,
each row computed once, source info resolved in bulk for rows added at any time."""

from __future__ import annotations

from typing import Any

from orcapod.data import Packet
from orcapod.functions import FunctionPod, PythonPacketFunction
from orcapod.functions.computed_columns import ComputedColumns
from orcapod.sources import DictSource
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
