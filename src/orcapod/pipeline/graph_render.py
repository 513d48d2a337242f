"""Pictures of a pipeline graph: Mermaid and Graphviz DOT text, SVG and PNG images.

    from orcapod.pipeline.graph_render import graph_nodes, to_mermaid, to_dot, render_image

    print(to_mermaid(pipeline))                     # a live or loaded Pipeline
    print(to_mermaid(StoreView("./store").nodes())) # what a store's catalog holds
    Path("graph.svg").write_bytes(render_image(pipeline, "svg"))

Every function takes a ``Pipeline``, a ``StoreView`` (every pipeline of the store), a
sequence of the catalog's ``NodeInfo`` (``StoreView.nodes()``), or ``GraphNode`` values
(``graph_nodes`` turns any of the others into those). A node shows its label, its type and,
when known, its row count and status; several pipelines become one subgraph each.

Decisions:

* Shapes say the node type: a source is a cylinder, an operator a hexagon, a function node a
  box. A node whose status is ``failed``, ``error`` or ``partial`` is drawn in red / orange
  (Mermaid ``classDef``, DOT ``color``).
* Row counts of a ``Pipeline`` come from its nodes' stored rows (``as_table()``; a source's
  rows, a function node's stored results) and are left out with ``rows=False``, since
  reading them costs a read of every node's table. Row counts of a store come from its
  catalog (the last run's output rows), which costs nothing.
* Mermaid and DOT are plain text written here (no dependency). SVG and PNG are drawn by
  Graphviz: the ``graphviz`` Python package (the ``graph`` extra) and Graphviz's ``dot``
  program. Both are imported / looked for only when an image is asked for; when one is
  missing ``render_image`` raises ``GraphRenderError`` saying what to install.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from orcapod.errors import GraphRenderError
from orcapod.nodes.summary import NodeType
from orcapod.pipeline.pipeline import Pipeline
from orcapod.pipeline.store_view import NodeInfo, StoreView

__all__ = ["GraphNode", "graph_nodes", "render_image", "to_dot", "to_mermaid"]

ImageFormat = Literal["svg", "png"]
#: statuses drawn as trouble (see the module docstring)
_BAD = {"failed": "#c62828", "error": "#c62828", "partial": "#ef6c00"}


@dataclass(frozen=True)
class GraphNode:
    """One node of a picture: where it is, what it is, and what it read."""

    pipeline: str
    label: str
    node_type: str  #: "source", "operator" or "function"
    upstreams: tuple[str, ...] = ()  #: labels in the same pipeline
    rows: int | None = None
    status: str | None = None

    @property
    def key(self) -> str:
        """``PIPELINE.LABEL``, unique in a store."""
        return f"{self.pipeline}.{self.label}"

    def caption(self) -> str:
        """The second line of the node's box: type, rows, and status when it is not ok."""
        parts = [self.node_type]
        if self.rows is not None:
            parts.append(f"{self.rows} row" + ("" if self.rows == 1 else "s"))
        if self.status and self.status not in ("ok", "not run"):
            parts.append(self.status)
        return " · ".join(parts)


GraphLike = Pipeline | StoreView | Iterable[NodeInfo] | Iterable[GraphNode]


def _pipeline_rows(node: Any) -> int | None:
    reader = getattr(node, "as_table", None)
    if reader is None:
        return None
    try:
        return int(reader().num_rows)
    except NotImplementedError:  # a node type that cannot show its rows
        return None


def _from_pipeline(pipeline: Pipeline, rows: bool) -> list[GraphNode]:
    graph = pipeline.graph_state
    return [
        GraphNode(
            pipeline=pipeline.name,
            label=label,
            node_type=node_type.value,
            upstreams=tuple(graph.upstream_labels(label)),
            rows=_pipeline_rows(node) if rows else None,
        )
        for label, node_type, node in graph.ordered()
    ]


def _from_info(info: NodeInfo) -> GraphNode:
    return GraphNode(
        pipeline=info.pipeline,
        label=info.label,
        node_type=info.node_type,
        upstreams=tuple(info.upstreams),
        rows=info.rows,
        status=info.status,
    )


def graph_nodes(graph: GraphLike, rows: bool = True) -> list[GraphNode]:
    """The nodes of ``graph`` (see the module docstring for what it may be)."""
    if isinstance(graph, Pipeline):
        return _from_pipeline(graph, rows)
    items: Iterable[Any] = graph.nodes() if isinstance(graph, StoreView) else graph
    out: list[GraphNode] = []
    for item in items:
        if isinstance(item, GraphNode):
            out.append(item)
        elif isinstance(item, NodeInfo):
            out.append(_from_info(item))
        else:
            raise TypeError(
                f"cannot draw a {type(item).__name__}: pass a Pipeline, a StoreView, "
                "StoreView.nodes() or GraphNode values"
            )
    if not rows:
        out = [GraphNode(n.pipeline, n.label, n.node_type, n.upstreams) for n in out]
    return out


def _by_pipeline(nodes: Sequence[GraphNode]) -> dict[str, list[GraphNode]]:
    groups: dict[str, list[GraphNode]] = {}
    for node in nodes:
        groups.setdefault(node.pipeline, []).append(node)
    return groups


def _edges(nodes: Sequence[GraphNode]) -> list[tuple[GraphNode, GraphNode]]:
    known = {node.key: node for node in nodes}
    edges = []
    for node in nodes:
        for up in node.upstreams:
            source = known.get(f"{node.pipeline}.{up}")
            if source is not None:
                edges.append((source, node))
    return edges


