"""``Batch``: group consecutive rows into batches; every column becomes a list.

``Batch(batch_size=0, drop_partial_batch=False)``: rows ``0..k-1`` form the first batch,
``k..2k-1`` the second, and so on, in input order; ``batch_size=0`` puts every row in one
batch. A last, shorter batch is kept unless ``drop_partial_batch``. An empty input gives an
empty output (no batch). A negative or non-integer size is an ``InputValidationError``.

Every column — user tags, packets, system tags, source info and meta — becomes
``list[T]`` (``large_list``, never null itself; element nulls are kept, so a ``T | None``
column becomes ``list[T | None]``), with the same name:
system tags are *type-evolving* here, not renamed. The exception is ``_context_key``, which
says how to read a row rather than being data: a batch keeps its first row's context.

Vectorised: batches are contiguous, so each column is its values plus one offsets array
(``LargeListArray.from_arrays``) — no grouping, no Python loop per row. Flattening every
column (``pyarrow.compute.list_flatten``) gives back the input rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod.errors import InputValidationError
from orcapod.operators.base import InputInfo, Operator
from orcapod.operators.layout import StreamLayout
from orcapod.types.columns import CONTEXT_KEY

__all__ = ["Batch", "listed"]


def listed(types: dict[str, Any]) -> dict[str, Any]:
    """Each type ``T`` as ``list[T]`` (``T | None`` as ``list[T | None]``): the type of a
    column of grouped rows."""
    return {name: list[tp] for name, tp in types.items()}  # type: ignore[valid-type]


class Batch(Operator):
    """Consecutive rows grouped into ``list`` columns (see module docstring)."""

    def __init__(self, batch_size: int = 0, drop_partial_batch: bool = False) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
            raise InputValidationError(
                f"Batch: batch_size must be an integer >= 0 (0 = one batch), got {batch_size!r}"
            )
        self.batch_size = batch_size
        self.drop_partial_batch = bool(drop_partial_batch)

    def parameters(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "drop_partial_batch": self.drop_partial_batch}

    def _predict(self, inputs: Sequence[InputInfo]) -> StreamLayout:
        layout = inputs[0].layout
        return StreamLayout.build(
            listed(dict(layout.tags)),
            listed(dict(layout.system_tags)),
            listed(dict(layout.packets)),
            listed(dict(layout.sources)),
            listed(dict(layout.meta)),
            layout.context,
        )

    def _offsets(self, n: int) -> np.ndarray:
        size = self.batch_size or n
        if n == 0:
            return np.zeros(1, dtype=np.int64)
        used = n - n % size if self.drop_partial_batch else n
        offsets = np.arange(0, used, size, dtype=np.int64)
        return np.append(offsets, used)

    def _compute(
        self, inputs: Sequence[InputInfo], tables: Sequence[pa.Table], layout: StreamLayout
    ) -> pa.Table:
        table = tables[0]
        offsets = self._offsets(table.num_rows)
        used = int(offsets[-1])
        starts = pa.array(offsets[:-1])
        offset_array = pa.array(offsets)
        arrays = []
        for name in table.column_names:
            column = table.column(name).slice(0, used).combine_chunks()
            if name == CONTEXT_KEY:
                arrays.append(column.take(starts))
            else:
                arrays.append(pa.LargeListArray.from_arrays(offset_array, column))
        return pa.Table.from_arrays(arrays, names=table.column_names)
