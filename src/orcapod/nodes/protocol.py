"""``Node``: what a pipeline runs, whatever the node's type.

Every node of a compiled pipeline (``SourceNode``, ``OperatorNode``, ``FunctionNode``, and a
node loaded read-only because its code cannot be imported) has a ``label`` and a
``node_type`` and can be asked to:

* ``refresh()``: forget what it has read of its inputs and of the store, so the next use
  reads them again (an input below a function node grows when that node runs; an orchestrator
  refreshes each node before running it);
* ``run(max_concurrency=None)``: do its work for the current input and report a
  ``NodeRunSummary`` (only a function node uses ``max_concurrency``);
* ``flush()``: commit whatever it has pending.

``runnable`` is False for a node that can only be read (``run`` then raises and says why).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from orcapod.nodes.summary import NodeRunSummary, NodeType

__all__ = ["Node"]


@runtime_checkable
class Node(Protocol):
    """A node of a compiled pipeline (see the module docstring)."""

    node_type: NodeType

    @property
    def label(self) -> str: ...

    @property
    def runnable(self) -> bool: ...

    def refresh(self) -> None: ...

    def run(self, max_concurrency: int | None = None) -> NodeRunSummary: ...

    def flush(self) -> None: ...
