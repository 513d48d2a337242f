"""What a node run reports: ``NodeType`` and ``NodeRunSummary``.

A run never looks clean when it lost rows: ``NodeRunSummary.failed`` counts them and the node
warns once per run with ``orcapod.errors.FailedRowsWarning`` (a ``UserWarning`` subclass, so
it is shown by default and can be filtered by class).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["NodeRunSummary", "NodeType"]


class NodeType(StrEnum):
    """The role of a node in a compiled pipeline."""

    SOURCE = "source"
    FUNCTION = "function"
    OPERATOR = "operator"


@dataclass(frozen=True)
class NodeRunSummary:
    """Per-node outcome of one ``run()``; every input row is counted exactly once.

    * ``computed``: rows whose function was called in this run and returned a packet;
    * ``reused``: rows served from earlier work (a recorded entry, or a result-cache hit);
    * ``filtered``: rows whose function returned None (computed now or recorded earlier);
    * ``failed``: rows whose function raised in this run (recorded; retried by the next run).

    ``superseded`` (a function node's run over its whole input that ended normally): which
    of the node's records its input no longer holds, as the run history keeps it - "" none,
    else the id of their snapshot in the pipeline's ``_superseded`` table
    (``orcapod.nodes.membership``); None when the run did not tell. Not compared.
    """

    label: str
    computed: int = 0
    reused: int = 0
    filtered: int = 0
    failed: int = 0
    superseded: str | None = field(default=None, compare=False)

    @property
    def total(self) -> int:
        return self.computed + self.reused + self.filtered + self.failed

    @property
    def ok(self) -> bool:
        """True when no row failed."""
        return self.failed == 0
