"""The public API that code written for the earlier orcapod relies on, used as such code
uses it: one test per compatibility item (sources, contexts, datagrams from Arrow, the source
registry, schema helpers, DerivedSource, stream provenance, hash forms, system constants,
executor errors)."""

import logging

import polars as pl
import pyarrow as pa
import pytest

import orcapod
from orcapod.contexts import DataContext, get_available_contexts, resolve_context
from orcapod.data import Datagram, Packet, Tag
from orcapod.databases import InMemoryArrowDatabase
from orcapod.errors import ExecutorError
from orcapod.functions import PythonPacketFunction, function_pod
from orcapod.nodes import FunctionNode
from orcapod.sources import (
    GLOBAL_SOURCE_REGISTRY,
    ArrowTableSource,
    DerivedSource,
    DictSource,
    SourceRegistry,
)
from orcapod.streams import ArrowTableStream
from orcapod.system_constants import constants
from orcapod.types import ContentHash, Schema


@pytest.fixture
def table():
    return pa.table({"subject": ["s1", "s2"], "weight": [70.0, None], "height": [1.75, 1.8]})


def test_arrow_table_source_with_infer_nullable(table):
    source = ArrowTableSource(table, tag_columns=["subject"], infer_nullable=True)
    tag_schema, packet_schema = source.output_schema()
    assert tag_schema == Schema({"subject": str})
    assert packet_schema == Schema({"weight": float | None, "height": float})
    assert [p["height"] for _, p in source] == [1.75, 1.8]
    declared = ArrowTableSource(table, tag_columns=["subject"], infer_nullable=False)
    assert declared.output_schema()[1]["height"] == float | None


def test_contexts_and_the_data_context_keyword(table):
    context = resolve_context()
    assert isinstance(context, DataContext) and context.version in get_available_contexts()
    for made in (
        Datagram({"a": 1}, data_context=context),
        Tag({"a": 1}, data_context=context.version),
        Packet({"a": 1}, data_context=context.context_key),
        ArrowTableSource(table, ["subject"], data_context=context),
        DictSource([{"a": 1, "b": 2}], ["a"], data_context=context),
        ArrowTableStream(table, ["subject"], data_context=context),
    ):
        assert made.data_context_key == context.context_key
        assert made.data_context == context


def test_datagrams_from_arrow_tables_and_batches():
    table = pa.table({"a": [1], "b": ["x"], "_tag_source_id::h": ["src"]})
    tag = Tag(table)
    assert tag.as_dict() == {"a": 1, "b": "x"} and tag.system_tags() == {"_tag_source_id::h": "src"}
    packet = Packet(pa.table({"v": [2.5], "_source_v": ["src::row_0::v"]}).to_batches()[0])
    assert packet.source_info() == {"v": "src::row_0::v"}
    datagram = Datagram(pa.table({"a": [1]}), meta_info={"run": 1})
    assert datagram.get_meta_value("run") == 1
    assert datagram.content_hash() == Datagram({"a": 1}).content_hash()
    assert datagram.arrow_schema().field("a").type == pa.int64()


def test_source_registry(table):
    registry = SourceRegistry()
    first = ArrowTableSource(table, ["subject"], source_id="weights")
    second = ArrowTableSource(table.slice(0, 1), ["subject"], source_id="weights")
    registry.register("weights", first)
    registry.register("weights", second)  # the first registration wins
    assert registry.get("weights") is first
    assert registry.replace("weights", second) is first
    assert registry.list_ids() == ["weights"] and dict(registry.items()) == {"weights": second}
    assert registry.unregister("weights") is second and registry.get_optional("weights") is None
    with pytest.raises(KeyError):
        registry.get("weights")
    assert isinstance(GLOBAL_SOURCE_REGISTRY, SourceRegistry)


def test_registering_another_source_under_a_taken_id_logs_a_warning(table, caplog):
    registry = SourceRegistry()
    registry.register(ArrowTableSource(table, ["subject"], source_id="w"))
    with caplog.at_level(logging.WARNING):
        registry.register(ArrowTableSource(table.slice(1), ["subject"], source_id="w"))
    assert "already registered" in caplog.text


def test_schema_helpers():
    schema = Schema({"x": int, "y": str}, optional_fields=["y"])
    assert schema.is_compatible_with({"x": int, "y": str, "z": float})
    assert not schema.is_compatible_with({"x": int})
    assert schema.required_fields == ("x",) and schema.optional_fields == {"y"}
    assert schema.as_required().optional_fields == frozenset()
    assert schema.select("x") == {"x": int} and schema.drop("x") == {"y": str}
    assert schema.merge(Schema({"z": float})) == {"x": int, "y": str, "z": float}
    assert schema.with_values({"x": float}) == {"x": float, "y": str}
    assert Schema.empty() == {} and not schema.is_required("y")


def test_derived_source_from_the_sources_package():
    @function_pod("double")
    def twice(weight: float) -> float:
        return 2 * weight

    source = DictSource([{"s": "a", "weight": 1.0}], ["s"], source_id="w")
    node = FunctionNode(twice.pod, source, pipeline_database=InMemoryArrowDatabase())
    node.run()
    derived = node.as_source()
    assert isinstance(derived, DerivedSource)
    assert DerivedSource(node).content_hash() == derived.content_hash()
    assert [p["double"] for _, p in derived] == [2.0]
    assert not hasattr(orcapod.nodes, "DerivedSource")  # one import path


def test_stream_lazy_frame_producer_and_upstreams(table):
    source = ArrowTableSource(table, ["subject"], source_id="w")
    assert source.producer is None and source.upstreams == ()
    assert isinstance(source.as_lazy_frame(), pl.LazyFrame)
    assert source.as_lazy_frame().collect().height == 2
    joined = source.join(DictSource([{"subject": "s1", "age": 30}], ["subject"]))
    assert joined.producer is not None and joined.upstreams[0] is source
    stream = ArrowTableStream(
        table,
        tag_columns=["subject"],
        source_info={"weight": "w::all::weight"},
        producer=joined.producer,
        upstreams=(source,),
    )
    assert stream.upstreams == (source,)
    assert {p.source_info()["weight"] for _, p in stream} == {"w::all::weight"}


def test_content_hash_to_base64():
    digest = bytes(range(32))
    assert ContentHash("arrow_v1", digest).to_base64() == (
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    )


def test_system_constants():
    assert constants.META_PREFIX == "__" and constants.SOURCE_PREFIX == "_source_"
    assert constants.SYSTEM_TAG_PREFIX == "_tag_" and constants.CONTEXT_KEY == "_context_key"
    assert constants.INPUT_PACKET_HASH_COL == "__input_packet_hash"


def test_an_incompatible_executor_is_a_type_error():
    def double(x: int) -> int:
        return 2 * x

    function = PythonPacketFunction(double, "y")
    with pytest.raises(TypeError):
        function.executor = object()  # type: ignore[assignment]
    with pytest.raises(ExecutorError):
        function.executor = object()  # type: ignore[assignment]
