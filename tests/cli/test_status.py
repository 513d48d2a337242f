"""``orcapod status`` and ``orcapod runs`` on a real store, through the installed script."""


def _line(text: str, first_cell: str) -> list[str]:
    for line in text.splitlines():
        cells = line.split()
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no line for {first_cell!r} in:\n{text}")


def test_status_shows_every_pipeline_its_nodes_rows_failures_and_partial_nodes(cli):
    out = cli("status", str(cli.store)).stdout
    assert "pipeline study: last run" in out and "pipeline other: last run" in out
    # node, type, rows, computed, reused, filtered, failed, status (the second run reused all)
    assert _line(out, "patients")[:3] == ["patients", "source", "3"]
    assert _line(out, "classify") == ["classify", "function", "2", "0", "2", "0", "0", "partial"]
    assert f"orcapod logs study.compute_bmi --failed --store {cli.store}" in out
    assert "classify: partial" in out


def test_the_store_comes_from_the_argument_the_option_or_the_environment(cli):
    by_argument = cli("status", str(cli.store)).stdout
    assert cli("status", "--store", str(cli.store)).stdout == by_argument
    assert cli("status", env={"ORCAPOD_STORE": str(cli.store)}).stdout == by_argument


def test_status_without_a_store_says_how_to_name_one(tmp_path, orcapod_in):
    done = orcapod_in(tmp_path, "status")
    assert done.returncode == 1
    assert "ORCAPOD_STORE" in done.stderr and "--store" in done.stderr


def test_status_of_a_directory_that_is_not_there_fails_clearly(tmp_path, orcapod_in):
    done = orcapod_in(tmp_path, "status", str(tmp_path / "nowhere"))
    assert done.returncode == 1
    assert "no store at" in done.stderr


def test_status_of_an_empty_store_says_nothing_ran(tmp_path, orcapod_in):
    (tmp_path / "empty").mkdir()
    done = orcapod_in(tmp_path, "status", "empty")
    assert done.returncode == 0
    assert "no pipeline has run in this store" in done.stdout


def test_runs_lists_the_history_newest_first(cli):
    out = cli("runs", str(cli.store)).stdout
    lines = [line.split() for line in out.splitlines()[2:] if line.strip()]
    assert [cells[1] for cells in lines] == ["other", "study", "study"]
    newest_study, first_study = lines[1], lines[2]
    # computed, reused, filtered, failed, status after the date, time and duration
    assert first_study[5:] == ["4", "0", "0", "1", "failed"]
    assert newest_study[5:] == ["0", "4", "0", "1", "failed"]


def test_runs_of_one_pipeline_and_the_newest_n(cli):
    out = cli("runs", "--store", str(cli.store), "--pipeline", "study", "--limit", "1").stdout
    rows = [line for line in out.splitlines()[2:] if line.strip()]
    assert len(rows) == 1 and " study " in rows[0]


def _said(done) -> str:
    return " ".join(done.stderr.split())


def test_a_folder_holding_a_store_is_not_one_and_the_error_names_the_store(cli, orcapod_in):
    done = orcapod_in(cli.cwd, "status", ".")
    assert done.returncode == 1 and done.stdout == ""
    assert ". is not an orcapod store" in _said(done)
    assert "the store inside it: store" in _said(done)
    done = orcapod_in(cli.cwd, "runs", "store/study")  # a pipeline's folder in the store
    assert done.returncode == 1
    assert f"store/study is not an orcapod store but a folder inside the store {cli.store}" in (
        _said(done)
    )


def test_an_unknown_pipeline_is_named_with_the_stores_pipelines(cli):
    done = cli("runs", str(cli.store), "--pipeline", "nope", check=1)
    assert "no pipeline 'nope' in this store; its pipelines: other, study" in _said(done)
    done = cli("graph", str(cli.store), "--pipeline", "nope", check=1)
    assert "no pipeline 'nope' in this store" in _said(done)


def test_runs_limits_are_never_negative(cli):
    done = cli("runs", str(cli.store), "--limit", "-1", check=2)
    assert "--limit" in done.stderr
    done = cli("runs", str(cli.store), "--limit", "0")
    assert done.stdout.strip() == "--limit 0: none of the 3 recorded run(s) shown"


STRICT = """
from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.sources import DictSource


@function_pod("inverse")
def invert(x: int) -> float:
    return 1 / (x - 5)


rows = [{"item": f"i{x:02d}", "x": x} for x in range(10)]
strict = Pipeline("strict", DeltaTableDatabase("store"), error_policy="fail_fast")
with strict:
    invert.pod(DictSource(rows, tag_columns=["item"], source_id="a", record_id_column="item"))
"""


def test_status_of_a_run_stopped_by_an_error_shows_the_error_and_the_counts(fresh_project):
    project = fresh_project(STRICT)
    assert project("run", "study.py", check=None).returncode != 0
    out = project("status", "store").stdout
    # the five rows before the failing one were computed and stored, and one row failed
    assert _line(out, "invert")[3:] == ["5", "0", "0", "1", "error"]
    assert "the run stopped on:" in out and "division by zero" in out
    assert "invert: 1 failed row(s)" in out
