"""``pipeline.explain()``: every function node's explanation, read-only."""

from __future__ import annotations

from pathlib import Path

from orcapod.databases import DeltaTableDatabase
from orcapod.functions import function_pod
from orcapod.pipeline import Pipeline
from orcapod.sources import DictSource


@function_pod("y")
def inc(x: int) -> int:
    return x + 1


@function_pod("z")
def dbl(y: int) -> int:
    return y * 2


def test_pipeline_explain_covers_each_function_node_and_writes_nothing(tmp_path: Path) -> None:
    source = DictSource([{"id": i, "x": i} for i in range(3)], tag_columns=["id"])
    pipeline = Pipeline("p", DeltaTableDatabase(tmp_path))
    with pipeline:
        dbl.pod(inc.pod(source))
    before = pipeline.explain()
    assert set(before) == {"inc", "dbl"}
    assert before["inc"].pending and before["inc"].by_reason() == {"new input": 3}
    assert before["dbl"].count == 0  # its input (inc's stored rows) is still empty
    assert not any(tmp_path.iterdir())  # nothing written
    pipeline.run()
    after = pipeline.explain()
    assert not after["inc"].pending and after["inc"].by_reason() == {"new input": 3}
    assert after["dbl"].by_reason() == {"new input": 3}
    assert "new input: 3 rows" in str(after["dbl"])
