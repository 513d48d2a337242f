"""``orcapod show NODE`` and ``orcapod logs NODE`` on a real store, through the installed script."""

import csv
import io
import json
import subprocess
import sys


def test_show_prints_the_current_rows_of_a_function_node(cli):
    out = cli("show", "compute_bmi", "--store", str(cli.store), check=1)
    assert "several pipelines" in out.stderr  # study and other both have compute_bmi
    assert "study.compute_bmi" in out.stderr and "other.compute_bmi" in out.stderr
    shown = cli("show", "study.compute_bmi", "--store", str(cli.store)).stdout
    assert "ada" in shown and "21.61" in shown and "bob" in shown and "27.47" in shown
    assert "cyd" not in shown  # its row failed: no result
    assert "2 row(s)" in shown


def test_show_as_csv_and_json(cli):
    args = ("show", "classify", "--store", str(cli.store))
    rows = list(csv.DictReader(io.StringIO(cli(*args, "--format", "csv").stdout)))
    assert rows == [
        {"patient": "ada", "category": "normal"},
        {"patient": "bob", "category": "overweight"},
    ]
    assert json.loads(cli(*args, "-f", "json").stdout) == rows
    assert json.loads(cli(*args, "-f", "json", "--limit", "1").stdout) == rows[:1]


def test_show_of_a_source_node_or_an_unknown_node_explains(cli):
    source = cli("show", "patients", "--store", str(cli.store), check=1)
    assert "keeps no table in the store" in source.stderr
    unknown = cli("show", "nothing", "--store", str(cli.store), check=1)
    assert "no node 'nothing'" in unknown.stderr and "study.classify" in unknown.stderr


def test_logs_show_captured_output_and_the_traceback_of_failed_calls(cli):
    out = cli("logs", "study.compute_bmi", "--store", str(cli.store), "--failed").stdout
    assert out.count("patient=cyd  FAILED") == 2  # one per run
    assert "bmi of -1.0 kg, 1.75 m" in out
    assert "ValueError: weight must be positive, got -1.0" in out
    assert "patient=ada" not in out


def test_logs_show_python_logging_records(cli):
    out = cli("logs", "classify", "--store", str(cli.store)).stdout
    assert "logging:" in out and "classifying 21.61" in out


def test_logs_of_one_run_named_by_a_prefix_of_its_id(cli):
    runs = cli("runs", str(cli.store), "--pipeline", "study").stdout.splitlines()[2:]
    oldest = runs[-1].split()[0]
    out = cli("logs", "study.compute_bmi", "--store", str(cli.store), "--run", oldest[:6]).stdout
    assert out.count(f"(run {oldest})") == 3 and "3 entries" in out
    missing = cli("logs", "study.compute_bmi", "--store", str(cli.store), "--run", "zz", check=1)
    assert "no run 'zz'" in missing.stderr


def test_logs_limit_keeps_the_newest_entries(cli):
    out = cli("logs", "study.compute_bmi", "--store", str(cli.store), "-n", "2").stdout
    assert "older entries" in out


def test_logs_leave_out_orcapods_own_frames_unless_asked(cli):
    args = ("logs", "study.compute_bmi", "--store", str(cli.store), "--failed", "-n", "1")
    short = cli(*args).stdout
    assert 'File "study.py"' in short and "orcapod/" not in short
    full = cli(*args, "--full").stdout
    assert 'File "study.py"' in full and "orcapod/functions" in full


ARRAYS = """
from typing import Annotated

import numpy as np
from numpy.typing import NDArray

from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.sources import DictSource
from orcapod.types import Shape


@function_pod("ramp")
def ramp(n: int) -> NDArray[np.float64]:
    return np.arange(n, dtype=np.float64)


@function_pod("grid")
def grid(n: int) -> Annotated[NDArray[np.int64], Shape(2, 2)]:
    return np.array([[n, 2 * n], [3 * n, 4 * n]], dtype=np.int64)


source = DictSource([{"k": "a", "n": 2}, {"k": "b", "n": 20}], tag_columns=["k"])
pipeline = Pipeline("arrays", DeltaTableDatabase("store"))
with pipeline:
    ramp.pod(source)
    grid.pod(source)
"""


