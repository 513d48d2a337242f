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
from orcapod.pipeline.load_safety import import_hint, planned_imports

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


def _save_with_module(folder, module_name, json_path, monkeypatch):
    """A pipeline using ``module_name`` (written in ``folder``, imported from there) saved at
    ``json_path``; then the module is forgotten and ``folder`` is off ``sys.path``, as in a
    new process started elsewhere (a console script such as ``orcapod``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module_name}.py").write_text(MODULE)
    with monkeypatch.context() as patch:
        patch.syspath_prepend(str(folder))
        module = importlib.import_module(module_name)
        pipeline = build_pipeline(json_path.parent / "store")
        with pipeline:
            module.compute_bmi.pod(pipeline.Join, label="bmi_again")
        pipeline.run()
        path = pipeline.save(json_path)
    monkeypatch.delitem(sys.modules, module_name)
    return path


def test_a_module_saved_next_to_the_pipeline_file_is_found_there_without_trust(
    tmp_path, monkeypatch
):
    path = _save_with_module(
        tmp_path / "project", "bmi_next_to", tmp_path / "project" / "p.json", monkeypatch
    )
    assert str(tmp_path / "project") not in sys.path
    loaded = Pipeline.load(path)
    assert loaded.load_statuses["bmi_again"] is LoadStatus.FULL
    assert loaded.run()["bmi_again"].computed == 0  # the same node: its rows are stored
    assert str(tmp_path / "project") not in sys.path  # only while importing
    monkeypatch.delitem(sys.modules, "bmi_next_to")


def test_a_module_under_another_saved_root_needs_trust_and_the_hint_says_so(tmp_path, monkeypatch):
    code = tmp_path / "code"
    path = _save_with_module(code, "bmi_in_code", tmp_path / "saved" / "p.json", monkeypatch)
    loaded = Pipeline.load(path)  # the file merely names that folder: not imported from it
    assert loaded.load_statuses["bmi_again"] is LoadStatus.READ_ONLY
    assert "bmi_in_code" not in sys.modules
    entry = next(n for n in json.loads(path.read_text())["nodes"] if n["label"] == "bmi_again")
    hint = import_hint(entry["function"])
    assert hint is not None and "trusted=True" in hint and f"PYTHONPATH={code}" in hint
    trusted = Pipeline.load(path, trusted=True)
    assert trusted.load_statuses["bmi_again"] is LoadStatus.FULL
    assert import_hint(entry["function"]) is None  # imported now
    monkeypatch.delitem(sys.modules, "bmi_in_code")


def test_a_module_found_under_its_root_that_raises_names_itself(tmp_path, monkeypatch):
    path = _save_with_module(
        tmp_path / "project", "bmi_breaks", tmp_path / "project" / "p.json", monkeypatch
    )
    (tmp_path / "project" / "bmi_breaks.py").write_text("raise RuntimeError('broken module')\n")
    with pytest.raises(PipelineError, match=r"'bmi_breaks'.*RuntimeError: broken module"):
        Pipeline.load(path)
    assert "bmi_breaks" not in sys.modules


def test_a_moved_project_finds_its_module_next_to_the_pipeline_file(tmp_path, monkeypatch):
    project = tmp_path / "project"
    _save_with_module(project, "bmi_moved", project / "p.json", monkeypatch)
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    shutil.move(project, moved)  # module, pipeline file and store together
    for trusted in (False, True):  # the recorded root is gone: the file's folder is searched
        loaded = Pipeline.load(moved / "p.json", trusted=trusted)
        assert loaded.load_statuses["bmi_again"] is LoadStatus.FULL
        assert sys.modules["bmi_moved"].__file__ == str(moved / "bmi_moved.py")
        assert loaded.run()["bmi_again"].computed == 0
        monkeypatch.delitem(sys.modules, "bmi_moved")
    monkeypatch.syspath_prepend(str(moved))  # loaded from inside the folder: on sys.path
    assert Pipeline.load(moved / "p.json").load_statuses["bmi_again"] is LoadStatus.FULL
    monkeypatch.delitem(sys.modules, "bmi_moved")


def test_a_copied_project_imports_its_own_module_not_the_original(tmp_path, monkeypatch):
    original = tmp_path / "original"
    _save_with_module(original, "bmi_copied", original / "p.json", monkeypatch)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    (original / "bmi_copied.py").write_text("raise RuntimeError('the original was imported')\n")
    document = json.loads((copy / "p.json").read_text())
    entry = next(n for n in document["nodes"] if n["label"] == "bmi_again")
    assert import_hint(entry["function"], copy) is None  # no hint towards the original
    for trusted in (False, True):
        loaded = Pipeline.load(copy / "p.json", trusted=trusted)
        assert loaded.load_statuses["bmi_again"] is LoadStatus.FULL
        assert sys.modules["bmi_copied"].__file__ == str(copy / "bmi_copied.py")
        monkeypatch.delitem(sys.modules, "bmi_copied")
