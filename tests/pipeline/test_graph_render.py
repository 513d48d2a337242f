"""Graph pictures as library functions: on a live Pipeline and on a store's catalog."""

import shutil

import pytest

from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.errors import GraphRenderError
from orcapod.pipeline import StoreView
from orcapod.pipeline.graph_render import (
    GraphNode,
    graph_nodes,
    render_image,
    to_dot,
    to_mermaid,
)
from orcapod.sources import DictSource


@function_pod("double")
def double(x: int) -> int:
    if x < 0:
        raise ValueError("negative")
    return 2 * x


@pytest.fixture
def ran(tmp_path):
    items = DictSource([{"k": i, "x": i - 1} for i in range(3)], tag_columns=["k"], label="items")
    pipeline = Pipeline("demo", DeltaTableDatabase(tmp_path / "store"))
    names = DictSource([{"k": i, "name": f"n{i}"} for i in range(3)], tag_columns=["k"])
    with pipeline:
        double.pod(items).join(names, label="joined")
    with pytest.warns(UserWarning):  # one row failed
        pipeline.run()
    return pipeline, tmp_path / "store"


def test_graph_nodes_of_a_live_pipeline(ran):
    pipeline, _ = ran
    nodes = {n.label: n for n in graph_nodes(pipeline)}
    assert nodes["items"].node_type == "source" and nodes["items"].rows == 3
    assert nodes["double"].upstreams == ("items",) and nodes["double"].rows == 2
    assert nodes["joined"].node_type == "operator" and nodes["joined"].rows == 2
    assert nodes["joined"].upstreams[0] == "double" and len(nodes["joined"].upstreams) == 2
    assert all(n.rows is None for n in graph_nodes(pipeline, rows=False))


def test_mermaid_of_a_live_pipeline_has_shapes_and_edges(ran):
    pipeline, _ = ran
    text = to_mermaid(pipeline)
    assert text.startswith("flowchart LR\n")
    assert '[("items<br/>source · 3 rows")]' in text
    assert '["double<br/>function · 2 rows"]' in text
    assert "{{" in text  # the operator node is a hexagon
    assert "subgraph" not in text


def test_the_catalog_adds_statuses(ran):
    _, store = ran
    text = to_mermaid(StoreView(store))
    assert '["double<br/>function · 2 rows · failed"]' in text
    assert "classDef failed" in text
    dot = to_dot(StoreView(store).nodes())
    assert '"demo.double" [label="double\\nfunction · 2 rows · failed", shape=box' in dot


def test_labels_are_escaped():
    node = GraphNode("p", 'a"b<c>', "function", rows=1)
    assert '["a#34;b#60;c#62;<br/>function · 1 row"]' in to_mermaid([node])
    assert '"p.a\\"b<c>" [label="a\\"b<c>\\nfunction · 1 row"' in to_dot([node])


def test_svg_and_png_through_graphviz(ran):
    assert shutil.which("dot"), "make test installs Graphviz's dot"
    pipeline, _ = ran
    assert b"<svg" in render_image(pipeline, "svg")
    assert render_image(pipeline, "png").startswith(b"\x89PNG")


def test_an_unknown_image_format_is_refused(ran):
    pipeline, _ = ran
    with pytest.raises(GraphRenderError, match="'svg' or 'png'"):
        render_image(pipeline, "gif")  # type: ignore[arg-type]


def test_something_else_is_not_drawn():
    with pytest.raises(TypeError, match="cannot draw a int"):
        graph_nodes([1])  # type: ignore[list-item]
