"""``node.explain()``: each reason produced by real edits of files on disk, run in fresh
processes (as a user reruns a script after editing it)."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path
from typing import Any

import pytest

from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.nodes.explain import explain_node
from orcapod.sources import DictSource

PIPELINE = """
import json, os, sys
from orcapod.databases import DeltaTableDatabase
from orcapod.functions import function_pod
from orcapod.pipeline import Pipeline
from orcapod.sources import DictSource
from orcapod.types import CacheMatch
import work

rows = json.loads(os.environ["ROWS"])
source = DictSource(rows, tag_columns=["id"], source_id="items", record_id_column="id")
pod = function_pod("y")(work.compute)
pipeline = Pipeline(os.environ.get("PIPELINE", "study"), DeltaTableDatabase(sys.argv[1]))
with pipeline:
    pod.pod(source)
node = pipeline.compute
if os.environ.get("MATCH"):  # a node has no public cache-match setting yet
    node.cached_function_pod._binding.cache_match = CacheMatch(os.environ["MATCH"])
if os.environ.get("EXECUTOR_WORKERS"):
    from orcapod.executors import LocalExecutor
    node.executor = LocalExecutor(max_workers=int(os.environ["EXECUTOR_WORKERS"]))
before = node.explain().to_dict()
if sys.argv[2] == "run":
    pipeline.run()
after = node.explain().to_dict()
print(json.dumps({"before": before, "after": after}))
"""

WORK = """
import features
from features import normalise
THRESHOLD = 0.5

def compute(x: float, k: float = 1.0) -> float:
    \"\"\"Apply the model.\"\"\"
    # scale first
    return normalise(x) * k + THRESHOLD + features.offset(x)
"""

FEATURES = """
SCALE = 2.0

def normalise(x):
    return x * SCALE

def offset(x):
    return 0.0
