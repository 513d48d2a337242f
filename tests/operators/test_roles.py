"""TagsToPacket / PacketToTags: move columns between the tag and the packet."""

import pytest

from orcapod import function_pod
from orcapod.errors import InputValidationError
from orcapod.operators import PacketToTags, TagsToPacket


def test_tags_to_packet_moves_the_column_after_the_packets(sessions, assert_prediction_matches):
    out = TagsToPacket("session")(sessions)
    assert out.keys() == (("subject",), ("weight", "session"))
    assert out.as_table().column("session").to_pylist() == [1, 1, 2, 1]
    assert out.output_schema()[1] == {"weight": float, "session": int}
    assert_prediction_matches(TagsToPacket("session")(sessions))


def test_a_moved_tag_has_null_source_info_and_system_tags_stay(sessions):
    out = TagsToPacket(["session"])(sessions)
    table = out.as_table(columns={"source": True, "system_tags": True})
    assert table.column("_source_session").to_pylist() == [None] * 4
    assert table.column("_source_weight").to_pylist()[0] == "sessions::row_0::weight"
    system = [c for c in table.column_names if c.startswith("_tag_")]
    assert system == [c for c in sessions.keys(all_info=True)[0] if c.startswith("_tag_")]
    assert out.output_schema(columns={"source": True})[1]["_source_session"] == str | None


def test_packet_to_tags_moves_the_column_after_the_tags(sessions, assert_prediction_matches):
    out = PacketToTags("weight")(TagsToPacket("session")(sessions))
    assert out.keys(columns={"source": True}) == (
        ("subject", "weight"),
        ("session", "_source_session"),
    )
    assert_prediction_matches(PacketToTags("weight")(TagsToPacket("session")(sessions)))


def test_round_trip_gives_back_the_user_columns(sessions):
    back = sessions.tags_to_packet("session").packet_to_tags("session")
    assert back.keys() == sessions.keys()
    assert back.as_table().equals(sessions.as_table())


def test_all_tags_may_move_but_not_all_packets(sessions):
    out = sessions.tags_to_packet("subject", "session")
    assert out.keys()[0] == ()
    with pytest.raises(InputValidationError, match="no packet column"):
        PacketToTags("weight")(sessions)


def test_strict_names(sessions):
    with pytest.raises(InputValidationError, match=r"\['nope'\] are not tag columns"):
        TagsToPacket(["session", "nope"])(sessions)
    with pytest.raises(InputValidationError, match="are not packet columns"):
        PacketToTags("session")(sessions)  # a tag, not a packet column
    lenient = TagsToPacket(["session", "nope"], strict=False)(sessions)
    assert lenient.keys()[1] == ("weight", "session")


def test_a_pod_can_read_a_moved_tag(sessions):
    @function_pod("label")
    def describe(session: int, weight: float) -> str:
        return f"{session}:{weight}"

    with pytest.raises(InputValidationError, match="is a tag column"):
        describe.pod(sessions)
    out = describe.pod(sessions.tags_to_packet("session"))
    assert out.as_table().column("label").to_pylist() == ["1:82.5", "1:70.0", "2:81.0", "1:60.0"]


def test_identity_ignores_name_order():
    assert TagsToPacket(["a", "b"]).content_hash() == TagsToPacket(["b", "a"]).content_hash()
    assert TagsToPacket(["a"]).content_hash() != PacketToTags(["a"]).content_hash()
