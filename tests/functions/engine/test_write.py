"""``RunWriter`` through a node run: when finished rows are committed (Delta Lake store)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from orcapod.databases import DeltaTableDatabase
from orcapod.functions import FunctionPod, PythonPacketFunction
from orcapod.functions.engine import write
from orcapod.functions.engine.write import output_bytes
from orcapod.nodes import FunctionNode
from orcapod.sources import DictSource
from orcapod.types import FlushPolicy


def slow_start(x: int, first_seconds: float, seconds: float) -> int:
    """Sleeps ``first_seconds`` for x == 0 and ``seconds`` for the other rows."""
    time.sleep(first_seconds if x == 0 else seconds)
    return 2 * x


def _run(
    store: Path, first_seconds: float, seconds: float, flush_seconds: float, n: int = 6
) -> int:
    """Run a node over ``n`` rows; return how many commits its results took."""
    rows = [{"id": i, "x": i, "first_seconds": first_seconds, "seconds": seconds} for i in range(n)]
    src = DictSource(rows, tag_columns=["id"], source_id="src", record_id_column="id")
    node = FunctionNode(
        FunctionPod(PythonPacketFunction(slow_start, "y")), src, DeltaTableDatabase(store)
    )
    node.flush_policy = FlushPolicy(seconds=flush_seconds)
    assert node.run().computed == n
    assert sorted(node.as_table().column("y").to_pylist()) == [2 * i for i in range(n)]
    (log,) = list((store / "_result" / "slow_start").glob("**/_delta_log"))
    return len(list(log.glob("*.json")))


def test_rows_finished_within_flush_seconds_are_committed_once_at_the_end(
    tmp_path: Path,
) -> None:
    # the run takes longer than flush_seconds, but only before its first finished row: no row
    # waits that long uncommitted, so the results take one commit (the final flush)
    assert _run(tmp_path / "a", first_seconds=0.5, seconds=0.0, flush_seconds=0.3) == 1


def test_a_row_waiting_flush_seconds_is_committed_before_the_end(tmp_path: Path) -> None:
    # rows finish 0.1 s apart: the oldest buffered row reaches 0.25 s after three more rows
    assert _run(tmp_path / "b", first_seconds=0.1, seconds=0.1, flush_seconds=0.25) >= 2


@pytest.mark.parametrize("spacing", [0, 1000])
def test_commits_are_spaced_by_their_own_duration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spacing: int
) -> None:
    # rows finish 10 ms apart and may wait only 1 ms; spacing 0 commits whenever rows are
    # handed on, spacing 1000 waits a thousand times the first commit (far beyond the run):
    # the first commit, then the one at the end
    monkeypatch.setattr(write, "COMMIT_SPACING", spacing)
    commits = _run(tmp_path / "c", first_seconds=0.01, seconds=0.01, flush_seconds=0.001, n=40)
    assert commits == 2 if spacing else commits > 3


def big_text(x: int) -> str:
    return str(x) * 400_000  # about 0.4 MB per row


def test_large_outputs_are_committed_by_the_bytes_limit(tmp_path: Path) -> None:
    rows = [{"id": i, "x": i} for i in range(1, 10)]
    src = DictSource(rows, tag_columns=["id"], source_id="src", record_id_column="id")
    store = tmp_path / "bytes"
    node = FunctionNode(
        FunctionPod(PythonPacketFunction(big_text, "text")), src, DeltaTableDatabase(store)
    )
    node.flush_policy = FlushPolicy(bytes=1_000_000, seconds=60)  # about 3 rows per commit
    assert node.run().computed == 9
    assert sorted(len(t) for t in node.as_table().column("text").to_pylist()) == [400_000] * 9
    (log,) = list((store / "_result" / "big_text").glob("**/_delta_log"))
    assert len(list(log.glob("*.json"))) == 3  # rows 1-3, 4-6, 7-9


def test_output_bytes_estimates_strings_arrays_and_lists() -> None:
    assert output_bytes(None) == 0
    assert output_bytes({"a": "x" * 100, "b": np.zeros(10, dtype=np.float64)}) == 180
    assert output_bytes({"a": ["ab", "cd"], "n": 3}) == 8 + 4 + 8


def test_rows_handed_on_in_bulk_are_committed_where_one_by_one_would_be(tmp_path: Path) -> None:
    """A quick function's outputs reach the writer in bulk; the rows limit still cuts the
    commits after every third row."""
    rows = [{"id": i, "x": i} for i in range(10)]
    src = DictSource(rows, tag_columns=["id"], source_id="src", record_id_column="id")
    store = tmp_path / "rows"
    node = FunctionNode(
        FunctionPod(PythonPacketFunction(double, "y")), src, DeltaTableDatabase(store)
    )
    node.flush_policy = FlushPolicy(rows=3, seconds=60)
    assert node.run().computed == 10
    assert node.as_table().column("y").to_pylist() == [2 * i for i in range(10)]
    (log,) = list((store / "_result" / "double").glob("**/_delta_log"))
    assert len(list(log.glob("*.json"))) == 4  # rows 0-2, 3-5, 6-8, 9


def double(x: int) -> int:
    return 2 * x
