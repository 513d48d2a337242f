"""Layer 9: nodes — pods and streams bound into a compiled, persistent pipeline.

``SourceNode`` (a leaf stream), ``FunctionNode`` (a function pod with provenance records and
a result cache), ``OperatorNode`` (an operator, optionally logging or replaying its rows); all
satisfy ``Node`` (label, type, ``refresh`` / ``run`` / ``flush``), which is what a pipeline
runs.

``node.as_source()`` reads a node's stored results as a ``orcapod.sources.DerivedSource``.
"""

from orcapod.nodes.function_node import FunctionNode
from orcapod.nodes.operator_node import OperatorNode
from orcapod.nodes.protocol import Node
from orcapod.nodes.source_node import SourceNode
from orcapod.nodes.summary import NodeRunSummary, NodeType

__all__ = [
    "FunctionNode",
    "Node",
    "NodeRunSummary",
    "NodeType",
    "OperatorNode",
    "SourceNode",
]
