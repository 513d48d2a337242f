"""The fluent shortcuts on streams build, apply and record the same operators."""

import polars as pl

from orcapod.operators import (
    Batch,
    DropPacketColumns,
    DropTagColumns,
    GroupBy,
    Join,
    MapPackets,
    MapTags,
    MergeJoin,
    PacketToTags,
    PolarsFilter,
    SelectPacketColumns,
    SelectTagColumns,
    SemiJoin,
    TagsToPacket,
)
from orcapod.sources import DictSource
from orcapod.streams.tracking import recording


class Recorder:
    def __init__(self):
        self.pods = []

    def record(self, invocation):
        self.pods.append(invocation.pod)


def test_each_shortcut_equals_its_operator(subjects, sessions):
    twin = DictSource([{"subject": "s1", "age": 3}], tag_columns=["subject"])
    colours = DictSource([{"colour": "red", "hex": "f00"}], tag_columns=["colour"])
    cases = [
        (subjects.join(sessions), Join()(subjects, sessions)),
        (subjects.semi_join(sessions), SemiJoin()(subjects, sessions)),
        (subjects.merge_join(twin), MergeJoin()(subjects, twin)),
        (subjects.batch(2), Batch(2)(subjects)),
        (sessions.batch(2, drop_partial_batch=True), Batch(2, True)(sessions)),
        (sessions.select_tag_columns("subject"), SelectTagColumns(["subject"])(sessions)),
        (sessions.select_tag_columns(["session"]), SelectTagColumns(["session"])(sessions)),
        (sessions.drop_tag_columns("session"), DropTagColumns(["session"])(sessions)),
        (subjects.select_packet_columns("age"), SelectPacketColumns(["age"])(subjects)),
        (
            sessions.drop_packet_columns("nope", strict=False),
            DropPacketColumns(["nope"], strict=False)(sessions),
        ),
        (subjects.map_tags({"subject": "who"}), MapTags({"subject": "who"})(subjects)),
        (subjects.map_packets({"age": "years"}), MapPackets({"age": "years"})(subjects)),
        (
            sessions.polars_filter(pl.col("weight") > 70, session=1),
            PolarsFilter([pl.col("weight") > 70], {"session": 1})(sessions),
        ),
        (sessions.group_by("subject"), GroupBy(["subject"])(sessions)),
        (sessions.group_by(["subject", "session"]), GroupBy(["subject", "session"])(sessions)),
        (sessions.tags_to_packet("session"), TagsToPacket(["session"])(sessions)),
        (
            sessions.tags_to_packet("session").packet_to_tags("session", "nope", strict=False),
            PacketToTags(["session", "nope"], False)(TagsToPacket(["session"])(sessions)),
        ),
        (subjects.cross_join(colours), Join(cross=True)(subjects, colours)),
    ]
    for fluent, direct in cases:
        assert fluent.content_hash() == direct.content_hash()
        assert fluent.as_table(all_info=True).equals(direct.as_table(all_info=True))


def test_map_shortcuts_keep_unmapped_columns_by_default(sessions):
    assert sessions.map_tags({"session": "visit"}).keys()[0] == ("subject", "visit")


def test_shortcuts_are_recorded_with_labels(subjects, sessions):
    recorder = Recorder()
    with recording(recorder):
        out = subjects.join(sessions, label="joined").batch(2, label="batched")
    assert [type(p).__name__ for p in recorder.pods] == ["Join", "Batch"]
    assert out.label == "batched"


def test_polars_filter_takes_a_label_not_a_constraint(sessions):
    recorder = Recorder()
    with recording(recorder):
        out = sessions.polars_filter(pl.col("weight") > 70, session=1, label="heavy")
    assert out.label == "heavy"
    assert (
        out.content_hash()
        == PolarsFilter([pl.col("weight") > 70], {"session": 1})(sessions).content_hash()
    )
    assert out.as_table().column("weight").to_pylist() == [82.5]
