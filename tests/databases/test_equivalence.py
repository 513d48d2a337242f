"""Property test: random write sequences give the same outcomes (errors and stored rows) on
the in-memory and Delta backends - the 'one semantics' requirement, checked beyond examples."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from orcapod.databases import ArrowDatabase, DeltaTableDatabase, InMemoryArrowDatabase
from orcapod.errors import OrcapodError

P = ("prop",)

add_op = st.tuples(
    st.just("add"),
    st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=4),
    st.booleans(),  # skip_duplicates
    st.sampled_from(["v", "w", "both"]),  # which value columns the batch carries
    st.sampled_from(["int", "str"]),  # type of column v (str conflicts with int)
)
ops = st.lists(st.one_of(add_op, st.just(("flush",))), min_size=1, max_size=8)


def apply(db: ArrowDatabase, op: tuple[object, ...], step: int) -> str | None:
    try:
        if op[0] == "flush":
            db.flush()
            return None
        _, ids, skip, cols, vtype = op
        assert isinstance(ids, list)
        data: dict[str, pa.Array] = {"id": pa.array(ids, pa.string())}
        if cols in ("v", "both"):
            values = [step * 10 + i for i in range(len(ids))]
            data["v"] = pa.array(values if vtype == "int" else [str(x) for x in values])
        if cols in ("w", "both"):
            data["w"] = pa.array([f"w{step}"] * len(ids))
        db.add_records(P, pa.table(data), "id", skip_duplicates=bool(skip))
    except OrcapodError as err:
        return type(err).__name__
    return None


def stored(db: ArrowDatabase) -> tuple[list[str], list[dict[str, object]]]:
    table = db.get_all_records(P, record_id_column="id")
    if table is None:
        return [], []
    return table.column_names, sorted(table.to_pylist(), key=lambda row: str(row["id"]))


@settings(max_examples=30, deadline=None)
@given(sequence=ops, batch_size=st.integers(min_value=1, max_value=6))
def test_backends_agree_on_random_write_sequences(
    sequence: list[tuple[object, ...]], batch_size: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        memory = InMemoryArrowDatabase()
        delta = DeltaTableDatabase(Path(tmp), batch_size=batch_size)
        for step, op in enumerate(sequence):
            assert apply(memory, op, step) == apply(delta, op, step), (step, op)
            assert stored(memory) == stored(delta), (step, op)
        delta.flush()
        assert stored(memory) == stored(DeltaTableDatabase(Path(tmp)))
