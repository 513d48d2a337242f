"""Loading a saved pipeline imports only the modules its functions came from, unless trusted;
the saved store location is relative to the file when it can be."""

import importlib
import json
import shutil
import sys
import textwrap

import pytest

from orcapod.cli.demo import build_pipeline
from orcapod.errors import PipelineError
from orcapod.pipeline import LoadStatus, Pipeline
from orcapod.pipeline.load_safety import planned_imports

MODULE = textwrap.dedent(
    """
    from orcapod import function_pod

    @function_pod(output_keys="bmi")
    def compute_bmi(weight: float, height: float) -> float:
        return weight / height**2
    """
)


@pytest.fixture
def saved(tmp_path):
    store = tmp_path / "project" / "store"
    pipeline = build_pipeline(store)
    pipeline.run()
    return pipeline, pipeline.save(tmp_path / "project" / "pipeline.json")


def _rename_function_module(path, module, root):
    document = json.loads(path.read_text())
    for entry in document["nodes"]:
        if entry["label"] == "compute_bmi":
            entry["function"].update(module=module, module_root=root)
    path.write_text(json.dumps(document))
    return document


def test_a_file_naming_a_standard_library_module_is_refused(saved, capsys):
    _, path = saved
    assert "this" not in sys.modules
    document = _rename_function_module(path, "this", str(sys.path[-1]))
    assert [p["module"] for p in planned_imports(document)] == ["this"]
    with pytest.raises(PipelineError, match=r"would import .*this \(.*REFUSED\).*trusted=True"):
        Pipeline.load(path)
    assert "this" not in sys.modules
    assert "Zen of Python" not in capsys.readouterr().out


def test_a_module_outside_the_saved_roots_needs_trusted(saved, tmp_path, monkeypatch):
    _, path = saved
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "bmi_elsewhere.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(elsewhere))
    _rename_function_module(path, "bmi_elsewhere", str(tmp_path / "somewhere_else"))
    with pytest.raises(PipelineError, match=r"bmi_elsewhere \(.*bmi_elsewhere.py, REFUSED\)"):
        Pipeline.load(path)
    assert "bmi_elsewhere" not in sys.modules
    loaded = Pipeline.load(path, trusted=True)
    assert loaded.load_statuses["compute_bmi"] is LoadStatus.FULL
    monkeypatch.delitem(sys.modules, "bmi_elsewhere")


def test_a_module_where_it_was_at_save_loads_without_trust(tmp_path, monkeypatch):
    code = tmp_path / "code"
    code.mkdir()
    (code / "bmi_saved_here.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(code))
    bmi_saved_here = importlib.import_module("bmi_saved_here")  # the user's module

    pipeline = build_pipeline(tmp_path / "store")
    with pipeline:
        bmi_saved_here.compute_bmi.pod(pipeline.Join, label="bmi_again")
    path = pipeline.save(tmp_path / "p.json")
    entry = next(n for n in json.loads(path.read_text())["nodes"] if n["label"] == "bmi_again")
    assert entry["function"]["module_root"] == str(code.resolve())
    monkeypatch.delitem(sys.modules, "bmi_saved_here")  # a fresh process, as far as imports go
    assert planned_imports(json.loads(path.read_text()))[0]["allowed"] is True
    loaded = Pipeline.load(path)
    assert loaded.load_statuses["bmi_again"] is LoadStatus.FULL


def test_store_inside_the_project_is_saved_relative_and_the_project_can_move(saved, tmp_path):
    pipeline, path = saved
    config = json.loads(path.read_text())["databases"]["pipeline"]
    assert config["base_path"] == "store"
    assert config["relative"] is True
    assert str(tmp_path) not in path.read_text()
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "project", moved)
    loaded = Pipeline.load(moved / "pipeline.json")
    assert loaded.pipeline_database.base_path == str(moved / "store")
    summary = loaded.run()
    assert summary.computed == 0
    assert loaded.compute_bmi.as_table().num_rows == pipeline.compute_bmi.as_table().num_rows


def test_store_outside_the_project_is_saved_absolute(tmp_path):
    pipeline = build_pipeline(tmp_path / "store")
    path = pipeline.save(tmp_path / "sub" / "p.json")
    config = json.loads(path.read_text())["databases"]["pipeline"]
    assert config["base_path"] == str(tmp_path / "store")
    assert "relative" not in config
