"""Which modules loading a saved pipeline may import: a saved pipeline is code.

``Pipeline.load`` imports the module of every function node by the name the JSON file gives,
and importing a module runs it. So a pipeline file must be trusted like a script: a file
naming, say, ``this`` would run that module at load time.

Rule (without ``trusted=True``). When a pipeline is saved, each function entry records the
``sys.path`` entry its module was found under (``module_root``). On load, a module already
imported in this process is used as is (importing it again runs nothing). Any other module is
located WITHOUT importing it, and is imported only when it lies under one of the roots recorded
in the file and that root is not the standard library's. Otherwise ``Pipeline.load`` raises
``PipelineError`` listing every module it would import and where each was found, and says to
pass ``trusted=True`` once the file is known to be safe. A module that cannot be found at all
is not refused: its node loads read-only, as before. :func:`planned_imports` shows, without
importing anything, what a load would import.
"""

from __future__ import annotations

import importlib.machinery
import sys
import sysconfig
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from orcapod.errors import PipelineError

__all__ = ["check_imports", "module_root", "planned_imports"]


def _resolved(path: str) -> Path:
    return Path(path or ".").resolve()


def _locate(module_name: str) -> Path | None:
    """Where the top-level package of ``module_name`` would be imported from (nothing is
    imported), or None when it cannot be found (or is built in)."""
    top = module_name.partition(".")[0]
    spec = importlib.machinery.PathFinder.find_spec(top, sys.path)
    if spec is None:
        return None
    if spec.origin and spec.origin not in ("built-in", "frozen", "namespace"):
        return Path(spec.origin).resolve()
    locations = list(spec.submodule_search_locations or [])
    return Path(locations[0]).resolve() if locations else None


def module_root(module_name: str | None) -> str | None:
    """The ``sys.path`` entry (absolute) the module ``module_name`` is found under, or None
    (``__main__``, built-in, or not found)."""
    if not module_name or module_name == "__main__":
        return None
    module = sys.modules.get(module_name.partition(".")[0])
    origin = getattr(module, "__file__", None)
    location = Path(origin).resolve() if origin else _locate(module_name)
    if location is None:
        return None
    roots = sorted((_resolved(p) for p in sys.path), key=lambda p: len(p.parts), reverse=True)
    for root in roots:
        if location.is_relative_to(root):
            return str(root)
    return None


def _standard_library() -> set[Path]:
    paths = sysconfig.get_paths()
    return {_resolved(paths[name]) for name in ("stdlib", "platstdlib") if name in paths}


def planned_imports(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The modules loading ``document`` would import (not imported yet in this process):
    ``{"module", "found_at", "allowed"}`` each (see the module docstring for the rule)."""
    recorded = {
        _resolved(root)
        for entry in document.get("nodes", [])
        if (root := (entry.get("function") or {}).get("module_root"))
    } - _standard_library()
    planned: dict[str, dict[str, Any]] = {}
    for entry in document.get("nodes", []):
        module_name = (entry.get("function") or {}).get("module")
        if not isinstance(module_name, str) or not module_name or module_name in sys.modules:
            continue
        location = _locate(module_name)
        if location is None or module_name in planned:
            continue  # not importable: the node loads read-only
        allowed = any(location.is_relative_to(root) for root in recorded)
        planned[module_name] = {
            "module": module_name,
            "found_at": str(location),
            "allowed": allowed,
        }
    return list(planned.values())


def _lines(planned: Iterable[Mapping[str, Any]]) -> str:
    return "; ".join(
        f"{p['module']} ({p['found_at']}{'' if p['allowed'] else ', REFUSED'})" for p in planned
    )


def check_imports(document: Mapping[str, Any], trusted: bool, path: Path) -> None:
    """Raise ``PipelineError`` when loading ``document`` would import a module the rule
    refuses, unless ``trusted``."""
    if trusted:
        return
    planned = planned_imports(document)
    if all(p["allowed"] for p in planned):
        return
    raise PipelineError(
        f"loading {str(path)!r} would import modules that were not on the sys.path its "
        f"functions were saved from: {_lines(planned)}. A saved pipeline is code: importing a "
        "module runs it. If you trust this file, load it with Pipeline.load(path, "
        "trusted=True); otherwise import the right modules first or fix sys.path."
    )
