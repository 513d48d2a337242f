"""``orcapod store ...`` on a real store (typer's runner, the real command app)."""

import json

import pytest
from typer.testing import CliRunner

from orcapod.cli.demo import build_pipeline
from orcapod.cli.main import app
from orcapod.errors import OrcapodWarning
from orcapod.pipeline import Pipeline

runner = CliRunner()


def _said(result) -> str:
    """The command's stderr on one line (rich wraps it at the terminal width)."""
    return " ".join(result.stderr.split())


def _saved(tmp_path):
    pipeline = build_pipeline(tmp_path / "store")
    pipeline.run()
    return pipeline, pipeline.save(tmp_path / "pipeline.json")


def test_store_compact_reports_each_table(tmp_path):
    _saved(tmp_path)
    result = runner.invoke(
        app, ["store", "compact", str(tmp_path / "store"), "--retention-hours", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "table(s) compacted" in result.output
    assert "_result/compute_bmi" in result.output
    assert Pipeline.load(tmp_path / "pipeline.json").run().computed == 0


def test_store_forget_and_recompute_commands(tmp_path):
    pipeline, path = _saved(tmp_path)
    subject = pipeline.compute_bmi.as_table().column("subject")[0].as_py()
    result = runner.invoke(
        app, ["store", "recompute", str(path), "compute_bmi", "--where", f"subject={subject}"]
    )
    assert result.exit_code == 0, result.output
    assert "compute_bmi: deleted" in result.output
    assert Pipeline.load(path).run()["compute_bmi"].computed >= 1

    result = runner.invoke(app, ["store", "forget-node", str(path), "classify"])
    assert result.exit_code == 0, result.output
    assert "classify: deleted 5 record(s)" in result.output
    assert Pipeline.load(path).run()["classify"].computed == 5

    result = runner.invoke(
        app, ["store", "forget-function", str(tmp_path / "store"), "compute_bmi"]
    )
    assert result.exit_code == 0, result.output
    assert "5 result(s)" in result.output


def test_store_commands_report_errors_without_traceback(tmp_path):
    _, path = _saved(tmp_path)
    result = runner.invoke(app, ["store", "forget-node", str(path), "Join"])
    assert result.exit_code == 1
    assert "error: node 'Join' of pipeline 'demo' is an operator node" in _said(result)
    assert "its function nodes: compute_bmi, classify" in _said(result)
    result = runner.invoke(
        app, ["store", "recompute", str(path), "compute_bmi", "--where", "subject"]
    )
    assert result.exit_code == 1
    assert "write COLUMN=VALUE" in _said(result)
    result = runner.invoke(app, ["store", "compact", str(tmp_path / "missing")])
    assert result.exit_code == 1
    assert "no store directory" in _said(result)
    assert result.stdout == ""  # errors go to stderr, as for every command


def test_forget_function_of_a_function_the_store_does_not_hold_lists_those_it_holds(tmp_path):
    _saved(tmp_path)
    result = runner.invoke(app, ["store", "forget-function", str(tmp_path / "store"), "bmii"])
    assert result.exit_code == 1
    said = _said(result)
    assert "holds no results of a function 'bmii'" in said
    assert "the functions it holds: classify, compute_bmi" in said


def test_recompute_matching_no_stored_row_fails_and_deletes_nothing(tmp_path):
    _, path = _saved(tmp_path)
    result = runner.invoke(
        app, ["store", "recompute", str(path), "compute_bmi", "--where", "subject=nobody"]
    )
    assert result.exit_code == 1
    assert "has no stored row with --where subject=nobody: nothing was deleted" in _said(result)
    assert Pipeline.load(path).run().computed == 0


def test_recompute_converts_where_values_to_the_tag_columns_type(tmp_path):
    _, path = _saved(tmp_path)
    result = runner.invoke(
        app,
        ["store", "recompute", str(path), "compute_bmi", "--where", "subject=ada",
         "--where", "visit=2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "compute_bmi: deleted 1 record(s)" in result.output
    result = runner.invoke(
        app, ["store", "recompute", str(path), "compute_bmi", "--where", "visit=two"]
    )
    assert result.exit_code == 1
    assert "'visit' holds int64 values" in _said(result)


def _read_only(path, label):
    document = json.loads(path.read_text())
    for entry in document["nodes"]:
        if entry["label"] == label:
            entry["function"].update(module="module_that_is_nowhere", module_root=None)
    path.write_text(json.dumps(document))


def test_a_read_only_function_node_is_maintained_from_the_tables_its_file_names(tmp_path):
    _, path = _saved(tmp_path)
    _read_only(path, "compute_bmi")
    result = runner.invoke(
        app, ["store", "recompute", str(path), "compute_bmi", "--where", "visit=2"]
    )
    assert result.exit_code == 0, result.output
    assert "compute_bmi: deleted 2 record(s)" in result.output
    result = runner.invoke(app, ["store", "forget-node", str(path), "compute_bmi"])
    assert result.exit_code == 0, result.output
    assert "compute_bmi: deleted 3 record(s)" in result.output
    result = runner.invoke(
        app, ["store", "recompute", str(path), "compute_bmi", "--where", "visit=two"]
    )  # the tag types the file names check the value, as for a loaded node
    assert result.exit_code == 1
    assert "'visit' holds int64 values" in _said(result)


def test_a_command_that_needs_the_function_says_why_the_node_is_read_only(tmp_path):
    _, path = _saved(tmp_path)
    _read_only(path, "classify")
    result = runner.invoke(app, ["verify", "classify", "--pipeline-file", str(path)])
    assert result.exit_code == 1
    said = _said(result)
    assert "function node 'classify' was loaded read-only" in said
    assert "module_that_is_nowhere" in said and "make its module importable" in said


SCRIPT = """
from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.sources import DictSource

@function_pod("y")
def double(x: int) -> int:
    return 2 * x

src = DictSource([{"k": "a", "x": 1}, {"k": "b", "x": 2}], tag_columns=["k"], source_id="s")
p = Pipeline("p", DeltaTableDatabase("store"))
with p:
    double.pod(src)
p.save("pipeline.json")
"""


def test_a_pipeline_saved_by_its_script_under_orcapod_run_can_be_maintained(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "study.py").write_text(SCRIPT)
    with pytest.warns(OrcapodWarning, match="defined in the script being run"):
        assert runner.invoke(app, ["run", "study.py"]).exit_code == 0
    result = runner.invoke(app, ["store", "recompute", "pipeline.json", "double", "--where", "k=a"])
    assert result.exit_code == 0, _said(result)
    assert "double: deleted 1 record(s), 0 failure(s), 1 result(s)" in result.output
    status = runner.invoke(app, ["status", "store"])
    rows = [line.split()[-2:] for line in status.output.splitlines() if line.startswith("double")]
    assert rows == [["0", "stale"]]
    assert "double function - 2 0 0 0 stale" in " ".join(status.output.split())
    assert "double: stale (store maintenance deleted stored rows of it)" in status.output


def test_a_negative_retention_is_refused_by_the_option_parser(tmp_path):
    _saved(tmp_path)
    result = runner.invoke(
        app, ["store", "compact", str(tmp_path / "store"), "--retention-hours", "-5"]
    )
    assert result.exit_code == 2
    assert "--retention-hours" in result.output