"""

ROWS = [{"id": i, "x": float(i)} for i in range(4)]


class Project:
    """A directory with the user's modules and a store; runs the pipeline in a subprocess."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = root / "store"
        (root / "work.py").write_text(textwrap.dedent(WORK))
        (root / "features.py").write_text(textwrap.dedent(FEATURES))
        (root / "pipeline_script.py").write_text(PIPELINE)
        self.python = sys.executable

    def edit(self, name: str, old: str, new: str) -> None:
        path = self.root / name
        text = path.read_text()
        assert old in text, (old, text)
        path.write_text(text.replace(old, new))

    def run(self, mode: str = "run", rows: list[dict] | None = None, **env: str) -> dict:
        environment = {
            "ROWS": json.dumps(rows if rows is not None else ROWS),
            "PYTHONPATH": str(self.root),
            "PYTHONDONTWRITEBYTECODE": "1",
            **env,
        }
        out = subprocess.run(
            [self.python, str(self.root / "pipeline_script.py"), str(self.store), mode],
            capture_output=True,
            text=True,
            env=environment,
            cwd=self.root,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project(tmp_path)
    first = p.run()
    assert _reasons(first["before"]) == {"new input": 4}
    assert first["after"]["pending"] is False
    assert _reasons(first["after"]) == {"new input": 4}
    return p


def _reasons(explanation: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for group in explanation["groups"]:
        out[group["reason"]] = out.get(group["reason"], 0) + group["count"]
    return out


def _details(explanation: dict) -> list[str]:
    return [d for g in explanation["groups"] for d in g["details"]]


def test_nothing_pending_after_a_run_and_first_run_is_new_input(project: Project) -> None:
    again = project.run("explain")
    assert again["before"]["pending"] is False


def test_a_module_constant_edit_names_the_constant_with_old_and_new_value(
    project: Project,
) -> None:
    project.edit("work.py", "THRESHOLD = 0.5", "THRESHOLD = 0.7")
    out = project.run("explain")
    assert _reasons(out["before"]) == {"code changed": 4}
    assert _details(out["before"]) == ["global `THRESHOLD` 0.5 → 0.7"]


def test_a_helper_edit_in_another_module_names_the_helper(project: Project) -> None:
    project.edit("features.py", "return x * SCALE", "return x * SCALE + 1")
    out = project.run("explain")
    assert _reasons(out["before"]) == {"code changed": 4}
    (detail,) = _details(out["before"])
    assert detail.startswith("helper `features.normalise` changed (")  # old → new digest


def test_a_constant_read_by_a_helper_names_it_with_its_module(project: Project) -> None:
    project.edit("features.py", "SCALE = 2.0", "SCALE = 3.0")
    out = project.run("explain")
    assert _details(out["before"]) == ["global `features.SCALE` 2.0 → 3.0"]


def test_a_module_attribute_read_as_mod_helper_is_named(project: Project) -> None:
    project.edit("features.py", "return 0.0", "return 1.0")
    out = project.run("explain")
    (detail,) = _details(out["before"])
    assert detail.startswith("helper `features.offset` changed (")


def test_a_default_edit_names_the_parameter(project: Project) -> None:
    project.edit("work.py", "k: float = 1.0", "k: float = 2.0")
    out = project.run("explain")
    assert _reasons(out["before"]) == {"code changed": 4}
    assert _details(out["before"]) == ["default `k` 1.0 → 2.0"]


def test_the_function_body_edit_names_the_code(project: Project) -> None:
    project.edit("work.py", "* k +", "* k * 2 +")
    out = project.run("explain")
    (detail,) = _details(out["before"])
    assert detail.startswith("code `compute` changed (")


def test_comments_docstrings_and_formatting_are_no_code_change(project: Project) -> None:
    project.edit("work.py", "# scale first", "# scale first, then shift")
    project.edit("work.py", '"""Apply the model."""', '"""Apply the model (v2)."""')
    project.edit("work.py", "normalise(x) * k", "normalise( x )*k")
    project.edit("features.py", "def normalise(x):", "def normalise(x):\n    # helper\n")
    out = project.run("explain")
    assert out["before"]["pending"] is False  # nothing to compute; the rows stay "new input"
    assert _reasons(out["before"]) == {"new input": 4}


def test_after_a_rerun_the_computed_rows_keep_their_reason(project: Project) -> None:
    project.edit("work.py", "THRESHOLD = 0.5", "THRESHOLD = 0.7")
    out = project.run("run")
    assert out["after"]["pending"] is False
    assert _details(out["after"]) == ["global `THRESHOLD` 0.5 → 0.7"]


def test_new_rows_and_upstream_changes_are_told_apart(project: Project) -> None:
    rows = [dict(r) for r in ROWS]
    rows[0]["x"] = 100.0  # an upstream value changed under the same tag
    rows.append({"id": 9, "x": 9.0})  # a new row
    out = project.run("explain", rows=rows)
    assert _reasons(out["before"]) == {"upstream changed": 1, "new input": 1}
    tags = {g["reason"]: g["tags"] for g in out["before"]["groups"]}
    assert tags == {"upstream changed": [{"id": 0}], "new input": [{"id": 9}]}


def test_a_failed_row_is_reported_as_failed_before(tmp_path: Path) -> None:
    p = Project(tmp_path)
    p.edit(
        "work.py",
        "    return normalise",
        "    if x == 2.0:\n        raise ValueError('bad x')\n    return normalise",
    )
    p.run()
    out = p.run("explain")
    assert _reasons(out["before"]) == {"failed before": 1}
    assert any("ValueError: bad x" in d for d in _details(out["before"]))


def test_strict_matching_reports_a_changed_executor(project: Project) -> None:
    # another pipeline of the store shares the results but has no records of its own
    out = project.run("explain", MATCH="strict", EXECUTOR_WORKERS="2", PIPELINE="other")
    assert _reasons(out["before"]) == {"execution data changed": 4}
    assert any(d.startswith("executor_options") for d in _details(out["before"]))


def test_a_library_version_change_is_named(tmp_path: Path) -> None:
    env_dir = tmp_path / "env"
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    package = Path(site) / "fakelib"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("__version__ = '1.0'\ndef bump(x):\n    return x\n")
    # the project's own environment (orcapod and its dependencies) stays importable
    ours = sysconfig.get_paths()["purelib"]
    (Path(site) / "orcapod_dev.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    p = Project(tmp_path / "proj") if (tmp_path / "proj").mkdir() is None else None
    assert p is not None
    p.python = str(python)
    p.edit("work.py", "import features\n", "import features\nimport fakelib\n")
    p.edit("work.py", "+ THRESHOLD", "+ fakelib.bump(THRESHOLD)")
    p.run()
    (package / "__init__.py").write_text("__version__ = '1.1'\ndef bump(x):\n    return x\n")
    out = p.run("explain")
    assert _details(out["before"]) == ["library `fakelib` fakelib 1.0 → fakelib 1.1"]


def _chain(store: Path, offset: int) -> Any:
    """source -> f (adds ``offset``) -> select -> g -> h, in a pipeline on a Delta store."""

    @function_pod("y")
    def f(x: int) -> int:
        return x + offset

    @function_pod("z")
    def g(y: int) -> int:
        return 2 * y

    @function_pod("w")
    def h(z: int) -> int:
        return z

    source = DictSource(
        [{"k": "a", "x": 1}, {"k": "b", "x": 2}],
        tag_columns=["k"],
        source_id="s",
        record_id_column="k",
    )
    pipeline = Pipeline("chain", DeltaTableDatabase(store))
    with pipeline:
        h.pod(g.pod(f.pod(source)).select_packet_columns("z"))
    return pipeline


def test_a_node_below_pending_work_says_its_work_is_not_known_yet(tmp_path: Path) -> None:
    _chain(tmp_path, 0).run(progress=False)
    pipeline = _chain(tmp_path, 1)  # f's closure changed: both of its rows are pending
    g = explain_node(pipeline.nodes["g"])
    assert (g.pending, g.known, g.waiting_on) == (True, False, (("f", 2),))
    assert str(g).splitlines()[0] == (
        "node 'g': depends on 'f', which has 2 pending rows; its work is known after 'f' runs"
    )
    assert g.to_dict()["waiting_on"] == [{"node": "f", "pending_rows": 2}]
    h = explain_node(pipeline.nodes["h"])  # two levels down, through an operator
    assert (h.pending, h.known, h.waiting_on) == (True, False, (("g", None),))
    assert "whose own work waits on its upstream nodes" in str(h)
    summary = pipeline.run(progress=False)
    assert summary.computed == 4  # the run did compute rows of g and h
    after = {label: explain_node(pipeline.nodes[label]) for label in ("f", "g", "h")}
    assert all(e.known and not e.pending for e in after.values())
    assert after["g"].by_reason() == {"upstream changed": 1}


def test_upstream_nodes_with_nothing_pending_leave_the_explanation_known(
    tmp_path: Path,
) -> None:
    _chain(tmp_path, 0).run(progress=False)
    again = explain_node(_chain(tmp_path, 0).nodes["h"])
    assert (again.known, again.pending, again.waiting_on) == (True, False, ())
