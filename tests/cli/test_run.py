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
