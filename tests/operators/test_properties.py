"""Property tests on small random streams (hypothesis; modest example counts)."""

import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orcapod.errors import InputValidationError
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
    SelectPacketColumns,
    SelectTagColumns,
    TagsToPacket,
)
from orcapod.sources import DictSource

TAGS = ["a", "b", "c"]
FAST = settings(max_examples=25, deadline=None)


@st.composite
def sources(draw, packet: str, source_id: str, min_tags: int = 0):
    tags = draw(st.lists(st.sampled_from(TAGS), min_size=min_tags, max_size=2, unique=True))
    n = draw(st.integers(0, 5))
    rows = [
        {
            **{t: draw(st.integers(0, 2)) for t in tags},
            packet: draw(st.integers(-3, 3)),
        }
        for _ in range(n)
    ]
    schema = {**dict.fromkeys(tags, int), packet: int}
    return DictSource(rows, tag_columns=tags, data_schema=schema, source_id=source_id)


def comparable(stream):
    """Rows as sortable tuples: user columns, source info, and system-tag values per row.

    System-tag *names* depend on how joins nest, so only their values are compared (as a
    sorted list per row); source-info columns keep their names through joins.
    """
    table = stream.as_table(columns={"system_tags": True, "source": True})
    rows = []
    for row in table.to_pylist():
        visible = sorted((k, v) for k, v in row.items() if not k.startswith("_tag_"))
        system = sorted(v for k, v in row.items() if k.startswith("_tag_"))
        rows.append((repr(visible), repr(system)))
    return sorted(rows)


@FAST
@given(sources("x", "A"), sources("y", "B"))
def test_join_is_commutative(a, b):
    join = Join(cross=True)
    assert join(a, b).as_table(all_info=True).equals(join(b, a).as_table(all_info=True))
    assert join(a, b).content_hash() == join(b, a).content_hash()


@FAST
@given(sources("x", "A"), sources("y", "B"))
def test_default_join_raises_exactly_when_no_tag_is_shared(a, b):
    shared = set(a.keys()[0]) & set(b.keys()[0])
    if not shared:
        with pytest.raises(InputValidationError, match="cross=True"):
            Join()(a, b)
        return
    assert (
        Join()(a, b).as_table(all_info=True).equals(Join(cross=True)(a, b).as_table(all_info=True))
    )


@FAST
@given(sources("x", "A"), sources("y", "B"), sources("z", "C"))
def test_join_is_associative(a, b, c):
    join = Join(cross=True)
    left = join(join(a, b), c)
    right = join(a, join(b, c))
    flat = join(a, b, c)
    assert comparable(left) == comparable(right) == comparable(flat)


@FAST
@given(sources("x", "A", min_tags=1), sources("x", "B", min_tags=1))
def test_merge_join_is_commutative(a, b):
    # same-schema inputs tie on pipeline hash, exercising the per-row system-tag sort
    ab = MergeJoin(cross=True)(a, b).as_table(all_info=True)
    ba = MergeJoin(cross=True)(b, a).as_table(all_info=True)
    assert ab.equals(ba)


@FAST
@given(sources("x", "A"), st.data())
def test_select_and_drop_tags_are_complements(s, data):
    tags = list(s.keys()[0])
    chosen = data.draw(st.lists(st.sampled_from(tags), unique=True)) if tags else []
    kept = SelectTagColumns(chosen)(s).as_table(columns={"source": True, "system_tags": True})
    dropped = DropTagColumns(chosen)(s).as_table(columns={"source": True, "system_tags": True})
    full = s.as_table(columns={"source": True, "system_tags": True})
    assert set(kept.column_names) | set(dropped.column_names) == set(full.column_names)
    assert set(kept.column_names) & set(dropped.column_names) == {
        c for c in full.column_names if c not in tags
    }
    for name in full.column_names:
        part = kept if name in kept.column_names else dropped
        assert part.column(name).equals(full.column(name))


