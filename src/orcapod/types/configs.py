"""Run configuration value objects for pipelines and nodes (frozen; change with ``replace``).

Every setting is checked when it is given: a wrong type or value is an
``InputValidationError`` naming the setting, never a failure later in a run. An enum setting
takes its member or the member's string value (``"fail_fast"``), nothing else
(``enum_member``, also used by the nodes and the pipeline for their enum settings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

from orcapod.errors import InputValidationError
from orcapod.types.enums import ExecutorType

__all__ = [
    "FlushPolicy",
    "NodeConfig",
    "PipelineConfig",
    "check_engine_opts",
    "enum_member",
    "resolve_concurrency",
]

E = TypeVar("E", bound=StrEnum)


def enum_member(enum_type: type[E], value: Any, what: str) -> E:
    """``value`` as a member of ``enum_type``: a member, or a member's string value. Anything
    else raises ``InputValidationError`` naming ``what`` and listing the valid values."""
    if isinstance(value, enum_type):
        return value
    if isinstance(value, str):
        try:
            return enum_type(value)
        except ValueError as err:
            raise InputValidationError(_enum_message(enum_type, value, what)) from err
    raise InputValidationError(_enum_message(enum_type, value, what))


def _enum_message(enum_type: type[StrEnum], value: Any, what: str) -> str:
    valid = ", ".join(repr(member.value) for member in enum_type)
    example = f"{enum_type.__name__}.{next(iter(enum_type)).name}"
    return (
        f"{what} must be one of {valid} (as strings or as {enum_type.__name__} members, such "
        f"as {example}), got {value!r}"
    )


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InputValidationError(f"{name} must be a positive integer or None, got {value!r}")


@dataclass(frozen=True)
class PipelineConfig:
    executor: ExecutorType = ExecutorType.SYNCHRONOUS
    channel_buffer_size: int = 64
    default_max_concurrency: int | None = None
    execution_engine_opts: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        executor = enum_member(ExecutorType, self.executor, "PipelineConfig.executor")
        object.__setattr__(self, "executor", executor)
        if self.channel_buffer_size is None:
            raise InputValidationError("channel_buffer_size must be a positive integer, got None")
        _check_positive("channel_buffer_size", self.channel_buffer_size)
        _check_positive("default_max_concurrency", self.default_max_concurrency)
        check_engine_opts(self.execution_engine_opts, "PipelineConfig.execution_engine_opts")
        object.__setattr__(
            self, "execution_engine_opts", MappingProxyType(dict(self.execution_engine_opts))
        )

    def __hash__(self) -> int:
        return hash(
            (
                self.executor,
                self.channel_buffer_size,
                self.default_max_concurrency,
                tuple(sorted(self.execution_engine_opts.items())),
            )
        )


def check_engine_opts(opts: Any, what: str) -> None:
    """Raise ``InputValidationError`` unless ``opts`` is a mapping of option names (str) to
    values (the keyword arguments of an executor's ``with_options``)."""
    if not isinstance(opts, Mapping):
        raise InputValidationError(
            f"{what} must be a mapping of executor option names to values, such as "
            f"{{'num_cpus': 2}}, got {type(opts).__name__} {opts!r}"
        )
    bad = [key for key in opts if not isinstance(key, str)]
    if bad:
        raise InputValidationError(
            f"{what}: option names must be strings (keyword arguments of the executor's "
            f"with_options), got {bad!r}"
        )


@dataclass(frozen=True)
class NodeConfig:
    max_concurrency: int | None = None

    def __post_init__(self) -> None:
        _check_positive("max_concurrency", self.max_concurrency)


def resolve_concurrency(node: NodeConfig | None, pipeline: PipelineConfig | None) -> int | None:
    """A node's own limit wins over the pipeline default; None means unbounded."""
    if node is not None and node.max_concurrency is not None:
        return node.max_concurrency
    return pipeline.default_max_concurrency if pipeline is not None else None


@dataclass(frozen=True)
class FlushPolicy:
    """When finished work is committed: once ``rows`` rows are buffered, once the buffered
    rows hold about ``bytes`` bytes, or once the oldest buffered row has waited ``seconds``
    (all checked as rows arrive), and always at the end of a run. A killed run therefore loses
    at most about ``seconds`` of finished work (or four times the last commit's duration,
    when commits are that slow: a run never spends most of its time committing); ``rows``
    and ``bytes`` bound the memory a run holds (and the size of one commit) for small and for
    large outputs (images, arrays). In a run that shares its work with other processes (work
    claims) the results are committed this way and the pipeline records pointing at them
    follow at most every 10 s and at the end of the run.
    Buffered bytes are exact for the Arrow tables a run buffers and estimated for computed
    outputs (every output's values while fewer than 64 are buffered, then every 64th)."""

    rows: int = 50_000
    seconds: float = 1.0
    bytes: int = 256 * 2**20

    def __post_init__(self) -> None:
        if isinstance(self.bytes, bool) or not isinstance(self.bytes, int) or self.bytes < 1:
            raise InputValidationError(
                f"FlushPolicy.bytes must be a positive integer, got {self.bytes!r}"
            )
        if isinstance(self.rows, bool) or not isinstance(self.rows, int) or self.rows < 1:
            raise InputValidationError(
                f"FlushPolicy.rows must be a positive integer, got {self.rows!r}"
            )
        if not isinstance(self.seconds, int | float) or not self.seconds > 0:
            raise InputValidationError(
                f"FlushPolicy.seconds must be a positive number, got {self.seconds!r}"
            )


@dataclass(frozen=True)
class WorkClaims:
    """How processes running the same function node on one persistent store share its missing
    rows (``FunctionNode.work_claims``; how claims work: ``orcapod.functions.engine.claims``).

    ``lease_seconds``: how long a claim lives without renewal (a dead holder's buckets are
    taken over after at most this long); ``min_work_seconds``: claims are used only when the
    run's missing rows would take at least this long (the faster of the first two calls'
    times their number): a claim costs a commit and a read, small only beside seconds of work;
    ``poll_seconds``: how often a process that waits for other processes' buckets looks again.
    """

    lease_seconds: float = 60.0
    min_work_seconds: float = 5.0
    poll_seconds: float = 0.5

    def __post_init__(self) -> None:
        for name in ("lease_seconds", "min_work_seconds", "poll_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InputValidationError(
                    f"WorkClaims.{name} must be a non-negative number of seconds, got {value!r}"
                )
        if self.lease_seconds <= 0:
            raise InputValidationError(
                f"WorkClaims.lease_seconds must be positive, got {self.lease_seconds!r}"
            )
