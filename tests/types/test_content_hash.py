import uuid

import pytest

from orcapod.errors import InputValidationError
from orcapod.types import ContentHash


def test_string_round_trip_and_views():
    h = ContentHash("arrow_v1", bytes(range(32)))
    text = h.to_string()
    assert text == "arrow_v1:" + bytes(range(32)).hex()
    assert ContentHash.from_string(text) == h
    assert h.to_hex(8) == "00010203"
    assert h.to_int() == int.from_bytes(bytes(range(32)), "big")
    assert h.to_uuid() == uuid.UUID(bytes=bytes(range(16)))


def test_bad_strings_are_rejected_with_the_expected_format():
    with pytest.raises(InputValidationError, match="<method>:<hex digest>"):
        ContentHash.from_string("nocolon")
    with pytest.raises(InputValidationError, match="hexadecimal"):
        ContentHash.from_string("m:xyz")


def test_hash_is_a_frozen_value():
    h = ContentHash("m", b"\x01")
    assert {h} == {ContentHash("m", b"\x01")}
    assert ContentHash("m", b"\x01") != ContentHash("n", b"\x01")
    with pytest.raises(AttributeError):
        h.method = "x"  # type: ignore[misc]


def test_content_hash_string_forms():
    h = ContentHash("arrow_v1", bytes(range(16)))
    assert h.to_base64() == "AAECAwQFBgcICQoLDA0ODw=="
    assert h.to_string(prefix_method=False) == h.to_hex()
    assert h.to_string(hexdigits=6) == "arrow_v1:000102"
    assert h.to_hex(char_count=4) == "0001"
    assert h.to_int(hexdigits=4) == 1 and h.to_int() == int(h.to_hex(), 16)
    assert h.to_prefixed_digest() == b"arrow_v1:" + bytes(range(16))
    assert h.display_name(length=4) == "arrow_v1:0001"


def test_to_uuid_with_a_namespace_is_name_based():
    h = ContentHash("m", b"\x01" * 20)
    assert h.to_uuid(uuid.NAMESPACE_OID) == uuid.uuid5(uuid.NAMESPACE_OID, h.to_hex())
    assert h.to_uuid(uuid.NAMESPACE_OID) != h.to_uuid()
