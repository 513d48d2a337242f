"""The commit cadence of streaming function node runs (Delta Lake store)."""

from __future__ import annotations

from pathlib import Path

from orcapod.databases import DeltaTableDatabase
from orcapod.functions import FunctionPod, PythonPacketFunction
from orcapod.nodes import FunctionNode, SourceNode
from orcapod.pipeline import AsyncOrchestrator
from orcapod.sources import DictSource
from orcapod.types import FlushPolicy, PipelineConfig


def big_text(x: int) -> str:
    return str(x) * 400_000  # about 0.4 MB per row


def test_large_outputs_of_a_streaming_run_are_committed_by_the_bytes_limit(
    tmp_path: Path,
) -> None:
    rows = [{"id": i, "x": i} for i in range(1, 10)]
    source = SourceNode(
        DictSource(rows, tag_columns=["id"], source_id="src", record_id_column="id")
    )
    store = tmp_path / "bytes"
    node = FunctionNode(
        FunctionPod(PythonPacketFunction(big_text, "text")), source, DeltaTableDatabase(store)
    )
    node.flush_policy = FlushPolicy(bytes=1_000_000, seconds=60)  # about 3 rows per commit
    AsyncOrchestrator().run([source, node], pipeline_name="p", config=PipelineConfig())
    assert sorted(len(t) for t in node.as_table().column("text").to_pylist()) == [400_000] * 9
    (log,) = list((store / "_result" / "big_text").glob("**/_delta_log"))
    assert len(list(log.glob("*.json"))) == 3  # rows 1-3, 4-6, 7-9
