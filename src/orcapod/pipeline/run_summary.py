"""``PipelineRunSummary``: the per-node outcome of one ``Pipeline.run()``.

A read-only mapping ``label -> NodeRunSummary`` in run (topological) order, with totals over
the function nodes (the only nodes that compute values) and a readable ``__str__`` table, so a
run that lost rows never looks like a clean one. In the table, source and operator nodes show
only their row count: they restructure rows, they never run user code.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from orcapod.nodes.summary import NodeRunSummary, NodeType

__all__ = ["PipelineRunSummary"]


class PipelineRunSummary(Mapping[str, NodeRunSummary]):
    """Per-node summaries of one run (``summary["compute_bmi"].computed``) plus totals."""

    def __init__(
        self,
        pipeline_name: str,
        summaries: Mapping[str, NodeRunSummary],
        node_types: Mapping[str, NodeType],
    ) -> None:
        self.pipeline_name = pipeline_name
        self._summaries = dict(summaries)
        self._types = {label: node_types[label] for label in self._summaries}

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
        """``(label, node type, computed, reused, filtered, failed, total)`` per node."""
        return [
            (
                label,
                self._types[label].value,
                s.computed,
                s.reused,
                s.filtered,
                s.failed,
                s.total,
            )
            for label, s in self._summaries.items()
        ]

    def __str__(self) -> str:
        header = ("node", "type", "computed", "reused", "filtered", "failed", "rows")
        body = []
        for row in self.rows():
            cells = [str(v) for v in row]
            if self._types[row[0]] is not NodeType.FUNCTION:
                cells[2:6] = ["-"] * 4  # sources and operators never run user code
            body.append(tuple(cells))
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

        def line(cells: tuple[str, ...]) -> str:
            first = [cells[0].ljust(widths[0]), cells[1].ljust(widths[1])]
            rest = [c.rjust(w) for c, w in zip(cells[2:], widths[2:], strict=True)]
            return "  ".join(first + rest).rstrip()

        status = "ok" if self.ok else f"{self.failed} row(s) FAILED"
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
