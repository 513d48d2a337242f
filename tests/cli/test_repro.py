"""``orcapod explain``, ``orcapod lineage`` and ``orcapod verify`` on a real store."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orcapod.cli.main import app
from orcapod.cli.repro import parse_where

ORCAPOD = Path(sys.executable).parent / "orcapod"

SCRIPT = """
import itertools, os
from orcapod.databases import DeltaTableDatabase
from orcapod.functions import function_pod
from orcapod.pipeline import Pipeline
from orcapod.sources import DictSource

counter = itertools.count()

@function_pod("y")
def double(x: float) -> float:
    # with DRIFT=1 the same code gives a new value on every call (read at call time, so the
    # code identity is unchanged)
    return x * 2 + (next(counter) + 1 if os.environ.get("DRIFT") == "1" else 0)

@function_pod("z")
def shift(y: float) -> float:
    return y + 1

rows = [{"id": i, "x": float(i)} for i in range(10)]
source = DictSource(rows, tag_columns=["id"], source_id="items", record_id_column="id")
pipeline = Pipeline("study", DeltaTableDatabase(os.environ["ORCAPOD_STORE"]))
with pipeline:
    shift.pod(double.pod(source))

if __name__ == "__main__":
    pipeline.run()
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "pipe.py"
    script.write_text(textwrap.dedent(SCRIPT))
    store = tmp_path / "store"
    monkeypatch.setenv("ORCAPOD_STORE", str(store))
    env = {"ORCAPOD_STORE": str(store), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, str(script)], check=True, env=env, cwd=tmp_path)
    return tmp_path


def test_lineage_from_the_store_as_a_table_and_as_prov(project: Path) -> None:
    runner = CliRunner()
    table = runner.invoke(app, ["lineage", "shift", "--where", "id=4"])
    assert table.exit_code == 0, table.output
    assert "shift" in table.output and "double" in table.output and "items" in table.output
    prov = runner.invoke(app, ["lineage", "shift", "--where", "id=4", "--format", "prov"])
    assert prov.exit_code == 0, prov.output
    document = json.loads(prov.output)
    assert "orcapod:source/items/id=4" in document["entity"]
    assert len(document["wasGeneratedBy"]) == 2


def test_lineage_with_an_unknown_row_fails_with_a_message(project: Path) -> None:
    out = CliRunner().invoke(app, ["lineage", "shift", "--where", "id=99"])
    assert out.exit_code == 2
    assert "no stored row" in out.output


def test_explain_reads_the_users_pipeline_file(project: Path) -> None:
    out = CliRunner().invoke(
        app, ["explain", "double", "--pipeline-file", str(project / "pipe.py"), "--json"]
    )
    assert out.exit_code == 0, out.output
    explanation = json.loads(out.output)
    assert explanation["pending"] is False
    assert explanation["groups"][0]["reason"] == "new input"


def test_verify_exits_non_zero_when_a_row_does_not_reproduce(project: Path) -> None:
    base = [str(ORCAPOD), "verify", "double", "--pipeline-file", str(project / "pipe.py")]
    env = {"ORCAPOD_STORE": str(project / "store"), "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    ok = subprocess.run(
        [*base, "--sample", "0.5"], check=False, capture_output=True, text=True, env=env
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "all 5 reproduced" in ok.stdout
    drift = subprocess.run(
        [*base, "--where", "id=3"],
        check=False,
        capture_output=True,
        text=True,
        env={**env, "DRIFT": "1"},
    )
    assert drift.returncode == 1, drift.stdout + drift.stderr
    assert "did NOT reproduce" in drift.stdout and "'id': 3" in drift.stdout


def test_explain_and_verify_need_the_pipeline_file(project: Path) -> None:
    out = CliRunner().invoke(app, ["explain", "double"])
    assert out.exit_code == 2 and "--pipeline-file" in out.output


def test_where_values_are_json_when_they_parse() -> None:
    assert parse_where(["id=3", "name=ada", "xs=[1, 2]"]) == {
        "id": 3,
        "name": "ada",
        "xs": [1, 2],
    }
