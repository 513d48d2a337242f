"""Roles and modes as enums (string-valued, so they serialise as their value)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CacheMatch", "CacheMode", "ErrorPolicy", "ExecutorType"]


class CacheMode(StrEnum):
    """How an ``OperatorNode`` uses its database."""

    OFF = "off"  #: compute, write nothing
    LOG = "log"  #: compute and write rows, deduplicated by row hash
    REPLAY = "replay"  #: serve stored rows, skip compute


class CacheMatch(StrEnum):
    """Which stored results a result cache may return for an input packet."""

    VERSION = "version"  #: same function URI (name, output schema, major version)
    CODE = "code"  #: same URI and same code hash (default)
    STRICT = "strict"  #: same URI, code hash and execution environment


class ErrorPolicy(StrEnum):
    """What a node does when a packet's function raises."""

    FAIL_FAST = "fail_fast"
    CONTINUE = "continue"


class ExecutorType(StrEnum):
    """How a pipeline orchestrates its nodes."""

    SYNCHRONOUS = "synchronous"
    ASYNC_CHANNELS = "async_channels"
