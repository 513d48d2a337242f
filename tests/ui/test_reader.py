"""``UiStore``: what the pages show, read from stores made by real runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from orcapod.ui.reader import UiStore, operators_between

SCRIPT = """
from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.sources import DictSource

THRESHOLD = {threshold}


@function_pod("label")
def classify(score: float) -> str:
    return "high" if score > THRESHOLD else "low"


scores = DictSource(
    [{{"item": i, "score": i / 10}} for i in range(10)], tag_columns=["item"], label="scores"
)
study = Pipeline("study", DeltaTableDatabase({store!r}))
with study:
    classify.pod(scores)
"""


def test_why_names_the_code_change_since_the_previous_version(tmp_path: Path):
    script = tmp_path / "study.py"
    for threshold in (0.5, 0.7):  # two runs, the second with an edited constant
        script.write_text(SCRIPT.format(threshold=threshold, store=str(tmp_path / "store")))
        done = subprocess.run(
            [str(Path(sys.executable).parent / "orcapod"), "run", str(script)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    store = UiStore(tmp_path / "store")
    node = store.node("study", "classify")
    identity = store.identity(node)
    assert identity.previous_hash is not None and identity.previous is not None
    why = store.why(node, identity)
    assert any("global `THRESHOLD` 0.5 → 0.7" in line for line in why.lines), why.lines
    assert [run.status for run, _ in store.node_runs(node)] == ["ok", "ok"]


def test_operators_between_functions_come_from_the_catalog(imaging_project):
    store = UiStore(imaging_project.store)
    via = operators_between(store.nodes("imaging"))
    assert via == {"segment": (), "measure": ("Join",)}


def test_a_failure_carries_its_captured_output_and_source_row(imaging_project):
    store = UiStore(imaging_project.store)
    (failure,) = store.failures(store.node("imaging", "segment"))
    broken = f"s{imaging_project.broken:02d}"
    assert failure.tags == {"scan": broken}
    assert failure.stdout is not None and "segmenting" in failure.stdout
    assert not failure.resolved
    (source,) = failure.sources
    assert (source.source_id, source.record_id) == ("scans", f"scan={broken}")
    values = store.source_values([source])[source]
    assert str(values["image"]["path"]).endswith(f"images/scan{imaging_project.broken:02d}.img")


def test_failures_are_counted_and_paged_newest_first(odd_project):
    store = UiStore(odd_project.store)
    node = store.node("study.v2", "a/b")
    assert store.failure_count(node) == 25
    pages = [store.failures(node, 10, offset=offset, with_logs=False) for offset in (0, 10, 20)]
    assert [len(p) for p in pages] == [10, 10, 5]
    shown = [f.tags["sid"] for p in pages for f in p]
    assert sorted(shown) == [f"r{i:02d}" for i in range(5, 30)]
    times = [f.failed_at for p in pages for f in p]
    assert times == sorted(times, reverse=True)
    assert store.failure_count(store.node("study.v2", "a")) == 0
