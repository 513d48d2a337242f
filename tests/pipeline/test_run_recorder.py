"""RunRecorder: the run history and the catalog every run writes to its store."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orcapod.databases import DeltaTableDatabase
from orcapod.errors import ExecutionError
from orcapod.functions import function_pod
from orcapod.operators import SelectPacketColumns
from orcapod.pipeline import Pipeline, StoreView
from orcapod.pipeline.store_layout import CATALOG_PATH, RUNS_PATH
from orcapod.sources import DictSource
from orcapod.types import CacheMode, ErrorPolicy


@function_pod("y")
def halve(x: int) -> float:
    if x == 0:
        raise ZeroDivisionError("cannot halve zero here")
    return x / 2


@function_pod("z")
def negate(y: float) -> float:
    return -y


def build(store: Path, values=(1, 2), **options) -> Pipeline:
    pipeline = Pipeline("lab", DeltaTableDatabase(store), **options)
    rows = [{"k": i, "x": v, "w": 0} for i, v in enumerate(values)]
    with pipeline:
        picked = SelectPacketColumns("x")(DictSource(rows, tag_columns=["k"], source_id="s"))
        negate.pod(halve.pod(picked))
    return pipeline


def test_a_run_writes_a_running_row_then_its_outcome(tmp_path):
    store = tmp_path / "store"
    build(store).run()
    db = DeltaTableDatabase(store)
    rows = db.get_all_records(RUNS_PATH).sort_by("phase").to_pylist()
    assert [r["status"] for r in rows] == ["running", "ok"]
    assert rows[0]["run_id"] == rows[1]["run_id"] and rows[0]["ended_at"] is None
    assert rows[1]["ended_at"] >= rows[1]["started_at"]
    (run,) = StoreView(store).runs()
    assert run.status == "ok" and (run.computed, run.failed) == (4, 0) and run.error is None
    assert run.nodes["SelectPacketColumns"]["type"] == "operator"


def test_catalog_has_every_node_with_its_tables_and_edges(tmp_path):
    store = tmp_path / "store"
    pipeline = build(store, operator_cache_mode=CacheMode.LOG)
    pipeline.run()
    view = StoreView(store)
    nodes = {n.label: n for n in view.nodes()}
    assert nodes["SelectPacketColumns"].upstreams == ("s",)
    assert nodes["SelectPacketColumns"].tables["records"][0] == "lab"
    assert nodes["halve"].tables["records"] == ("lab", *pipeline.halve.record_path)
    assert nodes["halve"].code_hash == pipeline.halve.packet_function.code_hash
    assert view.node_rows("SelectPacketColumns").to_pylist() == [
        {"k": 0, "x": 1},
        {"k": 1, "x": 2},
    ]
    # two phases per run, per node
    assert DeltaTableDatabase(store).get_all_records(CATALOG_PATH).num_rows == 2 * len(nodes)


def test_a_run_stopped_by_a_node_is_an_error_with_its_message(tmp_path):
    store = tmp_path / "store"
    pipeline = build(store, values=(0, 2), error_policy=ErrorPolicy.FAIL_FAST)
    with pytest.raises(ExecutionError):
        pipeline.run()
    (run,) = StoreView(store).runs()
    assert run.status == "error" and "cannot halve zero" in (run.error or "")
    assert run.nodes["halve"]["status"] == "error"
    assert run.nodes["negate"]["status"] == "not run"
    nodes = {n.label: n for n in StoreView(store).nodes()}
    assert nodes["halve"].status == "error" and nodes["halve"].rows is None


@pytest.mark.slow
def test_a_killed_run_shows_as_interrupted_in_the_history(tmp_path):
    store = tmp_path / "store"
    script = textwrap.dedent(
        f"""
        import os
        from orcapod.databases import DeltaTableDatabase
        from orcapod.functions import function_pod
        from orcapod.pipeline import Pipeline
        from orcapod.sources import DictSource

        @function_pod("y")
        def die(x: int) -> int:
            os._exit(3)

        pipeline = Pipeline("lab", DeltaTableDatabase({str(store)!r}))
        with pipeline:
            die.pod(DictSource([{{"k": 1, "x": 1}}], tag_columns=["k"]))
        pipeline.run()
        """
    )
    done = subprocess.run([sys.executable, "-c", script], check=False, cwd=tmp_path)
    assert done.returncode == 3
    (run,) = StoreView(store).runs()
    # its row still says running (the process wrote nothing more); readers on this machine
    # see that the process is gone
    assert run.status == "interrupted" and run.ended_at is None
    assert [n.status for n in StoreView(store).nodes()] == ["interrupted", "interrupted"]
