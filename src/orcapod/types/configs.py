"""Run configuration value objects for pipelines and nodes (frozen; change with ``replace``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from orcapod.errors import InputValidationError
from orcapod.types.enums import ExecutorType

__all__ = ["FlushPolicy", "NodeConfig", "PipelineConfig", "resolve_concurrency"]


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or value < 1):
        raise InputValidationError(f"{name} must be a positive integer or None, got {value!r}")


@dataclass(frozen=True)
class PipelineConfig:
    executor: ExecutorType = ExecutorType.SYNCHRONOUS
    channel_buffer_size: int = 64
    default_max_concurrency: int | None = None
    execution_engine_opts: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "executor", ExecutorType(self.executor))
        _check_positive("channel_buffer_size", self.channel_buffer_size)
        _check_positive("default_max_concurrency", self.default_max_concurrency)
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
