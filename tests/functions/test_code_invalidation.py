"""End to end: editing a function's code invalidates its cached results at the default
CacheMatch.CODE tier; a cosmetic edit (comment, formatting, docstring) does not. A real module
file is written, imported, edited and re-imported; results live in memory or in Delta Lake."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from orcapod.databases import ArrowDatabase
from orcapod.functions import CachedFunctionPod, FunctionPod, PythonPacketFunction
from orcapod.types import CacheMatch

ORIGINAL = '''
OFFSET = 1


def helper(v: int) -> int:
    return v + OFFSET


def transform(x: int) -> int:
    """Add the offset."""
    return helper(x) * 2
'''

EDITS = {
    # cosmetic: same code
    "comment": ORIGINAL.replace("return helper(x) * 2", "return helper(x) * 2  # doubled"),
    "docstring": ORIGINAL.replace('"""Add the offset."""', '"""Add the offset, then double."""'),
    "formatting": ORIGINAL.replace("return helper(x) * 2", "return (helper(x)\n            * 2)"),
    # semantic: other code
    "body": ORIGINAL.replace("return helper(x) * 2", "return helper(x) * 3"),
    "helper": ORIGINAL.replace("return v + OFFSET", "return v - OFFSET"),
    "constant": ORIGINAL.replace("OFFSET = 1", "OFFSET = 5"),
}


def load(tmp_path: Path, name: str, text: str, version: int) -> ModuleType:
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    os.utime(path, (1_000_000 + version, 1_000_000 + version))  # never a stale .pyc / line cache
    sys.modules.pop(name, None)
    importlib.invalidate_caches()
    return importlib.import_module(name)


def run(module: ModuleType, db: ArrowDatabase, make_source: Any, **kw: Any) -> list[bool]:
    pod = CachedFunctionPod(FunctionPod(PythonPacketFunction(module.transform, "y")), db, **kw)
    return [p.get_meta_value("__computed") for _, p in pod(make_source(3))]


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "user_code"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    return directory


@pytest.mark.parametrize(
    ("edit", "recomputed"), [(k, k in {"body", "helper", "constant"}) for k in EDITS]
)
def test_code_edits_invalidate_cosmetic_edits_do_not(
    module_dir: Path, db: ArrowDatabase, make_source: Any, edit: str, recomputed: bool
) -> None:
    name = f"user_module_{edit}"
    first = load(module_dir, name, ORIGINAL, 1)
    assert run(first, db, make_source) == [True, True, True]
    assert run(first, db, make_source) == [False, False, False]
    edited = load(module_dir, name, EDITS[edit], 2)
    assert edited.transform is not first.transform
    assert run(edited, db, make_source) == [recomputed] * 3
    expected = {"body": [3, 6, 9], "helper": [-2, 0, 2], "constant": [10, 12, 14]}
    values = [
        p["y"]
        for _, p in CachedFunctionPod(FunctionPod(PythonPacketFunction(edited.transform, "y")), db)(
            make_source(3)
        )
    ]
    assert values == expected.get(edit, [2, 4, 6])


def test_version_tier_keeps_serving_old_results_after_an_edit(
    module_dir: Path, db: ArrowDatabase, make_source: Any
) -> None:
    first = load(module_dir, "user_module_version", ORIGINAL, 1)
    run(first, db, make_source)
    edited = load(module_dir, "user_module_version", EDITS["body"], 2)
    assert run(edited, db, make_source, cache_match=CacheMatch.VERSION) == [False] * 3
    assert run(edited, db, make_source) == [True] * 3
    # going back to the original code finds its results again: nothing was overwritten
    back = load(module_dir, "user_module_version", ORIGINAL, 3)
    assert run(back, db, make_source) == [False] * 3
