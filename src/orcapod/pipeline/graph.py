"""``PipelineGraph``: compile recorded invocations into labelled nodes and a networkx DAG.

Compilation walks invocations in call order, which is already a topological order (a stream
exists before anything consumes it):

* every input stream resolves to a node — the node it *is* (a compiled node used again), the
  node compiled from the invocation that produced it (matched by object, then by content
  hash), or else a new ``SourceNode`` wrapping it (a source, or any stream made outside the
  recorded block);
* an invocation whose output content hash is already compiled adds nothing, so re-running a
  ``with`` block, or compiling again, is incremental and idempotent;
* otherwise a node is built by the pipeline's factory (function pod -> ``FunctionNode``,
  operator -> ``OperatorNode``).

Labels never change once given, so ``pipeline.compute_bmi`` keeps meaning the same node
across compiles. The rule:

* An explicit label (``pod(stream, label="bmi")``, ``stream.join(other, label="both")``) is
  the node's label, and must be free: a label already held by another node raises
  ``PipelineError`` naming both (a silent ``bmi_1`` would leave ``pipeline.bmi`` meaning a
  different node than the user named). Recording the very same call again is not a second
  node, so re-running a ``with`` block never collides with itself.
* Automatic labels — the function's name, the operator's class name, or for a source node
  the source's ``label``, else its ``source_id`` (unless that id is the default derived from
  the data's hash, which names nothing), else its class name — get the first free suffix
  ``_1``, ``_2``, … in compile order when taken: the same function applied to two inputs
  gives ``compute_bmi`` and ``compute_bmi_1``.

A batch of invocations is compiled all-or-nothing: nodes are staged and registered only when
every invocation compiled.

The graph is kept in plain dicts; networkx is imported only by ``to_networkx`` (what
``Pipeline.graph`` returns), so importing orcapod does not import it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from orcapod.errors import PipelineError
from orcapod.nodes.function_node import FunctionNode
from orcapod.nodes.operator_node import OperatorNode
from orcapod.nodes.source_node import SourceNode
from orcapod.nodes.summary import NodeType
from orcapod.sources import CachedSource, RootSource
from orcapod.streams.tracking import Invocation, InvocationKind
from orcapod.types.columns import SOURCE_ID_HASH_CHARS

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["NodeFactory", "PipelineGraph", "node_type_of"]

# (invocation, upstream nodes, label) -> node
NodeFactory = Callable[[Invocation, Sequence[Any], str], Any]


def node_type_of(node: Any) -> NodeType:
    if isinstance(node, FunctionNode):
        return NodeType.FUNCTION
    if isinstance(node, OperatorNode):
        return NodeType.OPERATOR
    if isinstance(node, SourceNode):
        return NodeType.SOURCE
    found = getattr(node, "node_type", None)
    if isinstance(found, NodeType):
        return found
    raise TypeError(f"{type(node).__name__} is not a pipeline node")


def source_label(stream: Any) -> str | None:
    """The automatic label of a leaf stream: its own label, else a meaningful source id."""
    own = getattr(stream, "label", None)
    if isinstance(own, str) and own:
        return own
    source_id = getattr(stream, "source_id", None)
    if not isinstance(source_id, str) or not source_id:
        return None
    origin = stream
    while isinstance(origin, CachedSource):
        origin = origin.source
    if isinstance(origin, RootSource):
        data = origin.identity_structure().get("data")
        if data is not None and source_id == data.to_hex(SOURCE_ID_HASH_CHARS):
            return None  # the default id: a hash, not a name
    return source_id


class PipelineGraph:
    """Labelled nodes in topological order, plus the lookup tables compile needs."""

    def __init__(self) -> None:
        self._nodes: dict[str, Any] = {}  # label -> node, in topological order
        self._types: dict[str, NodeType] = {}
        self._upstreams: dict[str, tuple[str, ...]] = {}
        self._by_hash: dict[str, str] = {}  # content hash string -> label
        self._by_id: dict[int, str] = {}  # id(stream or node) -> label
        self._keepalive: list[Any] = []  # objects whose id() is a key above

    # Read side ---------------------------------------------------------------------------
    @property
    def nodes(self) -> dict[str, Any]:
        return dict(self._nodes)

    def __contains__(self, label: object) -> bool:
        return label in self._nodes

    def __getitem__(self, label: str) -> Any:
        return self._nodes[label]

    def __len__(self) -> int:
        return len(self._nodes)

    def labels(self) -> list[str]:
        return list(self._nodes)

    def node_type(self, label: str) -> NodeType:
        return self._types[label]

    def upstream_labels(self, label: str) -> tuple[str, ...]:
        return self._upstreams[label]

    def ordered(self) -> list[tuple[str, NodeType, Any]]:
        """``(label, type, node)`` in topological order."""
        return [(label, self._types[label], node) for label, node in self._nodes.items()]

    def to_networkx(self) -> nx.DiGraph:
        """A fresh DAG: vertices are labels (attributes ``node``, ``node_type``)."""
        import networkx as nx

        graph = nx.DiGraph()
        for label, node in self._nodes.items():
            graph.add_node(label, node=node, node_type=self._types[label].value)
        for label, ups in self._upstreams.items():
            for up in ups:
                graph.add_edge(up, label)
        return graph

    def label_of(self, stream: Any) -> str | None:
        found = self._by_id.get(id(stream))
        if found is not None:
            return found
        try:
            key = stream.content_hash().to_string()
        except NotImplementedError:
            return None
        return self._by_hash.get(key)

    # Building ----------------------------------------------------------------------------
    def add_node(
        self, label: str, node: Any, upstreams: Iterable[str], aliases: Iterable[Any] = ()
    ) -> None:
        """Register a ready node (used by compile and by ``Pipeline.load``)."""
        if label in self._nodes:
            raise ValueError(f"label {label!r} is already used")
        self._nodes[label] = node
        self._types[label] = node_type_of(node)
        self._upstreams[label] = tuple(upstreams)
        for obj in (node, *aliases):
            self._by_id[id(obj)] = label
            self._keepalive.append(obj)
            with contextlib.suppress(NotImplementedError):  # a stream without identity
                self._by_hash.setdefault(obj.content_hash().to_string(), label)

    def unique_label(self, base: str, taken: Iterable[str] = ()) -> str:
        used = set(self._nodes) | set(taken)
        if base not in used:
            return base
        i = 1
        while f"{base}_{i}" in used:
            i += 1
        return f"{base}_{i}"

    def compile(
        self,
        invocations: Sequence[Invocation],
        make_function_node: NodeFactory,
        make_operator_node: NodeFactory,
        base_label: Callable[[Invocation], str],
    ) -> list[str]:
        """Add nodes for ``invocations``; return the new labels (all-or-nothing)."""
        staged = _Staging(self)
        for inv in invocations:
            if staged.lookup(inv.output) is not None:
                staged.alias(inv.output)
                continue
            upstream_labels = [staged.resolve(s) for s in inv.inputs]
            upstream_nodes = [staged.node(lbl) for lbl in upstream_labels]
            if inv.label:
                label = staged.explicit_label(inv.label)
            else:
                label = staged.unique_label(base_label(inv))
            if inv.kind is InvocationKind.FUNCTION_POD:
                node = make_function_node(inv, upstream_nodes, label)
            else:
                node = make_operator_node(inv, upstream_nodes, label)
            staged.add(label, node, upstream_labels, aliases=(inv.output,))
        return staged.commit()


class _Staging:
    """New nodes of one compile, visible to later invocations of the same batch."""

    def __init__(self, graph: PipelineGraph) -> None:
        self._graph = graph
        self._new: list[tuple[str, Any, list[str], tuple[Any, ...]]] = []
        self._labels: dict[str, Any] = {}
        self._by_id: dict[int, str] = {}
        self._by_hash: dict[str, str] = {}
        self._aliases: list[tuple[str, Any]] = []

    def lookup(self, stream: Any) -> str | None:
        found = self._by_id.get(id(stream)) or self._graph.label_of(stream)
        if found is not None:
            return found
        try:
            key = stream.content_hash().to_string()
        except NotImplementedError:
            return None
        return self._by_hash.get(key)

    def alias(self, stream: Any) -> None:
        label = self.lookup(stream)
        assert label is not None
        self._by_id[id(stream)] = label
        self._aliases.append((label, stream))

    def node(self, label: str) -> Any:
        return self._labels[label] if label in self._labels else self._graph[label]

    def unique_label(self, base: str) -> str:
        return self._graph.unique_label(base, taken=self._labels)

    def explicit_label(self, label: str) -> str:
        """``label`` itself; raises when another node holds it (see the module docstring)."""
        if label in self._labels or label in self._graph:
            holder = self.node(label)
            raise PipelineError(
                f"label {label!r} is already used by another node ({type(holder).__name__}); "
                "labels given with label= must be unique in a pipeline. Choose another label, "
                "or leave label= out to get an automatic, suffixed one"
            )
        return label

    def resolve(self, stream: Any) -> str:
        found = self.lookup(stream)
        if found is not None:
            return found
        node = SourceNode(stream)
        label = self.unique_label(source_label(stream) or node.label)
        node.label = label
        self.add(label, node, [], aliases=(stream,))
        return label

    def add(self, label: str, node: Any, upstreams: list[str], aliases: tuple[Any, ...]) -> None:
        self._labels[label] = node
        self._new.append((label, node, upstreams, aliases))
        for obj in (node, *aliases):
            self._by_id[id(obj)] = label
        for obj in (node, *aliases):
            try:
                self._by_hash.setdefault(obj.content_hash().to_string(), label)
            except NotImplementedError:
                continue

    def commit(self) -> list[str]:
        for label, node, upstreams, aliases in self._new:
            self._graph.add_node(label, node, upstreams, aliases)
        for label, stream in self._aliases:
            self._graph._by_id[id(stream)] = label
            self._graph._keepalive.append(stream)
        return [label for label, *_ in self._new]
