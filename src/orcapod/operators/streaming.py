"""Streaming forms of operators: the same kernels applied chunk by chunk as rows arrive.

A streaming pipeline hands rows between nodes as Arrow chunks (tables in the input's full
layout, hidden columns included). ``streaming_form(operator, inputs, layout, ordered)`` gives
a ``ChunkOperator`` when the operator's meaning allows it to emit output before its whole input
has arrived, else None - the operator then waits for its whole input (a barrier) and computes
exactly as a synchronous run does. Every form calls the operator's own ``_compute`` on chunks,
so a row comes out with exactly the values and hidden columns it has in a synchronous run.

* Per-row column operations (``SelectTagColumns``, ``SelectPacketColumns``,
  ``DropTagColumns``, ``DropPacketColumns``, ``MapTags``, ``MapPackets``) and a one-input
  ``Join``: each chunk is transformed as it arrives (``RowWise``).
* ``PolarsFilter``: per chunk when every predicate is row-local (columns, literals,
  comparisons, boolean logic, casts, null / NaN / membership tests, simple string tests); a
  predicate that looks at other rows (``pl.col("x") > pl.col("x").mean()``, ``rank``,
  ``is_duplicated``, ...) would see only its chunk, so such a filter is a barrier.
* ``SemiJoin``: build-then-probe. The right input is collected whole (its rows decide the
  filter); then each left chunk is filtered as it arrives (left chunks that came earlier are
  kept and filtered once the right side is complete). Output order is the left's.
* ``Join`` of two inputs: a symmetric hash join. Each arriving chunk is matched against every
  row received so far from the other side (one vectorised hash join per chunk), so each
  matching pair is emitted exactly once, when the later of its two rows arrives. The output
  holds the synchronous join's rows, in arrival order rather than the synchronous order.
* ``Batch(batch_size > 0)``: each full batch is emitted as soon as its last row arrives, the
  partial last batch (unless ``drop_partial_batch``) when the input ends. Batches group
  consecutive rows, so this form needs its input in the synchronous order (``ordered``);
  below an unordered stream (a streaming join) it is a barrier.

Every other operator (``Join`` of three or more inputs, ``MergeJoin``, ``GroupBy``,
``PacketToTags``, ``TagsToPacket``, ``Batch(batch_size=0)``) is a barrier.

``ordered`` (per input) says whether the input's chunks arrive in the synchronous run's row
order; ``ChunkOperator.ordered`` says the same of the output: row-wise forms, ``Batch`` and
``SemiJoin`` keep their (left) input's order, a symmetric join does not.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from orcapod.data.conversion import schema_to_arrow
from orcapod.operators.base import InputInfo, Operator
from orcapod.operators.batch import Batch
from orcapod.operators.columns import _ColumnChoice, _Rename
from orcapod.operators.filters import PolarsFilter, _serialise
from orcapod.operators.join import Join
from orcapod.operators.layout import StreamLayout, normalise_table
from orcapod.operators.semi_join import SemiJoin

__all__ = ["ChunkOperator", "is_row_local", "streaming_form"]


class ChunkOperator:
    """An operator applied chunk by chunk (see the module docstring)."""

    #: the output arrives in the synchronous order (given ordered inputs)
    ordered: bool = True

    def __init__(
        self, operator: Operator, inputs: Sequence[InputInfo], layout: StreamLayout
    ) -> None:
        self.operator = operator
        self.inputs = tuple(inputs)
        self.layout = layout

    def _apply(self, tables: Sequence[pa.Table]) -> pa.Table:
        normalised = [
            normalise_table(t, i.layout) for t, i in zip(tables, self.inputs, strict=True)
        ]
        return self.operator._compute(self.inputs, normalised, self.layout)

    def push(self, side: int, chunk: pa.Table) -> list[pa.Table]:
        """Rows that can be emitted now that ``chunk`` arrived on input ``side``."""
        raise NotImplementedError

    def end(self, side: int) -> list[pa.Table]:
        """Rows that can be emitted now that input ``side`` ended."""
        return []


def _empty(layout: StreamLayout) -> pa.Table:
    return schema_to_arrow({n: layout.type_of(n) for n in layout.column_names}).empty_table()


def _nonempty(*tables: pa.Table) -> list[pa.Table]:
    return [t for t in tables if t.num_rows]


class RowWise(ChunkOperator):
    """Each chunk transformed on its own (column operations, row-local filters)."""

    def push(self, side: int, chunk: pa.Table) -> list[pa.Table]:
        return _nonempty(self._apply([chunk]))


class BuildProbe(ChunkOperator):
    """``SemiJoin``: collect the right input, then filter left chunks against it."""

    def __init__(
        self, operator: Operator, inputs: Sequence[InputInfo], layout: StreamLayout
    ) -> None:
        super().__init__(operator, inputs, layout)
        self._right: list[pa.Table] = []
        self._built: pa.Table | None = None
        self._waiting: list[pa.Table] = []

    def push(self, side: int, chunk: pa.Table) -> list[pa.Table]:
        if side == 1:
            self._right.append(normalise_table(chunk, self.inputs[1].layout))
            return []
        if self._built is None:
            self._waiting.append(chunk)
            return []
        return _nonempty(self._apply([chunk, self._built]))

    def end(self, side: int) -> list[pa.Table]:
        if side == 0:
            return []
        self._built = (
            pa.concat_tables(self._right) if self._right else _empty(self.inputs[1].layout)
        )
        self._right = []
        waiting, self._waiting = self._waiting, []
        return _nonempty(*(self._apply([c, self._built]) for c in waiting))


class SymmetricJoin(ChunkOperator):
    """Two-input ``Join``: every chunk matched against all rows seen on the other side."""

    ordered = False

    def __init__(
        self, operator: Operator, inputs: Sequence[InputInfo], layout: StreamLayout
    ) -> None:
        super().__init__(operator, inputs, layout)
        self._seen: tuple[list[pa.Table], list[pa.Table]] = ([], [])

    def push(self, side: int, chunk: pa.Table) -> list[pa.Table]:
        chunk = normalise_table(chunk, self.inputs[side].layout)
        self._seen[side].append(chunk)
        other = self._seen[1 - side]
        if not other:
            return []
        tables = [chunk, pa.concat_tables(other)]
        if side == 1:
            tables.reverse()
        return _nonempty(self._apply(tables))


class Batched(ChunkOperator):
    """``Batch(batch_size > 0)``: emits each full batch as its last row arrives."""

    def __init__(self, operator: Batch, inputs: Sequence[InputInfo], layout: StreamLayout) -> None:
        super().__init__(operator, inputs, layout)
        self._size = operator.batch_size
        self._drop_partial = operator.drop_partial_batch
        self._rows: list[pa.Table] = []
        self._count = 0

    def push(self, side: int, chunk: pa.Table) -> list[pa.Table]:
        self._rows.append(normalise_table(chunk, self.inputs[0].layout))
        self._count += chunk.num_rows
        full = self._count - self._count % self._size
        if not full:
            return []
        rows = pa.concat_tables(self._rows)
        self._rows = [rows.slice(full)]
        self._count -= full
        return _nonempty(self.operator._compute(self.inputs, [rows.slice(0, full)], self.layout))

    def end(self, side: int) -> list[pa.Table]:
        if not self._count or self._drop_partial:
            return []
        rows = pa.concat_tables(self._rows)
        self._rows, self._count = [], 0
        return _nonempty(self.operator._compute(self.inputs, [rows], self.layout))


# -- PolarsFilter: which predicates are row-local --------------------------------------------

_ROW_LOCAL_FUNCTIONS = {
    "Boolean": {"IsNull", "IsNotNull", "Not", "IsNan", "IsNotNan", "IsFinite", "IsInfinite"},
    "StringExpr": {"Contains", "StartsWith", "EndsWith", "LenBytes", "LenChars"},
}
_ROW_LOCAL_PARAMETRISED = {"Boolean": {"IsIn", "IsBetween"}}


def _row_local_function(function: Any) -> bool:
    if not isinstance(function, dict) or len(function) != 1:
        return False
    ((family, name),) = function.items()
    if isinstance(name, str):
        return name in _ROW_LOCAL_FUNCTIONS.get(family, set())
    if isinstance(name, dict) and len(name) == 1:
        (inner,) = name
        return inner in _ROW_LOCAL_PARAMETRISED.get(family, set()) or inner in (
            _ROW_LOCAL_FUNCTIONS.get(family, set())
        )
    return False


def _row_local(node: Any) -> bool:
    if not isinstance(node, dict) or len(node) != 1:
        return False
    ((kind, body),) = node.items()
    if kind == "Column":
        return True
    if kind == "Literal":
        return isinstance(body, dict) and set(body) <= {"Dyn", "Scalar"}
    if kind == "BinaryExpr":
        return _row_local(body.get("left")) and _row_local(body.get("right"))
    if kind == "Cast":
        return _row_local(body.get("expr"))
    if kind == "Alias":
        return isinstance(body, list) and bool(body) and _row_local(body[0])
    if kind == "Function":
        inputs = body.get("input", [])
        return _row_local_function(body.get("function")) and all(_row_local(i) for i in inputs)
    return False


def is_row_local(operator: PolarsFilter) -> bool:
    """Whether every predicate of the filter decides a row from that row alone."""
    return all(_row_local(json.loads(_serialise(p))) for p in operator.predicates)


def streaming_form(
    operator: Operator,
    inputs: Sequence[InputInfo],
    layout: StreamLayout,
    ordered: Sequence[bool],
) -> ChunkOperator | None:
    """The operator's streaming form over these inputs, or None for a barrier."""
    kind = type(operator)
    if isinstance(operator, _ColumnChoice | _Rename):
        return RowWise(operator, inputs, layout)
    if kind is PolarsFilter and isinstance(operator, PolarsFilter):
        return RowWise(operator, inputs, layout) if is_row_local(operator) else None
    if kind is Join:
        if len(inputs) == 1:
            return RowWise(operator, inputs, layout)
        if len(inputs) == 2:
            return SymmetricJoin(operator, inputs, layout)
        return None
    if kind is SemiJoin:
        form = BuildProbe(operator, inputs, layout)
        form.ordered = ordered[0]
        return form
    if kind is Batch and isinstance(operator, Batch) and operator.batch_size and ordered[0]:
        return Batched(operator, inputs, layout)
    return None
