"""The graph picture's layout: left to right by dependency, side inputs placed late."""

from __future__ import annotations

from orcapod.pipeline import NodeInfo
from orcapod.ui.graph_svg import draw_graph, layout


def node(label: str, node_type: str, *upstreams: str, status: str = "ok") -> NodeInfo:
    return NodeInfo(
        pipeline="p",
        label=label,
        node_type=node_type,
        tables={},
        tag_schema={},
        packet_schema={},
        upstreams=upstreams,
        last_run=None,
        updated_at=None,
        rows=3,
        status=status,
    )


def test_columns_follow_the_longest_path_and_a_side_input_sits_before_its_reader():
    nodes = [
        node("scans", "source"),
        node("segment", "function", "scans"),
        node("exposures", "source"),
        node("Join", "operator", "segment", "exposures"),
        node("measure", "function", "Join"),
    ]
    places = layout(nodes)
    assert {label: column for label, (column, _) in places.items()} == {
        "scans": 0,
        "segment": 1,
        "exposures": 1,
        "Join": 2,
        "measure": 3,
    }
    assert places["segment"][1] != places["exposures"][1]


def test_nodes_link_to_their_pages_and_labels_are_escaped():
    picture = draw_graph([node("a<b>", "source"), node("f", "function", "a<b>", status="failed")])
    assert 'href="/node/p/a%3Cb%3E"' in picture.svg
    assert "a&lt;b&gt;" in picture.svg and "<b>" not in picture.svg
    assert 'class="node node-function status-failed"' in picture.svg
    assert picture.svg.count('class="edge"') == 1