@FAST
@given(st.integers(0, 5), st.sets(st.sampled_from(["p", "q", "r"]), min_size=1, max_size=2))
def test_select_and_drop_packets_are_complements(n, chosen):
    s = DictSource(
        [{"k": i, "p": i, "q": -i, "r": 2 * i} for i in range(n)],
        tag_columns=["k"],
        data_schema={"k": int, "p": int, "q": int, "r": int},
    )
    kept = SelectPacketColumns(sorted(chosen))(s).keys(columns={"source": True})[1]
    dropped = DropPacketColumns(sorted(chosen))(s).keys(columns={"source": True})[1]
    _, full = s.keys(columns={"source": True})
    assert set(kept).isdisjoint(dropped)
    assert set(kept) | set(dropped) == set(full)


@FAST
@given(sources("x", "A"), st.data())
def test_map_then_inverse_map_is_identity(s, data):
    tags = list(s.keys()[0])
    new = data.draw(st.permutations(["t1", "t2", "t3"]))
    tag_map = dict(zip(tags, new, strict=False))
    inverse = {v: k for k, v in tag_map.items()}
    out = MapTags(inverse)(MapTags(tag_map)(s)) if tag_map else s
    out = MapPackets({"renamed": "x"})(MapPackets({"x": "renamed"})(out))
    assert out.as_table(all_info=True).equals(s.as_table(all_info=True))


@FAST
@given(sources("x", "A"), st.integers(0, 4), st.booleans())
def test_batch_then_flatten_keeps_every_row(s, size, drop_partial):
    batched = Batch(size, drop_partial)(s).as_table(columns={"source": True, "system_tags": True})
    full = s.as_table(columns={"source": True, "system_tags": True})
    n = full.num_rows
    expected_rows = n - n % size if (drop_partial and size) else n
    for name in full.column_names:
        flat = pc.list_flatten(batched.column(name))
        assert flat.to_pylist() == full.column(name).to_pylist()[:expected_rows]
    if size:
        assert all(len(v) <= size for v in batched.column(full.column_names[0]).to_pylist())


@FAST
@given(sources("x", "A"), sources("y", "B"), sources("z", "C"))
def test_three_way_join_is_the_same_in_every_argument_order(a, b, c):
    join = Join(cross=True)
    expected = join(a, b, c).as_table(all_info=True)
    for args in [(a, c, b), (b, a, c), (b, c, a), (c, a, b), (c, b, a)]:
        assert join(*args).as_table(all_info=True).equals(expected)


@FAST
@given(sources("x", "A", min_tags=1), st.data())
def test_group_by_partitions_the_rows_into_sorted_groups(s, data):
    tags = list(s.keys()[0])
    by = data.draw(st.lists(st.sampled_from(tags), min_size=1, unique=True))
    key_order = [t for t in tags if t in by]
    view = {"source": True, "system_tags": True}
    grouped = GroupBy(by)(s).as_table(columns=view)
    full = s.as_table(columns=view)
    keys = [tuple(r[c] for c in key_order) for r in grouped.to_pylist()]
    assert keys == sorted(set(keys))  # one row per key, in key order
    assert set(keys) == {tuple(r[c] for c in key_order) for r in full.to_pylist()}
    for name in grouped.column_names:
        if name in by:
            continue
        flat = pc.list_flatten(grouped.column(name)).to_pylist()
        assert sorted(flat, key=repr) == sorted(full.column(name).to_pylist(), key=repr)


@FAST
@given(sources("x", "A"), st.data())
def test_moving_tags_to_the_packet_and_back_is_identity(s, data):
    tags = list(s.keys()[0])
    chosen = data.draw(st.lists(st.sampled_from(tags), unique=True)) if tags else []
    if not chosen:
        return
    back = PacketToTags(chosen)(TagsToPacket(chosen)(s))
    assert set(back.keys()[0]) == set(tags)
    restored = back.as_table(columns={"system_tags": True}).select(
        [*s.keys(columns={"system_tags": True})[0], "x"]
    )
    assert restored.to_pylist() == s.as_table(columns={"system_tags": True}).to_pylist()