# Mermaid -------------------------------------------------------------------------------------

_MERMAID_SHAPES = {
    NodeType.SOURCE.value: ('[("', '")]'),
    NodeType.OPERATOR.value: ('{{"', '"}}'),
    NodeType.FUNCTION.value: ('["', '"]'),
}


def _mermaid_id(node: GraphNode, ids: dict[str, str]) -> str:
    found = ids.get(node.key)
    if found is None:
        base = re.sub(r"[^A-Za-z0-9_]", "_", node.key)
        found = f"n{len(ids)}_{base}"
        ids[node.key] = found
    return found


def _mermaid_text(text: str) -> str:
    """Text inside a quoted Mermaid label (quotes and markup characters as entities)."""
    return "".join(f"#{ord(c)};" if c in '"<>#' else c for c in text)


def to_mermaid(graph: GraphLike, rows: bool = True) -> str:
    """The graph as a Mermaid flowchart (render it on GitHub, in mkdocs, or mermaid.live)."""
    nodes = graph_nodes(graph, rows)
    ids: dict[str, str] = {}
    lines = ["flowchart LR"]
    groups = _by_pipeline(nodes)
    for pipeline, members in groups.items():
        indent = "    "
        if len(groups) > 1:
            lines.append(f'    subgraph p_{len(lines)}["{_mermaid_text(pipeline)}"]')
            indent = "        "
        for node in members:
            left, right = _MERMAID_SHAPES.get(node.node_type, ('["', '"]'))
            text = f"{_mermaid_text(node.label)}<br/>{_mermaid_text(node.caption())}"
            lines.append(f"{indent}{_mermaid_id(node, ids)}{left}{text}{right}")
        if len(groups) > 1:
            lines.append("    end")
    for source, target in _edges(nodes):
        lines.append(f"    {_mermaid_id(source, ids)} --> {_mermaid_id(target, ids)}")
    bad = sorted({n.status for n in nodes if n.status in _BAD}, key=str)
    for status in bad:
        lines.append(f"    classDef {status} stroke:{_BAD[status]},stroke-width:2px")
        marked = ",".join(_mermaid_id(n, ids) for n in nodes if n.status == status)
        lines.append(f"    class {marked} {status}")
    return "\n".join(lines) + "\n"


# DOT -----------------------------------------------------------------------------------------

_DOT_SHAPES = {
    NodeType.SOURCE.value: "cylinder",
    NodeType.OPERATOR.value: "hexagon",
    NodeType.FUNCTION.value: "box",
}


def _dot_string(text: str) -> str:
    """A DOT double-quoted string (JSON escaping is a subset DOT reads the same way)."""
    return json.dumps(text, ensure_ascii=False)


def to_dot(graph: GraphLike, rows: bool = True) -> str:
    """The graph in Graphviz DOT (draw it with ``dot -Tsvg``, or ``render_image``)."""
    nodes = graph_nodes(graph, rows)
    lines = [
        "digraph orcapod {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [color="#555555"];',
    ]
    groups = _by_pipeline(nodes)
    for index, (pipeline, members) in enumerate(groups.items()):
        indent = "  "
        if len(groups) > 1:
            lines.append(f"  subgraph cluster_{index} {{")
            lines.append(f"    label={_dot_string(pipeline)};")
            indent = "    "
        for node in members:
            attrs = [
                f"label={_dot_string(node.label + chr(10) + node.caption())}",
                f"shape={_DOT_SHAPES.get(node.node_type, 'box')}",
            ]
            if node.status in _BAD:
                attrs.append(f'color="{_BAD[node.status]}", penwidth=2')
            lines.append(f"{indent}{_dot_string(node.key)} [{', '.join(attrs)}];")
        if len(groups) > 1:
            lines.append("  }")
    for source, target in _edges(nodes):
        lines.append(f"  {_dot_string(source.key)} -> {_dot_string(target.key)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# Images --------------------------------------------------------------------------------------


def render_image(graph: GraphLike, format: ImageFormat = "svg", rows: bool = True) -> bytes:
    """The graph drawn by Graphviz as SVG or PNG bytes (needs the ``graphviz`` package and the
    ``dot`` program; ``GraphRenderError`` says which is missing)."""
    if format not in ("svg", "png"):
        raise GraphRenderError(f"cannot draw a graph as {format!r}: choose 'svg' or 'png'")
    try:
        import graphviz
    except ImportError as err:
        raise GraphRenderError(
            "drawing SVG or PNG needs the graphviz Python package: pip install "
            "'orcapod[graph]' (and Graphviz's dot program, e.g. apt-get install graphviz); "
            "Mermaid and DOT text need nothing"
        ) from err
    source = graphviz.Source(to_dot(graph, rows))
    try:
        data: bytes = source.pipe(format=format)
    except graphviz.ExecutableNotFound as err:
        raise GraphRenderError(
            "drawing SVG or PNG needs Graphviz's dot program, which is not on PATH: install "
            "Graphviz (apt-get install graphviz, brew install graphviz, conda install "
            "graphviz); Mermaid and DOT text need nothing"
        ) from err
    except graphviz.CalledProcessError as err:
        raise GraphRenderError(f"Graphviz's dot failed to draw the graph: {err}") from err
    return data
