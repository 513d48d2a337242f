"""The operator contract: lazy output, early validation, recording, identity."""

import polars as pl
import pytest

from orcapod.errors import InputValidationError
from orcapod.hashing import hash_object
from orcapod.operators import (
    Batch,
    DropPacketColumns,
    Join,
    MapTags,
    PolarsFilter,
    SelectTagColumns,
    SemiJoin,
)
from orcapod.operators.base import OperatorStream, output_identity
from orcapod.sources import DictSource
from orcapod.streams import ArrowTableStream
from orcapod.streams.tracking import InvocationKind, recording


class Recorder:
    def __init__(self):
        self.invocations = []

    def record(self, invocation):
        self.invocations.append(invocation)


def test_application_is_lazy_and_computes_once(subjects, sessions):
    calls = []
    join = Join()
    original = join._compute

    def counting(*args):
        calls.append(1)
        return original(*args)

    join._compute = counting
    out = join(subjects, sessions)
    assert isinstance(out, OperatorStream)
    assert out.keys() == (("subject", "session"), ("age", "weight"))
    assert calls == []
    first = out.as_table()
    assert out.as_table().equals(first)
    assert len(list(out)) == first.num_rows == 3
    assert calls == [1]


def test_bad_input_fails_at_application_not_iteration(subjects):
    with pytest.raises(InputValidationError, match="nope"):
        SelectTagColumns(["nope"])(subjects)
    with pytest.raises(InputValidationError, match="exactly 2"):
        SemiJoin()(subjects)
    with pytest.raises(InputValidationError, match="not a stream.*DictSource"):
        Join()(subjects, {"subject": "s1"})
    with pytest.raises(InputValidationError, match=r"polars DataFrame.*DataFrameSource\(df"):
        Batch(2)(pl.DataFrame({"subject": ["s1"]}))


def test_every_application_is_recorded_with_its_inputs(subjects, sessions):
    recorder = Recorder()
    with recording(recorder):
        joined = subjects.join(sessions, label="both")
        batched = Batch(2)(joined)
    assert [i.kind for i in recorder.invocations] == [InvocationKind.OPERATOR] * 2
    first, second = recorder.invocations
    assert isinstance(first.pod, Join) and first.inputs == (subjects, sessions)
    assert first.output is joined and first.label == "both"
    assert second.inputs == (joined,) and second.output is batched


def test_static_process_matches_the_lazy_stream(subjects, sessions):
    lazy = Join()(subjects, sessions)
    eager = Join().static_process(subjects, sessions)
    assert isinstance(eager, ArrowTableStream)
    assert eager.as_table(all_info=True).equals(lazy.as_table(all_info=True))
    assert eager.content_hash() == lazy.content_hash()
    assert eager.pipeline_hash() == lazy.pipeline_hash()


def test_operator_output_schema_is_a_prediction(subjects, sessions):
    tags, packets = Join().output_schema(subjects, sessions)
    assert tags == {"subject": str, "session": int}
    assert packets == {"age": int, "weight": float}


def test_commutative_identity_ignores_argument_order(subjects, sessions):
    assert Join()(subjects, sessions).content_hash() == Join()(sessions, subjects).content_hash()
    assert Join()(subjects, sessions).pipeline_hash() == Join()(sessions, subjects).pipeline_hash()


def test_ordered_identity_keeps_argument_order(subjects, sessions):
    left = SemiJoin()(subjects, sessions)
    right = SemiJoin()(sessions, subjects)
    assert left.content_hash() != right.content_hash()
    assert left.pipeline_hash() != right.pipeline_hash()


def test_content_hash_follows_data_and_pipeline_hash_does_not(subjects):
    other = DictSource([{"subject": "s9", "age": 1}], tag_columns=["subject"], source_id="subjects")
    a, b = Batch(2)(subjects), Batch(2)(other)
    assert a.content_hash() != b.content_hash()
    assert a.pipeline_hash() == b.pipeline_hash()


