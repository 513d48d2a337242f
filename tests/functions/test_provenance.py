"""provenance: the vectorised packet hashes equal each packet's own content hash, for stream
rows (hashed by their block) and for free-standing packets alike; the vectorised record ids
equal the per-hash ones."""

from __future__ import annotations

import pyarrow as pa

from orcapod.data import Packet
from orcapod.functions.provenance import packet_hashes, result_record_id, result_record_id_array
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


def test_record_ids_of_an_arrow_array_are_the_stored_ids_of_each_hash() -> None:
    """The vectorised record ids equal the per-hash ones (the stored id scheme), also for a
    slice or a chunked array, for hashes of other lengths, and for suffixes that end in a NUL
    byte."""
    hashes = [f"arrow_row_v1:{i:032x}" for i in range(300)] + ["short", ""]
    array = pa.array(hashes, pa.large_string())
    same_length = array.slice(7, 200)  # every hash of one length: laid out as one block
    for given in (array, same_length, pa.chunked_array([array[:5], array[5:]])):
        for suffix in (b"suffix", b"ends in\0", b""):  # (a trailing NUL must be kept)
            expected = [result_record_id(h, suffix) for h in given.to_pylist()]
            assert result_record_id_array(given, suffix).to_pylist() == expected
    assert result_record_id_array(pa.array([], pa.string()), b"s").to_pylist() == []