def test_show_prints_array_outputs_in_every_format(fresh_project):
    cli = fresh_project(ARRAYS)
    cli("run", "study.py")
    ramp = ("show", "ramp", "--store", str(cli.store))
    table = cli(*ramp).stdout
    assert "[0.0, 1.0]" in table  # short arrays in full, one line
    assert "[0.0, 1.0, ..., 18.0, 19.0] (shape 20)" in table  # long ones shortened
    rows = list(csv.DictReader(io.StringIO(cli(*ramp, "-f", "csv").stdout)))
    assert [json.loads(r["ramp"]) for r in rows] == [[0.0, 1.0], [float(i) for i in range(20)]]
    listed = json.loads(cli(*ramp, "-f", "json").stdout)
    assert listed[1] == {"k": "b", "ramp": [float(i) for i in range(20)]}
    grid = ("show", "grid", "--store", str(cli.store))
    assert "[[2, 4], [6, 8]]" in cli(*grid).stdout  # in its shape, not flattened
    assert json.loads(cli(*grid, "-f", "json").stdout)[0] == {"k": "a", "grid": [[2, 4], [6, 8]]}


def test_negative_limits_and_ports_out_of_range_are_refused_by_the_options(cli):
    store = str(cli.store)
    for args in (
        ("show", "study.compute_bmi", "--store", store, "-n", "-1"),
        ("logs", "study.compute_bmi", "--store", store, "-n", "-2"),
        ("ui", store, "--port", "99999"),
    ):
        done = cli(*args, check=2)
        assert "Invalid value" in done.stderr and "Traceback" not in done.stderr


ODD_VALUES = """
from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.sources import DictSource


@function_pod(["ratio", "raw"])
def odd(x: int) -> tuple[float, bytes]:
    return (float("nan") if x == 0 else float("inf") if x == 1 else x / 4), bytes([x, 255])


pipeline = Pipeline("odd", DeltaTableDatabase("store"))
with pipeline:
    odd.pod(DictSource([{"k": k, "x": k} for k in range(3)], tag_columns=["k"]))
"""


def _strict(constant: str) -> None:
    raise AssertionError(f"not strict JSON: {constant}")


def test_show_writes_strict_json_and_bytes_alike_in_csv_and_json(fresh_project):
    project = fresh_project(ODD_VALUES)
    project("run", "study.py")
    args = ("show", "odd", "--store", "store")
    rows = json.loads(project(*args, "-f", "json").stdout, parse_constant=_strict)
    assert rows == [
        {"k": 0, "ratio": None, "raw": "00ff"},
        {"k": 1, "ratio": None, "raw": "01ff"},
        {"k": 2, "ratio": 0.5, "raw": "02ff"},
    ]
    table = list(csv.DictReader(io.StringIO(project(*args, "-f", "csv").stdout)))
    assert [r["raw"] for r in table] == ["00ff", "01ff", "02ff"]


def test_show_of_a_node_without_rows_prints_its_tag_and_output_columns(fresh_project, study_code):
    cli = fresh_project(study_code)
    cli("run", "study.py")
    subprocess.run(
        [sys.executable, "-c", "from study import study; study.save('pipeline.json')"],
        cwd=cli.cwd,
        check=True,
        capture_output=True,
    )
    cli("store", "forget-node", "pipeline.json", "classify")
    shown = cli("show", "classify", "--store", "store").stdout
    assert shown.split()[:2] == ["patient", "category"] and "0 row(s)" in shown
    as_csv = cli("show", "classify", "--store", "store", "-f", "csv").stdout
    assert as_csv == "patient,category\n"


CHANGING = """
import os

from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.sources import DictSource


@function_pod("y")
def double(x: int) -> int:
    return 2 * x


rows = [{"k": 1, "x": 1}, {"k": 2, "x": int(os.environ["SECOND"])}]
study = Pipeline("study", DeltaTableDatabase("store"))
with study:
    double.pod(DictSource(rows, tag_columns=["k"], record_id_column="k"))
"""


def test_show_and_lineage_of_a_tag_whose_input_changed_back_give_its_current_value(
    fresh_project,
):
    cli = fresh_project(CHANGING)
    for second in ("2", "3", "2"):  # back to the first input: its record is reused
        cli("run", "study.py", env={"SECOND": second})
    shown = cli("show", "double", "--store", str(cli.store), "-f", "json").stdout
    assert json.loads(shown) == [{"k": 1, "y": 2}, {"k": 2, "y": 4}]
    lineage = cli("lineage", "double", "--where", "k=2", "--store", "store").stdout
    assert "y=4" in lineage and "y=6" not in lineage
