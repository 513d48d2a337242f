"""``GroupBy``: one row per distinct value of some tag columns; every other column becomes a list.

``GroupBy(by)`` (``by``: one or more user tag columns; a single name is accepted too):

* **Tags.** The output's user tags are exactly the ``by`` columns (in the input's tag order),
  one row per distinct combination of their values; the other user tag columns are dropped.
  To keep them, move them into the packet first: ``stream.tags_to_packet("image").group_by(
  "subject")`` gives an ``image`` column listing each group's image ids. A null key value is
  a group of its own (rows with equal keys, nulls included, are grouped together).
* **Packets, source info, meta.** Every packet column becomes ``list[T]`` holding the group's
  values (``list[T | None]`` for a ``T | None`` column), and its ``_source_<c>`` the matching
  ``list[str]`` (so each element keeps its own
  provenance); meta columns (``__*``) become lists too. Lists are ``large_list``, never null
  themselves; element nulls are kept. This is ``Batch``'s rule, so ``GroupBy`` and ``Batch``
  outputs look alike.
* **System tags** are type-evolving, as in ``Batch``: each keeps its name and becomes
  ``list[T]`` with one element per grouped row (the provenance of every element).
* ``_context_key`` is not data: a group keeps the context of its first row (in element order).

Order (deterministic, and independent of the input's row order for rows that differ):

* groups are sorted by their key (the ``by`` columns in input tag order, ascending, nulls
  last);
* within a group, elements are sorted by the remaining user tag columns, then by the system
  tags (ascending, nulls last); rows equal in all of these keep their input order.

Types that Arrow cannot order (lists, structs, maps, ``Path``) are ordered by their row hash:
an arbitrary but fixed order (see ``orcapod.operators.system_tags.orderable``).

Validation at application: ``by`` must name at least one column and only user tag columns
of the input (a packet column named there is reported with the fix, ``packet_to_tags``); an
empty ``by`` is ``Batch()``. An empty input gives an empty output (no group).

Vectorised: one multi-key ``sort_indices``, group boundaries from comparing each sorted key
column with itself shifted by one, then per column one ``take`` and one
``LargeListArray.from_arrays`` — no Python loop per row or per group.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod._arrow_without_pandas import column_numpy
from orcapod._lazy import pc
from orcapod.errors import InputValidationError
from orcapod.operators.base import InputInfo, Operator
from orcapod.operators.batch import listed
from orcapod.operators.layout import StreamLayout
from orcapod.operators.system_tags import orderable
from orcapod.types.columns import CONTEXT_KEY

__all__ = ["GroupBy"]


def _names(by: str | Iterable[str]) -> tuple[str, ...]:
    names = (by,) if isinstance(by, str) else tuple(by)
    bad = [c for c in names if not isinstance(c, str) or not c]
    if bad:
        raise InputValidationError(f"GroupBy: column names must be non-empty strings: {bad}")
    if not names:
        raise InputValidationError(
            "GroupBy: by= names no column; name the tag columns to group by (to put every "
            "row in one group, use Batch())"
        )
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputValidationError(f"GroupBy: by= repeats {dupes}; name each column once")
    return names


def _changes(sorted_key: pa.Array) -> np.ndarray:
    """Per adjacent pair of rows, True where the key value differs (nulls equal each other)."""
    a, b = sorted_key.slice(0, len(sorted_key) - 1), sorted_key.slice(1)
    a_null, b_null = pc.is_null(a), pc.is_null(b)
    equal = pc.or_(pc.fill_null(pc.equal(a, b), False), pc.and_(a_null, b_null))
    return np.asarray(column_numpy(pc.invert(equal)), dtype=bool)


class GroupBy(Operator):
    """One row per distinct value of the ``by`` tag columns (see the module docstring)."""

    def __init__(self, by: str | Iterable[str]) -> None:
        self.by = _names(by)

    def parameters(self) -> dict[str, Any]:
        return {"by": list(self.by)}

    def identity_structure(self) -> Any:
        return {"operator": type(self).__name__, "parameters": {"by": sorted(self.by)}}

    def _keys(self, layout: StreamLayout) -> list[str]:
        packets = [c for c in self.by if c in layout.packets]
        if packets:
            raise InputValidationError(
                f"GroupBy: {packets} are packet columns; only tag columns can be grouped by. "
                f"Move them to the tags first: stream.packet_to_tags({packets})"
            )
        missing = [c for c in self.by if c not in layout.tags]
        if missing:
            raise InputValidationError(
                f"GroupBy: {missing} are not tag columns of the input (tag columns: "
                f"{list(layout.tags)}); fix the names"
            )
        return [c for c in layout.tags if c in self.by]

    def _predict(self, inputs: Sequence[InputInfo]) -> StreamLayout:
        layout = inputs[0].layout
        keys = self._keys(layout)
        return StreamLayout.build(
            {c: layout.tags[c] for c in keys},
            listed(dict(layout.system_tags)),
            listed(dict(layout.packets)),
            listed(dict(layout.sources)),
            listed(dict(layout.meta)),
            layout.context,
        )

    def _compute(
        self, inputs: Sequence[InputInfo], tables: Sequence[pa.Table], layout: StreamLayout
    ) -> pa.Table:
        in_layout = inputs[0].layout
        table = tables[0]
        keys = self._keys(in_layout)
        order_by = [
            *keys,
            *(c for c in in_layout.tags if c not in keys),
            *in_layout.system_tags,
        ]
        n = table.num_rows
        sort_table = pa.table(
            {
                **{f"k{i}": orderable(table.column(c)) for i, c in enumerate(order_by)},
                "row": pa.array(np.arange(n, dtype=np.int64)),
            }
        )
        indices = pc.sort_indices(
            sort_table,
            sort_keys=[(name, "ascending") for name in sort_table.column_names],
        )  # nulls sort last: Arrow's default placement
        if n == 0:
            offsets = np.zeros(1, dtype=np.int64)
        else:
            change = np.zeros(n - 1, dtype=bool)
            for i in range(len(keys)):
                change |= _changes(sort_table.column(f"k{i}").combine_chunks().take(indices))
            starts_np = np.concatenate([[0], np.flatnonzero(change) + 1]).astype(np.int64)
            offsets = np.append(starts_np, n)
        starts = pa.array(offsets[:-1])
        offset_array = pa.array(offsets)
        arrays = []
        for name in layout.column_names:
            column = table.column(name).combine_chunks().take(indices)
            if name in layout.tags or name == CONTEXT_KEY:
                arrays.append(column.take(starts))
            else:
                arrays.append(pa.LargeListArray.from_arrays(offset_array, column))
        return pa.Table.from_arrays(arrays, names=layout.column_names)
