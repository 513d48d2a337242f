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
    assert out.exit_code == 1
    assert "no stored row" in out.stderr and out.stdout == ""


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
    for command in ("explain", "verify"):
        out = CliRunner().invoke(app, [command, "double"])
        assert out.exit_code == 2 and "Missing option '--pipeline-file'" in out.output
        shown = CliRunner().invoke(app, [command, "--help"]).output
        option = shown[shown.index("--pipeline-file") : shown.index("--store <store>")]
        assert "[required]" in option, shown


# -- a project as a user has it: a script with a neighbour module, a relative store, text tags

STUDY = """
from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.sources import DictSource
from helpers import offset

@function_pod("y")
def shifted(x: int) -> int:
    return x + offset()

rows = [{"sid": s, "x": i} for i, s in enumerate(["1", "007", "true", "ada"])]
source = DictSource(rows, tag_columns=["sid"], source_id="subjects", record_id_column="sid")
study = Pipeline("study", DeltaTableDatabase("store"))
with study:
    shifted.pod(source)
"""


def _said(done: subprocess.CompletedProcess[str]) -> str:
    """stderr on one line (rich wraps it at the terminal width)."""
    return " ".join(done.stderr.split())


@pytest.fixture
def study(tmp_path: Path, orcapod_in) -> Path:
    """``tmp_path/project``: study.py (importing helpers.py) after one ``orcapod run``."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "study.py").write_text(STUDY)
    (folder / "helpers.py").write_text("def offset():\n    return 10\n")
    done = orcapod_in(folder, "run", "study.py")
    assert done.returncode == 0, done.stderr
    return folder


def test_explain_and_verify_load_a_script_as_orcapod_run_does(study: Path, orcapod_in) -> None:
    explained = orcapod_in(study, "explain", "shifted", "--pipeline-file", "study.py")
    assert explained.returncode == 0, explained.stderr  # it imports its neighbour helpers.py
    assert "node 'shifted': computed 4 of 4 rows" in explained.stdout
    verified = orcapod_in(study, "verify", "shifted", "--pipeline-file", "study.py")
    assert verified.returncode == 0, verified.stderr
    assert "all 1 reproduced" in verified.stdout


@pytest.mark.parametrize("sid", ["1", "007", "true"])
def test_where_values_take_the_tag_columns_type(study: Path, orcapod_in, sid: str) -> None:
    where = ["--where", f"sid={sid}"]
    verified = orcapod_in(study, "verify", "shifted", "--pipeline-file", "study.py", *where)
    assert verified.returncode == 0, verified.stderr
    assert "verified 1 rows" in verified.stdout and "all 1 reproduced" in verified.stdout
    from_store = orcapod_in(study, "lineage", "shifted", *where, "--store", "store")
    assert from_store.returncode == 0, from_store.stderr
    assert "subjects" in from_store.stdout
    from_file = orcapod_in(
        study, "lineage", "shifted", *where, "--pipeline-file", "study.py", "--format", "prov"
    )
    assert from_file.returncode == 0, from_file.stderr
    assert f"orcapod:source/subjects/sid={sid}" in json.loads(from_file.stdout)["entity"]


def test_verify_where_matching_no_stored_row_fails(study: Path, orcapod_in) -> None:
    done = orcapod_in(
        study, "verify", "shifted", "--pipeline-file", "study.py", "--where", "sid=nobody"
    )
    assert done.returncode == 1
    assert "no stored row with --where sid=nobody: nothing was verified" in _said(done)
    assert "reproduced" not in done.stdout


def test_errors_go_to_stderr_with_status_1(study: Path, orcapod_in) -> None:
    done = orcapod_in(study, "explain", "nosuch", "--pipeline-file", "study.py", "--json")
    assert done.returncode == 1 and done.stdout == ""
    assert "error: pipeline 'study' has no node 'nosuch'; its function nodes: shifted" in _said(
        done
    )
    done = orcapod_in(study, "explain", "subjects", "--pipeline-file", "study.py")
    assert done.returncode == 1
    assert "is a source node, not a function node" in _said(done)


def test_a_script_run_from_another_folder_never_creates_a_store(study: Path, orcapod_in) -> None:
    parent = study.parent
    refused = orcapod_in(
        parent, "explain", "shifted", "--pipeline-file", "project/study.py", "--store",
        "project/store",
    )  # fmt: skip
    assert refused.returncode == 1
    assert f"uses the store {parent / 'store'}, not project/store" in _said(refused)
    assert not (parent / "store").exists()
    explained = orcapod_in(parent, "explain", "shifted", "--pipeline-file", "project/study.py")
    assert explained.returncode == 0, explained.stderr
    assert "would compute 4 of 4 rows" in explained.stdout
    assert f"note: the store {parent / 'store'} holds nothing" in _said(explained)
    assert not (parent / "store").exists()
    verified = orcapod_in(parent, "verify", "shifted", "--pipeline-file", "project/study.py")
    assert verified.returncode == 1 and "holds nothing to verify" in _said(verified)
    assert not (parent / "store").exists()
    from_project = orcapod_in(
        study, "explain", "shifted", "--pipeline-file", "study.py", "--store", "store"
    )
    assert from_project.returncode == 0, from_project.stderr  # the script's own store


def test_a_script_that_raises_is_one_error_line_and_the_users_frames(
    study: Path, orcapod_in
) -> None:
    (study / "broken.py").write_text("import helpers\n\nhelpers.missing_function()\n")
    done = orcapod_in(study, "explain", "shifted", "--pipeline-file", "broken.py")
    assert done.returncode == 1 and done.stdout == ""
    first = done.stderr.splitlines()[0]
    assert first.startswith("error: broken.py raised while defining its pipelines: ")
    assert "AttributeError" in _said(done) and "missing_function" in _said(done)
    assert 'File "broken.py", line 3, in <module>' in done.stderr
    assert "typer" not in done.stderr and "runpy" not in done.stderr
    assert "orcapod/cli" not in done.stderr


def test_a_saved_pipeline_finds_the_module_saved_next_to_it(study: Path, orcapod_in) -> None:
    subprocess.run(
        [sys.executable, "-c", "import study; study.study.save('pipeline.json')"],
        cwd=study,
        check=True,
        capture_output=True,
    )
    parent = study.parent  # neither folder is on the console script's sys.path
    done = orcapod_in(parent, "explain", "shifted", "--pipeline-file", "project/pipeline.json")
    assert done.returncode == 0, done.stderr
    assert "node 'shifted': computed 4 of 4 rows" in done.stdout


def test_lineage_takes_a_node_as_every_command_does_and_lists_the_function_nodes(
    project: Path,
) -> None:
    runner = CliRunner()
    by_name = runner.invoke(app, ["lineage", "study.shift", "--where", "id=4"])
    assert by_name.exit_code == 0, by_name.output
    by_function = runner.invoke(app, ["lineage", "shift", "--where", "id=4"])
    assert by_name.stdout.splitlines()[1:] == by_function.stdout.splitlines()[1:]  # (titles)
    unknown = runner.invoke(app, ["lineage", "shfit", "--where", "id=4"])
    assert unknown.exit_code == 1
    assert "study.double" in unknown.stderr and "study.shift" in unknown.stderr
    source = runner.invoke(app, ["lineage", "items", "--where", "id=4"])
    assert source.exit_code == 1 and "source node" in source.stderr
    other = runner.invoke(app, ["lineage", "shift", "--where", "id=4", "--pipeline", "nope"])
    assert other.exit_code == 1 and "no pipeline 'nope'" in other.stderr
