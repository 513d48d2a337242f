"""Block-backed rows: the same values, hidden columns and hashes as rows built from dicts."""

from pathlib import Path

import pyarrow as pa

from orcapod.data import Packet, Tag
from orcapod.data.row_block import RowBlock
from orcapod.sources import ArrowTableSource
from orcapod.types import ColumnConfig, Schema


def _rows(table: pa.Table, **kwargs: object) -> list[tuple[Tag, Packet]]:
    return list(ArrowTableSource(table, tag_columns=["id"], **kwargs).iter_packets())  # type: ignore[arg-type]


def test_stream_rows_equal_dict_built_rows_in_values_hidden_columns_and_hash() -> None:
    table = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int32()),
            "x": pa.array([1.5, None, 3.0]),
            "s": pa.array(["a", "b", None], pa.string()),
            "l": pa.array([[1], [], [2, 3]], pa.list_(pa.int16())),
        }
    )
    for tag, packet in _rows(table, source_id="src"):
        twin = Packet(packet.as_dict(ColumnConfig(source=True)), python_schema=packet.schema())
        assert packet == twin
        assert packet.content_hash() == twin.content_hash()
        assert packet.source_info() == twin.source_info()
        assert all(v.startswith("src::") for v in packet.source_info().values())
        assert tag.system_tags() and all(k.startswith("_tag_") for k in tag.system_tags())
        tag_twin = Tag(tag.as_dict(ColumnConfig(system_tags=True)), python_schema=tag.schema())
        assert tag == tag_twin and tag.system_tags() == tag_twin.system_tags()


def test_path_columns_hash_by_content_from_a_block(tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("hello")
    rows = _rows(pa.table({"id": [1], "p": pa.array([{"path": str(f)}])}))
    ((_, packet),) = rows
    assert packet["p"] == f
    assert packet.content_hash() == Packet({"p": f}).content_hash()


def test_derived_rows_hash_their_own_data_and_keep_hidden_columns() -> None:
    ((tag, packet),) = _rows(pa.table({"id": [7], "a": [1], "b": [2]}), source_id="src")
    info = packet.source_info()
    renamed = packet.rename({"a": "c"})
    assert renamed.as_dict() == {"c": 1, "b": 2}
    assert renamed.source_info() == {"c": info["a"], "b": info["b"]}
    assert renamed.content_hash() == Packet({"c": 1, "b": 2}).content_hash()
    updated = packet.update(a=5)
    assert updated.content_hash() == Packet({"a": 5, "b": 2}).content_hash()
    assert updated.source_info()["a"] is None and updated.source_info()["b"] == info["b"]
    selected = tag.with_columns(extra=1)
    assert selected.system_tags() == tag.system_tags()
    shown = selected.as_dict(ColumnConfig(system_tags=True))
    assert shown["extra"] == 1 and set(tag.system_tags()) <= set(shown)


def test_a_growing_block_without_a_table_hashes_rows_added_later() -> None:
    schema = Schema({"v": int})
    columns: dict[str, list[object]] = {"v": [1, 2]}
    block = RowBlock(columns, schema=schema)
    first = Packet._make_row(block, 1, schema)
    assert first.content_hash() == Packet({"v": 2}).content_hash()
    columns["v"].append(3)  # a row computed after the first hash
    later = Packet._make_row(block, 2, schema)
    assert later.content_hash() == Packet({"v": 3}).content_hash()
    assert block.content_hash(("v",), 0) == Packet({"v": 1}).content_hash()


def test_a_block_without_table_or_schema_falls_back_to_hashing_the_row() -> None:
    schema = Schema({"v": int})
    block = RowBlock({"v": [4]})
    assert block.content_hash(("v",), 0) is None
    assert Packet._make_row(block, 0, schema).content_hash() == Packet({"v": 4}).content_hash()
