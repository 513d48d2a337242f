"""``orcapod store ...`` on a real store (typer's runner, the real command app)."""

from typer.testing import CliRunner

from orcapod.cli.demo import build_pipeline
from orcapod.cli.main import app
from orcapod.pipeline import Pipeline

runner = CliRunner()


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
    assert "error: pipeline 'demo' has no function node 'Join'" in result.output
    result = runner.invoke(
        app, ["store", "recompute", str(path), "compute_bmi", "--where", "subject"]
    )
    assert result.exit_code == 1
    assert "write COLUMN=VALUE" in result.output
    result = runner.invoke(app, ["store", "compact", str(tmp_path / "missing")])
    assert result.exit_code == 1
    assert "no store directory" in result.output
