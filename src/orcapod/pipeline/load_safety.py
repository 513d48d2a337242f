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
pass ``trusted=True`` once the file is known to be safe. :func:`planned_imports` shows,
without importing anything, what a load would import.

Where a module is looked for: on ``sys.path`` first. A module that is not there (a console
script such as ``orcapod`` does not put the working directory on ``sys.path``) is looked for
next to the pipeline file, in the folder holding it NOW, then under the root recorded for it,
and imported from the first that has it (with that folder first on ``sys.path`` while it is
imported, so it can import its neighbours, as ``orcapod run`` does for a script):

* next to the pipeline file: always, without ``trusted=True``. Decision: that folder is what
  ``python`` run in it would search, so importing from it adds nothing a load from that folder
  did not already do. It is searched before the recorded root because a project folder
  (module, ``pipeline.json`` and store together) may have been moved or copied since it was
  saved: its recorded root is then stale, and may even hold an older copy of the module;
* under the recorded root: with ``trusted=True``, or when that root is the folder holding the
  pipeline file. Any other recorded root is a location the file merely names, so a module
  found only there is not imported (its node loads read-only, and :func:`import_hint` says
  how to import it: ``trusted=True`` / ``--trusted``, or ``PYTHONPATH``).

A module found on ``sys.path`` is allowed when it lies under a recorded root or is the module
next to the pipeline file (say, loaded from inside a moved project folder).

A module that cannot be found at all is not refused: its node loads read-only, as before.
A module found under a root that raises while being imported makes the load raise
``PipelineError`` naming it (it was found, so "cannot be imported" would mislead).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import sysconfig
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from orcapod.errors import PipelineError

__all__ = ["check_imports", "import_hint", "module_root", "planned_imports"]


def _resolved(path: str) -> Path:
    return Path(path or ".").resolve()


def _locate(module_name: str, search: Sequence[str] | None = None) -> Path | None:
    """Where the top-level package of ``module_name`` would be imported from (nothing is
    imported) when searching ``search`` (default ``sys.path``), or None when it cannot be
    found (or is built in)."""
    top = module_name.partition(".")[0]
    spec = importlib.machinery.PathFinder.find_spec(top, list(search or sys.path))
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


def _function_specs(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [entry.get("function") or {} for entry in document.get("nodes", [])]


def _next_to(module_name: str, home: Path | None) -> Path | None:
    """Where ``module_name`` would be imported from in the folder ``home`` (the pipeline
    file's), or None."""
    return None if home is None else _locate(module_name, [str(home)])


def planned_imports(
    document: Mapping[str, Any], folder: Path | None = None, trusted: bool = False
) -> list[dict[str, Any]]:
    """The modules loading ``document`` would import (not imported yet in this process):
    ``{"module", "found_at", "allowed", "from_root"}`` each, ``from_root`` being the folder a
    module not on ``sys.path`` is imported from (else None). ``folder``: the folder of the
    pipeline file (see the module docstring for the rule)."""
    stdlib = _standard_library()
    recorded = {
        _resolved(root) for spec in _function_specs(document) if (root := spec.get("module_root"))
    } - stdlib
    home = None if folder is None else folder.resolve()
    planned: dict[str, dict[str, Any]] = {}
    for spec in _function_specs(document):
        module_name = spec.get("module")
        if not isinstance(module_name, str) or not module_name or module_name in sys.modules:
            continue
        if module_name in planned:
            continue
        location = _locate(module_name)
        from_root = None
        if location is not None:
            allowed = any(location.is_relative_to(root) for root in recorded) or (
                location == _next_to(module_name, home)
            )
        elif (location := _next_to(module_name, home)) is not None:
            from_root, allowed = str(home), True
        else:
            root = spec.get("module_root")
            if not isinstance(root, str) or not root or _resolved(root) in stdlib:
                continue  # not importable: the node loads read-only
            location = _locate(module_name, [str(_resolved(root))])
            if location is None or not (trusted or _resolved(root) == home):
                continue  # not importable here: the node loads read-only (import_hint)
            from_root, allowed = str(_resolved(root)), True
        planned[module_name] = {
            "module": module_name,
            "found_at": str(location),
            "allowed": allowed,
            "from_root": from_root,
        }
    return list(planned.values())


def _lines(planned: Iterable[Mapping[str, Any]]) -> str:
    return "; ".join(
        f"{p['module']} ({p['found_at']}{'' if p['allowed'] else ', REFUSED'})" for p in planned
    )


def _import_from(module_name: str, root: str) -> None:
    """Import ``module_name`` with ``root`` first on ``sys.path`` (removed afterwards)."""
    sys.path.insert(0, root)
    try:
        importlib.import_module(module_name)
    except Exception as err:
        raise PipelineError(
            f"the module {module_name!r} of a function of this pipeline, found under {root}, "
            f"raised while being imported: "
            f"{type(err).__name__}: {err}; fix the module (or what it imports) and load again"
        ) from err
    finally:
        if root in sys.path:
            sys.path.remove(root)


def check_imports(document: Mapping[str, Any], trusted: bool, path: Path) -> None:
    """Raise ``PipelineError`` when loading ``document`` (the file at ``path``) would import
    a module the rule refuses, unless ``trusted``; then import the modules that are not on
    ``sys.path`` from the root recorded for them (module docstring), so that the load finds
    them."""
    planned = planned_imports(document, path.parent, trusted)
    if not trusted and not all(p["allowed"] for p in planned):
        raise PipelineError(
            f"loading {str(path)!r} would import modules that were not on the sys.path its "
            f"functions were saved from: {_lines(planned)}. A saved pipeline is code: importing "
            "a module runs it. If you trust this file, load it with Pipeline.load(path, "
            "trusted=True); otherwise import the right modules first or fix sys.path."
        )
    for p in planned:
        if p["from_root"] is not None and p["module"] not in sys.modules:
            _import_from(p["module"], p["from_root"])


def import_hint(function: Mapping[str, Any], folder: Path | None = None) -> str | None:
    """How to import the function of a saved function entry (its ``"function"`` mapping) whose
    module is not on ``sys.path`` nor next to the pipeline file (in ``folder``) but lies under
    its recorded root; None otherwise."""
    module_name, root = function.get("module"), function.get("module_root")
    if not isinstance(module_name, str) or not module_name or module_name in sys.modules:
        return None
    if not isinstance(root, str) or not root or _locate(module_name) is not None:
        return None
    home = None if folder is None else folder.resolve()
    if _next_to(module_name, home) is not None:
        return None
    if _locate(module_name, [str(_resolved(root))]) is None:
        return None
    return (
        f"its module {module_name!r} lies under {root}, the folder it was saved from, which "
        f"is not on sys.path: load the pipeline with trusted=True (--trusted) to import it "
        f"from there, or add that folder to sys.path (PYTHONPATH={root})"
    )
