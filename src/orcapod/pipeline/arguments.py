"""Checks of the arguments ``Pipeline`` takes, made when they are given: a wrong type or value
fails at the call that passed it, naming the argument and what it should be, never later inside
a run.

* Construction (``Pipeline(name, database, ...)``): a malformed name or a database that is not
  an ``ArrowDatabase`` is a ``PipelineError`` (``name_parts``, ``check_database``).
* Running (``check_run_arguments``, ``executor_argument``): ``run()``'s ``config`` must be a
  ``PipelineConfig``, ``observer`` a ``PipelineObserver`` (every hook present: a missing one
  would otherwise fail half-way through the run), ``execution_engine_opts`` a mapping of option
  names, ``progress`` and ``logs`` booleans; wrong ones are ``InputValidationError``.
* Nodes by label (``missing_node``, ``node_reference``): an unknown label is a
  ``NodeNotFoundError`` listing the nodes; ``node_reference`` is how messages tell the user to
  reach a node: ``pipeline.<label>`` when that attribute is the node, else
  ``pipeline.nodes['<label>']`` (a label such as ``load`` or ``run``, which a ``Pipeline``
  attribute shadows, or one that is not a Python identifier).
* Files (``file_path``): ``save``/``load`` take the path of a file; a directory is refused with
  the path of a file in it to use instead.
"""

from __future__ import annotations

import keyword
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from orcapod import executors
from orcapod.databases import ArrowDatabase
from orcapod.errors import InputValidationError, NodeNotFoundError, PipelineError
from orcapod.pipeline.observers import PipelineObserver
from orcapod.types import NodeConfig, PipelineConfig
from orcapod.types.configs import check_engine_opts

__all__ = [
    "check_database",
    "check_node_config",
    "check_run_arguments",
    "executor_argument",
    "file_path",
    "missing_node",
    "name_parts",
    "node_reference",
]

#: ``run(executor=NAME)``: the ``orcapod.executors`` class each name stands for
EXECUTOR_NAMES = {"local": "LocalExecutor", "ray": "RayExecutor"}

#: the hooks ``run()`` calls on an observer (``PipelineObserver``)
_OBSERVER_HOOKS = ("on_run_start", "on_node_start", "on_node_end", "on_node_error", "on_run_end")


def name_parts(name: Any) -> tuple[str, ...]:
    """A pipeline name (a string or a sequence of them) as its parts."""
    if isinstance(name, str):
        parts: tuple[Any, ...] = (name,)
    elif isinstance(name, Sequence) and not isinstance(name, bytes | bytearray):
        parts = tuple(name)
    else:
        parts = ()
    if not parts or not all(isinstance(p, str) and p for p in parts):
        raise PipelineError(
            f"a pipeline name must be a non-empty string (or tuple of them), such as 'study' "
            f"or ('lab', 'study'), got {type(name).__name__} {name!r}"
        )
    if parts[0].startswith("_"):
        raise PipelineError(
            f"a pipeline name may not start with '_' (the store keeps its shared areas, such "
            f"as '_result', under such names), got {name!r}; rename the pipeline"
        )
    return parts


def check_database(database: Any, what: str) -> None:
    if not isinstance(database, ArrowDatabase):
        raise PipelineError(
            f"{what} must be an orcapod ArrowDatabase (e.g. InMemoryArrowDatabase() or "
            f"DeltaTableDatabase('./store')), got {type(database).__name__}"
        )


def executor_argument(executor: Any) -> Any:
    """``run(executor=...)``: an executor instance, its name (``"local"``, ``"ray"``), or None."""
    if isinstance(executor, str):
        if executor not in EXECUTOR_NAMES:
            raise PipelineError(
                f"run(executor={executor!r}): unknown executor name; pass 'local', 'ray', or "
                "an executor instance such as LocalExecutor(max_workers=4) or "
                "RayExecutor(address='auto')"
            )
        return getattr(executors, EXECUTOR_NAMES[executor])()
    if executor is not None and not callable(getattr(executor, "with_options", None)):
        raise PipelineError(
            f"run(executor={executor!r}) is not an executor; pass 'local', 'ray', or an "
            "executor instance such as LocalExecutor() or RayExecutor()"
        )
    return executor


def check_run_arguments(
    execution_engine_opts: Any, config: Any, observer: Any, progress: Any, logs: Any
) -> None:
    """Raise ``InputValidationError`` for a ``run()`` argument of the wrong type."""
    if execution_engine_opts is not None:
        check_engine_opts(execution_engine_opts, "run(execution_engine_opts=...)")
    if config is not None and not isinstance(config, PipelineConfig):
        raise InputValidationError(
            f"run(config=...) must be a PipelineConfig, such as "
            f"PipelineConfig(executor='async_channels'), or None; got "
            f"{type(config).__name__} {config!r}"
        )
    if observer is not None and not isinstance(observer, PipelineObserver):
        missing = [hook for hook in _OBSERVER_HOOKS if not callable(getattr(observer, hook, None))]
        raise InputValidationError(
            f"run(observer=...) must be a PipelineObserver or None; {type(observer).__name__} "
            f"lacks {missing}. Subclass orcapod.pipeline.NoOpObserver and override the hooks "
            "you need"
        )
    for name, value in (("progress", progress), ("logs", logs)):
        if not isinstance(value, bool):
            raise InputValidationError(
                f"run({name}=...) must be True or False, got {type(value).__name__} {value!r}"
            )


def check_node_config(label: str, config: Any) -> None:
    """``set_node_config(label, config)``: ``config`` must be a ``NodeConfig``."""
    if not isinstance(config, NodeConfig):
        raise InputValidationError(
            f"set_node_config({label!r}, config): config must be a NodeConfig, such as "
            f"NodeConfig(max_concurrency=2); got {type(config).__name__} {config!r}"
        )


def missing_node(pipeline_name: str, label: Any, labels: Sequence[str]) -> NodeNotFoundError:
    """The error for a label that names no node of the pipeline."""
    return NodeNotFoundError(
        f"pipeline {pipeline_name!r} has no node {label!r}; nodes: {list(labels)} (nodes "
        "appear after the `with` block ends or after compile())"
    )


def node_reference(label: str, owner: type) -> str:
    """How to reach the node ``label`` of a pipeline of class ``owner`` in Python code."""
    if (
        label.isidentifier()
        and not keyword.iskeyword(label)
        and not label.startswith("_")
        and not hasattr(owner, label)
    ):
        return f"pipeline.{label}"
    return f"pipeline.nodes[{label!r}]"


def file_path(path: Any, call: str) -> Path:
    """``path`` (a str or ``os.PathLike``) as a ``Path``; refuses a directory."""
    if not isinstance(path, str | PathLike):
        raise InputValidationError(
            f"{call}(path): path must be a str or pathlib.Path naming a file, such as "
            f"'pipeline.json'; got {type(path).__name__} {path!r}"
        )
    resolved = Path(path)
    if resolved.is_dir():
        raise InputValidationError(
            f"{call}({str(path)!r}): that is a directory; pass the path of a file, such as "
            f"{str(resolved / 'pipeline.json')!r}"
        )
    return resolved
