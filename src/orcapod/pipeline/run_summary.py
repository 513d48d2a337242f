"""``PipelineRunSummary``: the per-node outcome of one ``Pipeline.run()``.

A read-only mapping ``label -> NodeRunSummary`` in run (topological) order, with totals over
the function nodes (the only nodes that compute values) and a readable ``__str__`` table, so a
run that lost rows never looks like a clean one. In the table, source and operator nodes show
only their row count: they restructure rows, they never run user code.

Failures propagate visibly: ``status(label)`` is ``"failed"`` for a node with failed rows of
its own, ``"partial"`` for a node downstream (directly or not) of a node with failed rows -
it saw only part of its input - and ``"ok"`` otherwise. The table gains a ``status`` column
when any node is not ok.

Decision: the table's ``rows`` column is the rows the node outputs after the run (computed
plus reused: failed and filtered rows are not output), the same number ``orcapod status``,
``orcapod graph`` and ``orcapod show`` give for the node; each input row is counted once in
computed / reused / filtered / failed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from orcapod.nodes.summary import NodeRunSummary, NodeType

__all__ = ["PipelineRunSummary"]

_NOT_OK = ("failed", "partial")


class PipelineRunSummary(Mapping[str, NodeRunSummary]):
    """Per-node summaries of one run (``summary["compute_bmi"].computed``) plus totals."""

    def __init__(
        self,
        pipeline_name: str,
        summaries: Mapping[str, NodeRunSummary],
        node_types: Mapping[str, NodeType],
        upstreams: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.pipeline_name = pipeline_name
        self._summaries = dict(summaries)
        self._types = {label: node_types[label] for label in self._summaries}
        self._upstreams = {k: tuple(v) for k, v in (upstreams or {}).items()}
        self._status = self._statuses()

    def _statuses(self) -> dict[str, str]:
        """Per node: failed, partial or ok (the run order is topological)."""
        status: dict[str, str] = {}
        for label, s in self._summaries.items():
            if s.failed:
                status[label] = "failed"
            elif any(status.get(u) in _NOT_OK for u in self._upstreams.get(label, ())):
                status[label] = "partial"
            else:
                status[label] = "ok"
        return status

    def status(self, label: str) -> str:
        """``"ok"``, ``"failed"`` (own rows failed) or ``"partial"`` (an upstream node's rows
        failed, so this node saw part of its input)."""
        return self._status[label]

    @property
    def partial_nodes(self) -> tuple[str, ...]:
        """Nodes whose own rows are fine but that lie downstream of failed rows."""
        return tuple(label for label, st in self._status.items() if st == "partial")

    def __getitem__(self, label: str) -> NodeRunSummary:
        return self._summaries[label]

    def __iter__(self) -> Iterator[str]:
        return iter(self._summaries)

    def __len__(self) -> int:
        return len(self._summaries)

    def node_type(self, label: str) -> NodeType:
        return self._types[label]

    def _function_total(self, field: str) -> int:
        return sum(
            getattr(s, field)
            for label, s in self._summaries.items()
            if self._types[label] is NodeType.FUNCTION
        )

    @property
    def computed(self) -> int:
        """Rows computed in this run, over all function nodes."""
        return self._function_total("computed")

    @property
    def reused(self) -> int:
        """Rows served from earlier work, over all function nodes."""
        return self._function_total("reused")

    @property
    def filtered(self) -> int:
        return self._function_total("filtered")

    @property
    def failed(self) -> int:
        """Rows that failed in this run, over every node."""
        return sum(s.failed for s in self._summaries.values())

    @property
    def failed_nodes(self) -> tuple[str, ...]:
        return tuple(label for label, s in self._summaries.items() if s.failed)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def rows(self) -> list[tuple[str, str, int, int, int, int, int]]:
        """``(label, node type, computed, reused, filtered, failed, rows)`` per node, ``rows``
        being the rows the node outputs (computed + reused; module docstring)."""
        return [
            (
                label,
                self._types[label].value,
                s.computed,
                s.reused,
                s.filtered,
                s.failed,
                s.computed + s.reused,
            )
            for label, s in self._summaries.items()
        ]

    def __str__(self) -> str:
        header: tuple[str, ...] = (
            "node",
            "type",
            "computed",
            "reused",
            "filtered",
            "failed",
            "rows",
        )
        with_status = any(st != "ok" for st in self._status.values())
        if with_status:
            header = (*header, "status")
        body = []
        for row in self.rows():
            cells = [str(v) for v in row]
            if self._types[row[0]] is not NodeType.FUNCTION:
                cells[2:6] = ["-"] * 4  # sources and operators never run user code
            if with_status:
                cells.append(self._status[row[0]])
            body.append(tuple(cells))
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

        def line(cells: tuple[str, ...]) -> str:
            first = [cells[0].ljust(widths[0]), cells[1].ljust(widths[1])]
            rest = [c.rjust(w) for c, w in zip(cells[2:7], widths[2:7], strict=True)]
            last = [c.ljust(w) for c, w in zip(cells[7:], widths[7:], strict=True)]
            return "  ".join(first + rest + last).rstrip()

        status = "ok" if self.ok else f"{self.failed} row(s) FAILED"
        if self.partial_nodes:
            status += f", {len(self.partial_nodes)} node(s) partial"
        lines = [
            f"pipeline {self.pipeline_name!r}: {self.computed} computed, {self.reused} reused, "
            f"{self.filtered} filtered, {status}",
            line(header),
            *(line(r) for r in body),
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"PipelineRunSummary({self.pipeline_name!r}, computed={self.computed}, "
            f"reused={self.reused}, filtered={self.filtered}, failed={self.failed})"
        )
