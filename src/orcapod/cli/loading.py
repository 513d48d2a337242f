"""Loading the user's pipelines for the commands that need their code: ``run``, ``explain``,
``verify``, ``lineage --pipeline-file`` and ``store forget-node`` / ``recompute``.

* A Python file (``load_script``) is executed as a module named ``__orcapod_run__`` (so an
  ``if __name__ == "__main__":`` block in it does not run), with its folder first on
  ``sys.path`` while it runs, so it can import its neighbours - the same for every command.
  When it raises, the command prints one ``error:`` line (the file, the exception) and the
  frames of the user's own files below it (the frames of ``runpy``, the command line and
  orcapod left out, as ``orcapod logs`` does), and exits with status 1.
* A saved pipeline (``.json``, ``load_saved``) is ``Pipeline.load``: its functions' modules
  are imported as ``orcapod.pipeline.load_safety`` allows (``--trusted`` to import them
  wherever they are); an orcapod error is an ``error:`` line.
* ``function_node`` finds a function node by label, saying which nodes are function nodes
  (loaded or read-only) and, for a read-only one, why it is (the node's ``load_reason``, which
  says how to import its function). ``stored_function_node`` takes a read-only one too: store
  maintenance needs only the tables its saved entry names, not its function; ``tag_types``
  gives either's tag column types for ``--where``.
"""

from __future__ import annotations

import runpy
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

import orcapod
from orcapod.cli.options import fail
from orcapod.cli.where import arrow_types
from orcapod.errors import OrcapodError
from orcapod.nodes.summary import NodeType
from orcapod.pipeline import Pipeline

__all__ = [
    "RUN_NAME",
    "function_labels",
    "function_node",
    "load_saved",
    "load_script",
    "pipelines_of",
    "stored_function_node",
    "tag_types",
]

RUN_NAME = "__orcapod_run__"
_ORCAPOD_DIR = Path(orcapod.__file__).resolve().parent
_ARTICLES = {NodeType.SOURCE: "a", NodeType.OPERATOR: "an", NodeType.FUNCTION: "a"}


def pipelines_of(namespace: Mapping[str, Any]) -> list[Pipeline]:
    """The distinct pipelines among a module's top-level names, in definition order."""
    found: list[Pipeline] = []
    for value in namespace.values():
        if isinstance(value, Pipeline) and all(value is not p for p in found):
            found.append(value)
    return found


def _inside_orcapod(filename: str) -> bool:
    return Path(filename).resolve().is_relative_to(_ORCAPOD_DIR)


def _user_frames(error: BaseException, file: Path) -> str:
    """The traceback of ``error`` from the frame of ``file`` on, without orcapod's frames."""
    frames = traceback.extract_tb(error.__traceback__)
    target = file.resolve()
    start = next((i for i, f in enumerate(frames) if Path(f.filename).resolve() == target), 0)
    kept = [f for f in frames[start:] if not _inside_orcapod(f.filename)]
    return "".join(traceback.format_list(kept)).rstrip()


def load_script(file: Path) -> dict[str, Any]:
    """The top-level names of the Python file ``file``, executed as the module docstring says."""
    if not file.is_file():
        raise fail(f"no such file: {file}")
    folder = str(file.resolve().parent)
    sys.path.insert(0, folder)
    try:
        return runpy.run_path(str(file), run_name=RUN_NAME)
    except Exception as err:
        raise fail(
            f"{file} raised while defining its pipelines: {type(err).__name__}: {err}",
            detail=_user_frames(err, file),
        ) from err
    finally:
        if folder in sys.path:
            sys.path.remove(folder)


def load_saved(path: Path, trusted: bool, database: Any = None) -> Pipeline:
    """``Pipeline.load(path, ...)``; an orcapod error is an ``error:`` line."""
    if not path.is_file():
        raise fail(f"no saved pipeline at {str(path)!r}: pass the file Pipeline.save wrote")
    try:
        return Pipeline.load(path, pipeline_database=database, trusted=trusted)
    except OrcapodError as err:
        raise fail(str(err)) from err


def function_labels(pipeline: Pipeline) -> list[str]:
    """The labels of the pipeline's function nodes, loaded or read-only (the same rule as
    ``orcapod.pipeline.maintenance.function_labels``, which the command line does not import
    before a maintenance command runs: it loads the store libraries)."""
    return [label for label in pipeline.nodes if pipeline.node_type(label) is NodeType.FUNCTION]


def stored_function_node(pipeline: Pipeline, label: str) -> Any:
    """The function node ``label``, loaded or read-only; fails saying why when there is none."""
    functions = ", ".join(function_labels(pipeline)) or "none"
    if label not in pipeline.nodes:
        raise fail(
            f"pipeline {pipeline.name!r} has no node {label!r}; its function nodes: {functions}"
        )
    kind = pipeline.node_type(label)
    if kind is not NodeType.FUNCTION:
        raise fail(
            f"node {label!r} of pipeline {pipeline.name!r} is {_ARTICLES[kind]} {kind.value} "
            f"node, not a function node; its function nodes: {functions}"
        )
    return pipeline.nodes[label]


def function_node(pipeline: Pipeline, label: str) -> Any:
    """The runnable function node ``label``; fails saying why when there is none."""
    node = stored_function_node(pipeline, label)
    reason = getattr(node, "load_reason", None)
    if reason:
        raise fail(f"function node {label!r} was loaded read-only: {reason}")
    return node


def _saved_type(name: str) -> pa.DataType | None:
    try:
        return pa.type_for_alias(name)
    except ValueError:
        return None


def tag_types(node: Any) -> dict[str, pa.DataType | None]:
    """Tag column -> Arrow type of a function node, loaded (its schema) or read-only (the
    types its saved entry names; None where the text names no simple type)."""
    if getattr(node, "load_reason", None):
        saved = getattr(node, "descriptor", {}).get("output_schema", {}).get("tag", {})
        return {column: _saved_type(str(name)) for column, name in saved.items()}
    return arrow_types(node.output_schema()[0])