def test_parameters_are_part_of_identity(subjects):
    assert Batch(2)(subjects).content_hash() != Batch(3)(subjects).content_hash()
    assert Batch(2)(subjects).pipeline_hash() != Batch(3)(subjects).pipeline_hash()
    assert Batch(2).content_hash() == Batch(2).content_hash()
    assert (
        MapTags({"subject": "s"}).content_hash()
        != MapTags({"subject": "s"}, drop_unmapped=True).content_hash()
    )


def test_commutative_inputs_are_a_multiset_not_a_set(subjects):
    h = subjects.content_hash()
    assert output_identity(Join(), [h]) != output_identity(Join(), [h, h])


def test_operators_with_expressions_hash_stably():
    a = PolarsFilter([pl.col("age") > 30], {"subject": "s1"})
    b = PolarsFilter([pl.col("age") > 30], {"subject": "s1"})
    c = PolarsFilter([pl.col("age") > 31], {"subject": "s1"})
    assert hash_object(a.identity_structure()) == hash_object(b.identity_structure())
    assert a.content_hash() == b.content_hash() != c.content_hash()


def test_config_round_trip():
    for op in [
        Batch(3, drop_partial_batch=True),
        DropPacketColumns(["a"], strict=False),
        MapTags({"a": "b"}),
        PolarsFilter([pl.col("x") > 1], {"y": 2}),
    ]:
        config = op.to_config()
        rebuilt = type(op).from_config(config)
        assert rebuilt.content_hash() == op.content_hash()
        assert config["class_name"] == type(op).__name__


def test_output_stream_exposes_operator_and_upstreams(subjects, sessions):
    out = Join()(subjects, sessions)
    assert isinstance(out.operator, Join)
    assert out.upstreams == (subjects, sessions)
    assert "lazy" in repr(out)
    out.as_table()
    assert "computed" in repr(out)


def test_outputs_chain_into_other_operators(subjects, sessions):
    out = (
        subjects.join(sessions)
        .map_packets({"weight": "kg"})
        .polars_filter(pl.col("kg") > 75)
        .select_tag_columns("subject")
    )
    assert out.as_table().to_pylist() == [
        {"subject": "s2", "age": 41, "kg": 82.5},
        {"subject": "s2", "age": 41, "kg": 81.0},
    ]


class PlainStream:
    """A stream implemented outside orcapod (only the protocol, no StreamBase)."""

    def __init__(self, inner):
        self._inner = inner

    def keys(self, columns=None, all_info=False):
        return self._inner.keys(columns, all_info)

    def output_schema(self, columns=None, all_info=False):
        return self._inner.output_schema(columns, all_info)

    def iter_packets(self):
        return self._inner.iter_packets()

    def as_table(self, columns=None, all_info=False):
        return self._inner.as_table(columns, all_info)

    def content_hash(self):
        return self._inner.content_hash()

    def pipeline_hash(self):
        return self._inner.pipeline_hash()


def test_protocol_streams_from_outside_are_accepted(subjects, sessions, assert_prediction_matches):
    plain = PlainStream(sessions)
    out = Join()(subjects, plain)
    assert out.as_table(columns={"source": True}).equals(
        Join()(subjects, sessions).as_table(columns={"source": True})
    )
    assert_prediction_matches(Join()(subjects, plain))


def test_schema_is_the_prediction_before_and_after_computing():
    # an inner join drops the only null, yet the stream's schema does not change when computed
    a = DictSource([{"k": 1, "x": 1.0}, {"k": 2, "x": None}], tag_columns=["k"])
    b = DictSource([{"k": 1, "y": 2}], tag_columns=["k"])
    out = Join()(a, b)
    before = out.output_schema()
    assert before[1]["x"] == float | None
    out.as_table()
    assert out.output_schema() == before


def test_operator_output_names_its_producer_and_upstreams(subjects, sessions):
    join = Join()
    joined = join(subjects, sessions)
    assert joined.producer is join and joined.upstreams == (subjects, sessions)


def test_operator_uri_and_argument_symmetry(subjects, sessions):
    assert Join().uri == ("Join", Join().content_hash().to_hex())
    assert Join().argument_symmetry([subjects, sessions]) == frozenset({sessions, subjects})
    assert SemiJoin().argument_symmetry([subjects, sessions]) == (subjects, sessions)
