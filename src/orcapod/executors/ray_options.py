"""Checking and copying ``RayExecutor`` options (the constructor's arguments).

Bad option values fail when the executor is made, with a message naming the option and a
valid example, not at the first call.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from orcapod.errors import ExecutorError

__all__ = [
    "check_amount",
    "check_calls_per_task",
    "check_resources",
    "check_timeout",
    "copy_plain",
    "freeze_option",
]


def freeze_option(value: Any) -> Hashable:
    """A hashable stand-in for an option value, equal for equal values (for ``__hash__``)."""
    if isinstance(value, Mapping):
        return ("map", tuple(sorted((str(k), freeze_option(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("seq", tuple(freeze_option(v) for v in value))
    if isinstance(value, (set, frozenset)):
        return ("set", frozenset(freeze_option(v) for v in value))
    try:
        hash(value)
    except TypeError:  # an unhashable custom value: fall back to its repr
        return ("repr", repr(value))
    return value


def copy_plain(value: Any) -> Any:
    """Copy the dict/list containers of an option value (other objects are shared)."""
    if isinstance(value, Mapping):
        return {k: copy_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_plain(v) for v in value]
    return value


def check_calls_per_task(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ExecutorError(
            f"RayExecutor(calls_per_task={value!r}) must be None (adaptive grouping of short "
            "calls), or a positive integer (at most that many calls per Ray task; 1 = none)."
        )
    return value


def check_amount(name: str, number: Any) -> None:
    """``num_cpus`` / ``num_gpus``: None or a non-negative number."""
    if number is not None and (
        isinstance(number, bool) or not isinstance(number, int | float) or number < 0
    ):
        raise ExecutorError(
            f"RayExecutor({name}={number!r}) must be a non-negative number or None "
            f"(e.g. {name}=2 or {name}=0.5)."
        )


def check_resources(resources: Any) -> None:
    """``resources``: None or a mapping of resource names to non-negative amounts."""
    if resources is None:
        return
    if not isinstance(resources, Mapping) or not all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
        for k, v in resources.items()
    ):
        raise ExecutorError(
            f"RayExecutor(resources={resources!r}) must map resource names to non-negative "
            "amounts, e.g. resources={'gpu_node': 1}."
        )


def check_timeout(name: str, value: Any) -> float:
    """A timeout option as a float >= 0, or ``ExecutorError`` saying what to pass."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ExecutorError(
            f"RayExecutor({name}={value!r}) must be a number of seconds >= 0 (e.g. {name}=30)."
        )
    return float(value)
