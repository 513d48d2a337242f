"""The graph page's picture: a pipeline laid out left to right, drawn as inline SVG.

Layout. Computed here, in Python, so the web view needs no Graphviz: the nodes are put in
columns by the catalog's edges (a node's column is its longest path from a source, and a
source sits in the column just before its first reader, so a side input joined late does
not cross the nodes before it), and within a column they are ordered by the mean row of
their upstream nodes (one barycentre pass, which untangles the usual fan-in/fan-out
pipelines) and then by run order. Edges are cubic curves from the right side of a node to
the left side of the next. ``orcapod graph --format svg`` (Graphviz) stays the tool for a
printable picture; this one is built for the browser: every node is a link to its page.

Drawing. A node's shape says its type (source: a rounded "pill", operator: a hexagon,
function: a rectangle), its fill says its last run's status (``ok`` green, ``failed`` /
``error`` red, ``partial`` amber, ``running`` blue, ``not run`` grey), and it shows its label
and, for a function node, its computed / reused / filtered / failed counts (other nodes: the
rows they output). Text is escaped; sizes are fixed, so the picture grows with the graph and
the page scrolls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import quote

import networkx as nx

from orcapod.pipeline import NodeInfo

__all__ = ["GraphPicture", "draw_graph", "layout"]

NODE_W = 200
NODE_H = 78
GAP_X = 56
GAP_Y = 26
MARGIN = 16

STATUS_FILL = {
    "ok": "#e3f4e6",
    "failed": "#fbe1df",
    "error": "#fbe1df",
    "partial": "#fdf0d2",
    "interrupted": "#fdf0d2",
    "running": "#dde9fb",
    "not run": "#eef0f2",
}
STATUS_STROKE = {
    "ok": "#2f8f46",
    "failed": "#c9362b",
    "error": "#c9362b",
    "partial": "#c98a10",
    "interrupted": "#c98a10",
    "running": "#2f6fd1",
    "not run": "#8a939c",
}


@dataclass(frozen=True)
class GraphPicture:
    """An SVG document and its size."""

    svg: str
    width: int
    height: int


def layout(nodes: Sequence[NodeInfo]) -> dict[str, tuple[int, int]]:
    """Label -> (column, row) of every node (module docstring)."""
    graph = nx.DiGraph()
    order = {n.label: i for i, n in enumerate(nodes)}
    graph.add_nodes_from(order)
    for node in nodes:
        for upstream in node.upstreams:
            if upstream in order:
                graph.add_edge(upstream, node.label)
    column: dict[str, int] = {}
    if nx.is_directed_acyclic_graph(graph):
        for label in nx.topological_sort(graph):
            ups = [column[u] + 1 for u in graph.predecessors(label)]
            column[label] = max(ups, default=0)
        for label in order:  # a source sits just before its first reader
            downs = [column[d] for d in graph.successors(label)]
            if graph.in_degree(label) == 0 and downs:
                column[label] = max(0, min(downs) - 1)
    else:  # a catalog never holds a cycle; draw what it holds in run order all the same
        column = {label: i for i, label in enumerate(order)}
    columns: dict[int, list[str]] = {}
    for label in sorted(column, key=lambda lb: (column[lb], order[lb])):
        columns.setdefault(column[label], []).append(label)
    row: dict[str, float] = {}
    for c in sorted(columns):
        labels = columns[c]

        def weight(label: str) -> tuple[float, int]:
            ups = [row[u] for u in graph.predecessors(label) if u in row]
            return (sum(ups) / len(ups) if ups else float(order[label]), order[label])

        labels.sort(key=weight)
        for i, label in enumerate(labels):
            row[label] = i
    return {label: (column[label], int(row[label])) for label in column}


def _href(node: NodeInfo) -> str:
    return f"/node/{quote(node.pipeline, safe='')}/{quote(node.label, safe='')}"


def _counts(node: NodeInfo) -> tuple[str, str]:
    """The two lines of counts under a node's label."""
    if node.node_type == "function":
        return (
            f"{node.computed} computed · {node.reused} reused",
            f"{node.filtered} filtered · {node.failed} failed",
        )
    if node.rows is None:
        return "not run", ""
    return f"{node.rows} rows", ""


def _shape(node: NodeInfo, x: int, y: int, fill: str, stroke: str) -> str:
    width = 2.5 if node.status in ("failed", "error") else 1.5
    style = f'fill="{fill}" stroke="{stroke}" stroke-width="{width}"'
    if node.node_type == "source":
        return (
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="{NODE_H // 2}" {style}/>'
        )
    if node.node_type == "operator":
        d = 14
        points = (
            f"{x + d},{y} {x + NODE_W - d},{y} {x + NODE_W},{y + NODE_H // 2} "
            f"{x + NODE_W - d},{y + NODE_H} {x + d},{y + NODE_H} {x},{y + NODE_H // 2}"
        )
        return f'<polygon points="{points}" {style}/>'
    return f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="4" {style}/>'


def draw_graph(nodes: Sequence[NodeInfo]) -> GraphPicture:
    """The SVG picture of one pipeline's nodes (module docstring)."""
    places = layout(nodes)
    by_label = {n.label: n for n in nodes}
    columns = max((c for c, _ in places.values()), default=0) + 1
    rows = max((r for _, r in places.values()), default=0) + 1
    width = MARGIN * 2 + columns * NODE_W + (columns - 1) * GAP_X
    height = MARGIN * 2 + rows * NODE_H + (rows - 1) * GAP_Y

    def corner(label: str) -> tuple[int, int]:
        c, r = places[label]
        return MARGIN + c * (NODE_W + GAP_X), MARGIN + r * (NODE_H + GAP_Y)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="pipeline graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#7b8590"/></marker></defs>',
    ]
    for node in nodes:
        for upstream in node.upstreams:
            if upstream not in places:
                continue
            x1, y1 = corner(upstream)
            x2, y2 = corner(node.label)
            x1, y1 = x1 + NODE_W, y1 + NODE_H // 2
            y2 = y2 + NODE_H // 2
            mid = (x1 + x2) // 2
            parts.append(
                f'<path class="edge" d="M {x1} {y1} C {mid} {y1}, {mid} {y2}, {x2 - 2} {y2}" '
                'fill="none" stroke="#7b8590" stroke-width="1.4" marker-end="url(#arrow)"/>'
            )
    for label in places:
        node = by_label[label]
        x, y = corner(label)
        status = node.status if node.status in STATUS_FILL else "not run"
        fill, stroke = STATUS_FILL[status], STATUS_STROKE[status]
        name = escape(label)
        title = escape(f"{node.node_type} {label}: {node.status}")
        first, second = _counts(node)
        parts.append(
            f'<a href="{escape(_href(node))}" class="node node-{escape(node.node_type)} '
            f'status-{escape(status.replace(" ", "-"))}" data-label="{name}">'
            f"<title>{title}</title>"
            + _shape(node, x, y, fill, stroke)
            + f'<text x="{x + NODE_W // 2}" y="{y + 18}" class="node-type">'
            f"{escape(node.node_type)} · {escape(node.status)}</text>"
            f'<text x="{x + NODE_W // 2}" y="{y + 36}" class="node-label">{name}</text>'
            f'<text x="{x + NODE_W // 2}" y="{y + 53}" class="node-counts">'
            f"{escape(first)}</text>"
            f'<text x="{x + NODE_W // 2}" y="{y + 68}" class="node-counts">'
            f"{escape(second)}</text></a>"
        )
    parts.append("</svg>")
    return GraphPicture("".join(parts), width, height)
