"""provenance.packet_hashes: the vectorised hashes equal each packet's own content hash, for
stream rows (hashed by their block) and for free-standing packets alike."""

from __future__ import annotations

from orcapod.data import Packet
from orcapod.functions.provenance import packet_hashes
from orcapod.sources import DictSource


def test_packet_hashes_of_stream_rows_equal_hashes_of_the_same_packets_built_alone() -> None:
    rows = [{"id": i, "x": i, "name": f"n{i}"} for i in range(50)]
    stream_packets = [p for _, p in DictSource(rows, tag_columns=["id"]).iter_packets()]
    alone = [Packet({"x": r["x"], "name": r["name"]}) for r in rows]
    expected = [p.content_hash() for p in alone]
    assert packet_hashes(stream_packets) == expected
    assert packet_hashes(alone) == expected
    assert len(set(expected)) == len(rows)
    mixed = [alone[0], stream_packets[1], Packet({"x": 7})]
    assert packet_hashes(mixed) == [expected[0], expected[1], Packet({"x": 7}).content_hash()]
