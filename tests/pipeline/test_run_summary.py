"""PipelineRunSummary: failures propagate visibly as ``partial`` downstream nodes."""

from __future__ import annotations

from orcapod.nodes import NodeRunSummary, NodeType
from orcapod.pipeline import PipelineRunSummary

TYPES = {
    "src": NodeType.SOURCE,
    "a": NodeType.FUNCTION,
    "b": NodeType.FUNCTION,
    "c": NodeType.OPERATOR,
    "d": NodeType.FUNCTION,
    "side": NodeType.FUNCTION,
}
EDGES = {"a": ["src"], "b": ["a"], "c": ["b"], "d": ["c"], "side": ["src"]}


def summary(failed_in: str | None) -> PipelineRunSummary:
    nodes = {
        label: NodeRunSummary(label, computed=3, failed=1 if label == failed_in else 0)
        for label in TYPES
    }
    return PipelineRunSummary("p", nodes, TYPES, EDGES)


def test_nodes_below_failed_rows_are_partial_transitively():
    result = summary("a")
    assert [result.status(label) for label in TYPES] == [
        "ok",
        "failed",
        "partial",
        "partial",
        "partial",
        "ok",
    ]
    assert result.partial_nodes == ("b", "c", "d") and result.failed_nodes == ("a",)


def test_the_table_shows_a_status_column_only_when_something_is_not_ok():
    assert "status" not in str(summary(None)).splitlines()[1]
    text = str(summary("b"))
    assert text.splitlines()[0].endswith("1 row(s) FAILED, 2 node(s) partial")
    assert text.splitlines()[1].split()[-1] == "status"
    lines = {line.split()[0]: line.split()[-1] for line in text.splitlines()[2:]}
    assert lines == {
        "src": "ok",
        "a": "ok",
        "b": "failed",
        "c": "partial",
        "d": "partial",
        "side": "ok",
    }


def test_without_edges_no_node_is_partial():
    nodes = {"a": NodeRunSummary("a", failed=1), "b": NodeRunSummary("b", computed=1)}
    result = PipelineRunSummary("p", nodes, {"a": NodeType.FUNCTION, "b": NodeType.FUNCTION})
    assert result.status("b") == "ok"


def test_the_rows_column_is_the_rows_a_node_outputs():
    nodes = {"a": NodeRunSummary("a", computed=2, reused=3, filtered=1, failed=4)}
    result = PipelineRunSummary("p", nodes, {"a": NodeType.FUNCTION})
    assert result.rows() == [("a", "function", 2, 3, 1, 4, 5)]
    header, line = str(result).splitlines()[1:3]
    assert header.split()[6] == "rows" and line.split()[6] == "5"
