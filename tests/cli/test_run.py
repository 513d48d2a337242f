"""``orcapod run FILE.py``: runs the pipelines a file defines, through the installed script."""

import subprocess
import sys

import pytest


def test_run_prints_each_pipelines_summary_and_keeps_going_past_failed_rows(
    fresh_project, study_code
):
    cli = fresh_project(study_code)
    done = cli("run", "study.py")
    assert "pipeline 'study': 4 computed, 0 reused" in done.stdout
    assert "compute_bmi" in done.stdout and "failed" in done.stdout
    assert "orcapod logs study.compute_bmi --failed" in done.stdout
    again = cli("run", "study.py")
    assert "0 computed, 4 reused" in again.stdout  # the store remembers


def test_strict_exits_non_zero_when_a_row_failed(fresh_project, study_code):
    cli = fresh_project(study_code)
    cli("run", "study.py", "--strict", check=1)


def test_strict_exits_zero_when_every_row_succeeded(fresh_project, study_code):
    cli = fresh_project(study_code.replace('"weight": -1.0', '"weight": 70.0'))
    done = cli("run", "study.py", "--strict")
    assert "1 row(s) FAILED" not in done.stdout


def test_a_main_block_of_the_file_does_not_run(fresh_project, study_code):
    cli = fresh_project(
        study_code + '\nif __name__ == "__main__":\n    raise SystemExit("ran main")\n'
    )
    done = cli("run", "study.py")
    assert "ran main" not in done.stdout + done.stderr


def test_a_file_without_pipelines_is_refused_with_a_reason(fresh_project, study_code):
    cli = fresh_project("x = 1\n")
    done = cli("run", "study.py", check=1)
    assert "defines no Pipeline" in done.stderr


def test_a_missing_file_is_refused(fresh_project, study_code):
    cli = fresh_project("x = 1\n")
    done = cli("run", "nowhere.py", check=1)
    assert "no such file" in done.stderr


def test_an_unknown_executor_is_refused_by_the_option_parser(fresh_project, study_code):
    cli = fresh_project(study_code)
    done = cli("run", "study.py", "--executor", "cluster", check=2)
    assert "local" in done.stderr and "ray" in done.stderr


@pytest.mark.ray
@pytest.mark.slow
def test_ray_executor_runs_the_functions_on_a_local_ray(fresh_project, study_code):
    cli = fresh_project(study_code.replace('"weight": -1.0', '"weight": 70.0'))
    done = cli("run", "study.py", "--executor", "ray", "--strict")
    assert "6 computed" in done.stdout
    logs = cli("logs", "compute_bmi", "--store", "store", "-n", "1")
    assert "bmi of" in logs.stdout  # captured in the Ray worker


def test_a_run_by_the_command_and_by_importing_the_file_share_their_results(
    fresh_project, study_code
):
    cli = fresh_project(study_code)
    cli("run", "study.py")
    code = "import study; print(study.study.run(progress=False).computed)"
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        cwd=cli.cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert done.stdout.strip() == "0"


def _cells(text, first_cell):
    return next(line.split() for line in text.splitlines() if line.startswith(first_cell + " "))


def test_rows_are_the_rows_a_node_outputs_as_status_says(fresh_project, study_code):
    cli = fresh_project(study_code)
    run_rows = _cells(cli("run", "study.py").stdout, "compute_bmi")
    # node, type, computed, reused, filtered, failed, rows, status: 2 computed, 1 failed
    assert run_rows[2:] == ["2", "0", "0", "1", "2", "failed"]
    status_rows = _cells(cli("status", "store").stdout, "compute_bmi")
    assert status_rows[2] == run_rows[6] == "2"


def test_the_failure_hint_names_the_store_and_every_failed_node(fresh_project, study_code):
    second = study_code.replace(
        'log.warning("classifying %s", bmi)',
        'log.warning("classifying %s", bmi)\n    if bmi > 25:\n        raise ValueError("high")',
    )
    cli = fresh_project(second)
    out = cli("run", "study.py").stdout
    hints = [line for line in out.splitlines() if line.startswith("see the failures with: ")]
    assert hints == [
        "see the failures with: orcapod logs study.compute_bmi --failed --store store",
        "see the failures with: orcapod logs study.classify --failed --store store",
    ]
    for hint in hints:  # each can be pasted as is
        args = hint.removeprefix("see the failures with: orcapod ").split()
        shown = cli(*args)
        assert "FAILED" in shown.stdout


def test_a_file_that_raises_shows_one_error_line_and_only_the_users_frames(fresh_project):
    cli = fresh_project("def build():\n    raise RuntimeError('boom')\n\n\nbuild()\n")
    done = cli("run", "study.py", check=1)
    lines = done.stderr.splitlines()
    assert lines[0] == "error: study.py raised while defining its pipelines: RuntimeError: boom"
    assert 'File "study.py", line 5, in <module>' in done.stderr
    assert 'File "study.py", line 2, in build' in done.stderr
    assert "typer" not in done.stderr and "runpy" not in done.stderr
    assert "Traceback" not in done.stderr


INTERRUPTED = """
from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.sources import DictSource


@function_pod("y")
def square(x: int) -> int:
    if x == 5:  # as Ctrl-C in a terminal does
        raise KeyboardInterrupt
    return x * x


pipeline = Pipeline("stops", DeltaTableDatabase("store"))
with pipeline:
    square.pod(DictSource([{"k": k, "x": k} for k in range(20)], tag_columns=["k"]))
"""


def test_ctrl_c_says_the_run_was_interrupted_and_what_is_kept(fresh_project):
    cli = fresh_project(INTERRUPTED)
    done = cli("run", "study.py", check=130)
    assert "pipeline 'stops' interrupted" in done.stderr and "kept" in done.stderr
    assert "Traceback" not in done.stderr
    assert "interrupted" in cli("status", "store").stdout


def _saved(cli) -> None:  # type: ignore[no-untyped-def]
    """Save the pipeline of ``study.py`` (imported as the module ``study``) to pipeline.json."""
    subprocess.run(
        [sys.executable, "-c", "from study import study; study.save('pipeline.json')"],
        cwd=cli.cwd,
        check=True,
        capture_output=True,
    )


def test_a_saved_pipeline_runs_in_the_store_it_was_saved_with(fresh_project, study_code):
    cli = fresh_project(study_code)
    _saved(cli)
    done = cli("run", "pipeline.json")
    assert "pipeline 'study': 4 computed, 0 reused" in done.stdout
    assert "orcapod logs study.compute_bmi --failed --store store" in done.stdout
    assert "pipeline study: last run" in cli("status", "store").stdout
    cli("store", "recompute", "pipeline.json", "classify", "--where", "patient=ada")
    again = cli("run", "pipeline.json")
    assert "pipeline 'study': 1 computed, 3 reused" in again.stdout


def test_a_saved_pipeline_whose_functions_cannot_be_imported_is_refused(fresh_project, study_code):
    cli = fresh_project(study_code)
    _saved(cli)
    (cli.cwd / "study.py").rename(cli.cwd / "elsewhere.py")
    done = cli("run", "pipeline.json", check=1)
    error = " ".join(done.stderr.split())
    assert "was loaded read-only" in error and "study.compute_bmi" in error
    assert "no run recorded" in cli("runs", "store").stdout  # nothing ran
