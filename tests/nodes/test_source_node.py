import pytest

from orcapod.errors import InputValidationError
from orcapod.nodes import SourceNode
from orcapod.nodes.summary import NodeType
from orcapod.sources import DictSource
from orcapod.types import ColumnConfig

ROWS = [
    {"subject": "s1", "weight": 70.0},
    {"subject": "s2", "weight": 82.5},
]


@pytest.fixture
def source():
    return DictSource(ROWS, tag_columns=["subject"], source_id="weights")


def test_source_node_is_the_stream_it_wraps(source):
    node = SourceNode(source)
    assert node.content_hash() == source.content_hash()
    assert node.pipeline_hash() == source.pipeline_hash()
    assert node.output_schema() == source.output_schema()
    assert node.keys(all_info=True) == source.keys(all_info=True)
    everything = ColumnConfig(source=True, system_tags=True)
    assert node.as_table(everything).equals(source.as_table(everything))
    assert [(t.as_dict(), p.as_dict()) for t, p in node.iter_packets()] == [
        ({"subject": "s1"}, {"weight": 70.0}),
        ({"subject": "s2"}, {"weight": 82.5}),
    ]
    assert node.upstreams == ()
    assert node.stream is source
    assert node.node_type is NodeType.SOURCE


def test_label_defaults_to_the_sources_label_then_class_name(source):
    assert SourceNode(source).label == "DictSource"
    labelled = DictSource(ROWS, tag_columns=["subject"], label="weights")
    assert SourceNode(labelled).label == "weights"
    node = SourceNode(source, label="mine")
    assert node.label == "mine"
    node.label = "renamed"
    assert node.label == "renamed"


def test_run_computes_nothing_and_counts_rows(source):
    summary = SourceNode(source).run()
    assert (summary.computed, summary.failed, summary.total) == (0, 0, 2)


def test_rejects_what_is_not_a_stream():
    with pytest.raises(InputValidationError, match="needs a stream"):
        SourceNode([{"a": 1}])  # type: ignore[arg-type]
