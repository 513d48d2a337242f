"""Every kind of node is a ``Node``: what an orchestrator runs, refreshes and flushes."""

from __future__ import annotations

from pathlib import Path

import pytest

from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase, InMemoryArrowDatabase
from orcapod.errors import PipelineError
from orcapod.nodes import FunctionNode, Node, NodeType, OperatorNode, SourceNode
from orcapod.operators import SelectPacketColumns
from orcapod.sources import DictSource


@function_pod("y")
def plus_one(x: int) -> int:
    return x + 1


@function_pod("z")
def twice(y: int) -> int:
    return 2 * y


def _source(n: int) -> DictSource:
    return DictSource([{"id": i, "x": i} for i in range(n)], tag_columns=["id"], source_id="s")


def test_every_node_type_is_a_node_with_its_type() -> None:
    source = SourceNode(_source(2))
    function = FunctionNode(plus_one.pod, source)
    operator = OperatorNode(SelectPacketColumns(["y"]), [function])
    for node, kind in ((source, NodeType.SOURCE), (function, NodeType.FUNCTION)):
        assert isinstance(node, Node) and node.node_type is kind and node.runnable
    assert isinstance(operator, Node) and operator.node_type is NodeType.OPERATOR


def test_refresh_makes_a_function_node_see_what_its_upstream_node_stored_since() -> None:
    db = InMemoryArrowDatabase()
    upstream = FunctionNode(plus_one.pod, _source(3), db)
    downstream = FunctionNode(twice.pod, upstream, db)
    assert downstream.run().total == 0  # the upstream node has stored nothing yet
    upstream.run()
    assert downstream.run().total == 0  # still the input rows it identified before
    downstream.refresh()
    assert downstream.run().computed == 3
    assert sorted(r["z"] for r in downstream.as_table().to_pylist()) == [2, 4, 6]


def test_a_pipeline_runs_nodes_and_a_read_only_node_says_why_it_cannot(tmp_path: Path) -> None:
    pipeline = Pipeline("p", DeltaTableDatabase(tmp_path / "store"))
    with pipeline:
        twice.pod(plus_one.pod(_source(3)))
    assert pipeline.run().computed == 6
    saved = tmp_path / "p.json"
    pipeline.save(saved)
    text = saved.read_text().replace("test_protocol", "no_such_module_anywhere")
    saved.write_text(text)
    loaded = Pipeline.load(saved)
    node = loaded.plus_one
    assert isinstance(node, Node) and not node.runnable
    with pytest.raises(PipelineError, match="cannot run"):
        loaded.run()
