"""Streaming forms of operators give the synchronous operator's rows, chunk by chunk."""

from __future__ import annotations

from typing import Any

import polars as pl
import pyarrow as pa
import pytest

from orcapod.operators import (
    Batch,
    GroupBy,
    Join,
    MapPackets,
    MergeJoin,
    PolarsFilter,
    SelectTagColumns,
    SemiJoin,
)
from orcapod.operators.base import InputInfo, Operator
from orcapod.operators.layout import FULL_INFO
from orcapod.operators.streaming import ChunkOperator, is_row_local, streaming_form
from orcapod.sources import DictSource


def left() -> DictSource:
    return DictSource(
        [{"id": i, "g": i % 3, "x": i * 10} for i in range(10)], tag_columns=["id", "g"]
    )


def right() -> DictSource:
    return DictSource([{"id": i, "w": -i} for i in range(0, 12, 2)], tag_columns=["id"])


def form_of(op: Operator, *streams: Any, ordered: bool = True) -> ChunkOperator | None:
    inputs = [InputInfo(s) for s in streams]
    return streaming_form(op, inputs, op._predict(inputs), [ordered] * len(inputs))


def chunks(stream: Any, size: int) -> list[pa.Table]:
    table = stream.as_table(FULL_INFO)
    return [table.slice(i, size) for i in range(0, table.num_rows, size)]


def feed(form: ChunkOperator, sides: list[list[pa.Table]]) -> pa.Table:
    """Interleave the sides' chunks, end each side, collect the output."""
    out: list[pa.Table] = []
    for step in range(max(len(s) for s in sides)):
        for side, parts in enumerate(sides):
            if step < len(parts):
                out += form.push(side, parts[step])
    for side in range(len(sides)):
        out += form.end(side)
    return pa.concat_tables(out) if out else pa.table({})


def rows(table: pa.Table) -> list[str]:
    return sorted(map(repr, table.to_pylist()))


@pytest.mark.parametrize(
    "op",
    [
        SelectTagColumns(["id"]),
        MapPackets({"x": "y"}),
        PolarsFilter(pl.col("x") > 25),
        PolarsFilter(constraints={"g": 1}),
        Join(),
    ],
    ids=["select", "map", "filter", "constraint", "join-one-input"],
)
def test_row_wise_forms_give_the_synchronous_rows_in_order(op: Operator) -> None:
    form = form_of(op, left())
    assert form is not None and form.ordered
    expected = op.static_process(left()).table
    assert feed(form, [chunks(left(), 3)]).to_pylist() == expected.to_pylist()


def test_semi_join_builds_the_right_side_then_probes_left_chunks_in_order() -> None:
    op = SemiJoin()
    form = form_of(op, left(), right())
    assert form is not None and form.ordered
    expected = op.static_process(left(), right()).table
    got = feed(form, [chunks(left(), 2), chunks(right(), 4)])
    assert got.to_pylist() == expected.to_pylist()


def test_symmetric_join_gives_every_matching_pair_once() -> None:
    op = Join()
    form = form_of(op, left(), right())
    assert form is not None and not form.ordered  # arrival order, not the synchronous order
    expected = op.static_process(left(), right()).table
    got = feed(form, [chunks(left(), 3), chunks(right(), 1)])
    assert got.num_rows == expected.num_rows == 5
    assert rows(got) == rows(expected)


@pytest.mark.parametrize("drop", [False, True])
def test_batch_emits_each_full_batch_as_it_fills(drop: bool) -> None:
    op = Batch(4, drop_partial_batch=drop)
    form = form_of(op, left())
    assert form is not None
    parts = chunks(left(), 3)
    first = form.push(0, parts[0])
    second = form.push(0, parts[1])
    assert first == [] and [t.num_rows for t in second] == [1]  # rows 0-3 complete at row 5
    rest = [t for p in parts[2:] for t in form.push(0, p)] + form.end(0)
    got = pa.concat_tables(second + rest)
    expected = op.static_process(left()).table
    assert got.to_pylist() == expected.to_pylist()


def test_operators_without_a_streaming_form_are_barriers() -> None:
    assert form_of(Batch(0), left()) is None  # one batch of everything
    assert form_of(Batch(2), left(), ordered=False) is None  # order unknown
    assert form_of(GroupBy(["g"]), left()) is None
    assert form_of(MergeJoin(), left(), right()) is None
    three = DictSource([{"id": 1, "v": 1}], tag_columns=["id"])
    assert form_of(Join(), left(), right(), three) is None
    assert form_of(PolarsFilter(pl.col("x") > pl.col("x").mean()), left()) is None


def test_row_locality_of_filter_predicates() -> None:
    local = [
        pl.col("x") > 1,
        (pl.col("x") > 1) & pl.col("g").is_null(),
        pl.col("x").is_in([1, 2]),
        pl.col("x").cast(pl.Float64) > 0.5,
        ~(pl.col("x") == 3),
    ]
    other = [pl.col("x") > pl.col("x").mean(), pl.col("x").rank() > 2, pl.col("x").is_duplicated()]
    assert all(is_row_local(PolarsFilter(p)) for p in local)
    assert not any(is_row_local(PolarsFilter(p)) for p in other)
