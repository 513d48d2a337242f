"""``PacketFunctionBase`` (generic over its executor protocol) and ``PacketFunctionWrapper``.

A packet function maps one input ``Packet`` to one output ``Packet``, or to None ("filtered
out"). This module holds what every packet function shares: executor handling, the active
switch, identity and call routing.

Executor protocol dispatch. ``PacketFunctionBase`` is ``Generic[E]`` with ``E`` bound to
``PacketFunctionExecutorProtocol``. ``__init_subclass__`` resolves ``E`` once per class from the
class's generic bases: ``class PythonPacketFunction(PacketFunctionBase[PythonFunctionExecutor
Protocol])`` stores that protocol in ``_resolved_executor_protocol``; a class that stays
generic (``PacketFunctionWrapper(PacketFunctionBase[E])``) resolves to None; a plain subclass
inherits its parent's. ``set_executor`` (and the ``executor`` setter) check a new executor
ONCE, at assignment: it must satisfy ``PacketFunctionExecutorProtocol``, support the function's
type id and satisfy the resolved protocol, else ``ExecutorError`` naming the executor and the
function. Nothing is checked per call.

Identity. ``uri = (canonical name, output schema hash, "v<major>", type id)``
scopes result tables and is the function's pipeline identity. ``identity_structure()`` (and so
``content_hash()``) is the URI plus the code hash: editing the function changes its content
hash but not its pipeline hash. Executors are never part of either.

Decisions:

* ``set_active(False)`` makes ``call``/``async_call``/``direct_*`` return None (filtered)
  without running anything. Cache wrappers look their cache up first, so an inactive function
  still serves stored results; it never computes or stores new ones.
* ``version`` is parsed with ``\\D*(\\d+)\\.(.*)``: ``"v1.3rc"`` has major 1, minor ``"3rc"``; a
  version without a major number is an ``InputValidationError``.
* ``with_executor(executor)`` returns a shallow copy using ``executor`` and leaves the original
  untouched; pipelines use it to give each node its own executor without mutating user objects.
* ``submit_call`` starts a call and returns a ``Pending``; the base version runs ``call`` at once.
  Functions whose executor runs calls concurrently override it (a pod keeps a bounded window
  of these in flight).
"""

from __future__ import annotations

import copy
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, Self, TypeVar

from orcapod.data import Packet
from orcapod.errors import ExecutorError, InputValidationError
from orcapod.executors import PacketFunctionExecutorProtocol
from orcapod.executors.capture import PacketLoggerProtocol
from orcapod.functions.pending import Pending
from orcapod.functions.provenance import RecordIdMaker
from orcapod.hashing import hash_object
from orcapod.types import ContentHash, Schema

__all__ = ["PacketFunctionBase", "PacketFunctionWrapper"]

E = TypeVar("E", bound=PacketFunctionExecutorProtocol)

_VERSION = re.compile(r"\D*(\d+)\.(.*)")


def parse_version(version: str) -> tuple[int, str]:
    """``"v1.2"`` -> ``(1, "2")``."""
    match = _VERSION.fullmatch(version) if isinstance(version, str) else None
    if match is None:
        raise InputValidationError(
            f"version {version!r} has no major number; use a form like 'v1.0' or '2.1rc'"
        )
    return int(match.group(1)), match.group(2)


class PacketFunctionBase(Generic[E]):
    """Shared executor handling, identity and call routing of packet functions."""

    _resolved_executor_protocol: ClassVar[type | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            origin = typing.get_origin(base)
            if isinstance(origin, type) and issubclass(origin, PacketFunctionBase):
                (arg,) = typing.get_args(base)
                cls._resolved_executor_protocol = None if isinstance(arg, TypeVar) else arg
                return

    def __init__(
        self, version: str = "v0.0", label: str | None = None, executor: E | None = None
    ) -> None:
        self._major_version, self._minor_version = parse_version(version)
        self._version = version
        self.label = label
        self._active = True
        self._executor: E | None = None
        self._uri: tuple[str, ...] | None = None
        self._content_hash: ContentHash | None = None
        self._pipeline_hash: ContentHash | None = None
        self._record_ids: tuple[Any, RecordIdMaker] | None = None
        if executor is not None:
            self.set_executor(executor)

    # -- abstract surface ----------------------------------------------------------------

    @property
    def packet_function_type_id(self) -> str:
        raise NotImplementedError

    @property
    def canonical_function_name(self) -> str:
        raise NotImplementedError

    @property
    def input_packet_schema(self) -> Schema:
        raise NotImplementedError

    @property
    def output_packet_schema(self) -> Schema:
        raise NotImplementedError

    @property
    def code_hash(self) -> str:
        """Hash of the function's normalised code (``ContentHash`` string form)."""
        raise NotImplementedError

    def get_function_variation_data(self) -> dict[str, str]:
        """Function name, signature hash, code hash and git state (stored, ``__pf_var_*``)."""
        raise NotImplementedError

    def direct_call(self, packet: Packet) -> Packet | None:
        raise NotImplementedError

    async def direct_async_call(self, packet: Packet) -> Packet | None:
        raise NotImplementedError

    def _executor_call(
        self, executor: E, packet: Packet, logger: PacketLoggerProtocol | None
    ) -> Packet | None:
        raise NotImplementedError

    async def _executor_async_call(
        self, executor: E, packet: Packet, logger: PacketLoggerProtocol | None
    ) -> Packet | None:
        raise NotImplementedError

    def output_meta_schema(self) -> Schema:
        """Types of the meta columns (``__*``) this function puts on its output packets."""
        return Schema()

    # -- versions and labels ---------------------------------------------------------------

    @property
    def version(self) -> str:
        return self._version

    @property
    def major_version(self) -> int:
        return self._major_version

    @property
    def minor_version_string(self) -> str:
        return self._minor_version

    def computed_label(self) -> str:
        return self.label or self.canonical_function_name

    # -- executor ------------------------------------------------------------------------

    @property
    def executor(self) -> E | None:
        return self._executor

    @executor.setter
    def executor(self, executor: E | None) -> None:
        self.set_executor(executor)

    def set_executor(self, executor: E | None) -> None:
        """Use ``executor`` for every call (None: call the function directly).

        Raises ``ExecutorError`` if the executor cannot run this function.
        """
        if executor is not None:
            self._check_executor(executor)
        self._executor = executor

    def _check_executor(self, executor: Any) -> None:
        what = f"packet function {self.canonical_function_name!r}"
        kind = type(executor).__name__
        if not isinstance(executor, PacketFunctionExecutorProtocol):
            raise ExecutorError(
                f"{kind} is not an executor (it does not implement "
                f"PacketFunctionExecutorProtocol), so it cannot run {what}; pass an executor "
                "such as orcapod.executors.LocalExecutor()"
            )
        type_id = self.packet_function_type_id
        if not executor.supports(type_id):
            supported = sorted(executor.supported_function_type_ids())
            raise ExecutorError(
                f"executor {kind} ({executor.executor_type_id!r}) does not support {what} of "
                f"type {type_id!r}; it supports {supported}. Use an executor that supports "
                f"{type_id!r}."
            )
        protocol = type(self)._resolved_executor_protocol
        if protocol is not None and not isinstance(executor, protocol):
            raise ExecutorError(
                f"executor {kind} ({executor.executor_type_id!r}) does not implement "
                f"{protocol.__name__}, which {type(self).__name__} {what} needs; use an "
                f"executor implementing {protocol.__name__} (e.g. LocalExecutor, RayExecutor)"
            )

    def with_executor(self, executor: E | None) -> Self:
        """A shallow copy using ``executor``; this function is left unchanged."""
        clone = copy.copy(self)
        clone.set_executor(executor)
        return clone

    # -- active switch -----------------------------------------------------------------------

    def set_active(self, active: bool = True) -> None:
        self._active = bool(active)

    def is_active(self) -> bool:
        return self._active

    # -- calls ---------------------------------------------------------------------------

    def values_call(self) -> Callable[[Packet], dict[str, Any] | None] | None:
        """``call`` returning output values, not packets, bound to the current executor (for
        callers that keep outputs column-wise); None when this function has no such call."""
        return None

    def row_caller(
        self, packet_schema: Mapping[str, Any]
    ) -> Callable[[Mapping[str, list[Any]]], Callable[[int], dict[str, Any] | None]] | None:
        """``values_call`` for packets kept column-wise (``bind(columns)(i)``: the output
        values of row ``i``); None when this function has no such call."""
        return None

    def call(self, packet: Packet, *, logger: PacketLoggerProtocol | None = None) -> Packet | None:
        """Output packet for ``packet`` (None: filtered out or inactive), via the executor."""
        if not self._active:
            return None
        executor = self._executor
        if executor is None:
            return self.direct_call(packet)
        return self._executor_call(executor, packet, logger)

    async def async_call(
        self, packet: Packet, *, logger: PacketLoggerProtocol | None = None
    ) -> Packet | None:
        if not self._active:
            return None
        executor = self._executor
        if executor is None:
            return await self.direct_async_call(packet)
        return await self._executor_async_call(executor, packet, logger)

    def submit_call(
        self, packet: Packet, *, logger: PacketLoggerProtocol | None = None
    ) -> Pending[Packet | None]:
        """Start a call; ``.result()`` gives its output (see the module docstring)."""
        return Pending.run(self.call, packet, logger=logger)

    @property
    def supports_concurrent_calls(self) -> bool:
        """True when ``submit_call`` runs calls concurrently (a concurrent executor is set)."""
        executor = self._executor
        return executor is not None and bool(executor.supports_concurrent_execution)

    # -- identity ------------------------------------------------------------------------

    @property
    def output_packet_schema_hash(self) -> str:
        return hash_object(self.output_packet_schema).to_string()

    @property
    def uri(self) -> tuple[str, ...]:
        if self._uri is None:
            self._uri = (
                self.canonical_function_name,
                self.output_packet_schema_hash,
                f"v{self.major_version}",
                self.packet_function_type_id,
            )
        return self._uri

    def identity_structure(self) -> Any:
        return {"uri": list(self.uri), "code_hash": self.code_hash}

    def pipeline_identity_structure(self) -> Any:
        return {"uri": list(self.uri)}

    def content_hash(self) -> ContentHash:
        if self._content_hash is None:
            self._content_hash = hash_object(self.identity_structure())
        return self._content_hash

    def pipeline_hash(self) -> ContentHash:
        if self._pipeline_hash is None:
            self._pipeline_hash = hash_object(self.pipeline_identity_structure())
        return self._pipeline_hash

    def record_id_maker(self) -> RecordIdMaker:
        """Record ids / source info of results computed with the current executor."""
        return self.record_id_maker_for(self._executor)

    def record_id_maker_for(self, executor: Any) -> RecordIdMaker:
        """Record ids / source info of results computed with ``executor`` (cached per executor)."""
        cached = self._record_ids
        if cached is None or cached[0] != executor:
            data = self.execution_data_for(executor)
            cached = (executor, RecordIdMaker(self.uri, self.code_hash, data))
            self._record_ids = cached
        return cached[1]

    def execution_data_for(self, executor: Any) -> dict[str, str]:
        """``get_execution_data()`` as it is (or would be) with ``executor``."""
        raise NotImplementedError

    def get_execution_data(self) -> dict[str, str]:
        """Executor type and options and the Python version (stored, ``__pf_exec_*``)."""
        return self.execution_data_for(self._executor)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.canonical_function_name!r}, version={self.version!r})"


def _forwarded_property(name: str) -> Any:
    """A read-only property reading ``name`` of the wrapped packet function."""
    return property(lambda self: getattr(self._packet_function, name), doc=f"The wrapped {name}.")


def _forwarded_method(name: str) -> Any:
    """A method calling ``name`` of the wrapped packet function with the same arguments."""

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(self._packet_function, name)(*args, **kwargs)

    forward.__name__ = name
    forward.__doc__ = f"The wrapped function's ``{name}``."
    return forward


class PacketFunctionWrapper(PacketFunctionBase[E]):
    """Wraps another packet function and delegates identity, schemas and calls to it.

    It stays generic over the executor protocol. The ``executor`` reads and writes the wrapped
    function's executor, and ``set_active`` switches the wrapped function, so a wrapper and
    its function never disagree. Subclasses (e.g. ``CachedPacketFunction``) override ``call``.
    """

    def __init__(self, packet_function: PacketFunctionBase[Any], label: str | None = None):
        if not isinstance(packet_function, PacketFunctionBase):
            raise InputValidationError(
                f"{type(self).__name__} wraps a packet function, got "
                f"{type(packet_function).__name__}"
            )
        self._packet_function = packet_function
        super().__init__(version=packet_function.version, label=label)

    @property
    def packet_function(self) -> PacketFunctionBase[Any]:
        return self._packet_function

    # delegated identity and schemas (read from the wrapped function on every access)
    packet_function_type_id = _forwarded_property("packet_function_type_id")
    canonical_function_name = _forwarded_property("canonical_function_name")
    input_packet_schema = _forwarded_property("input_packet_schema")
    output_packet_schema = _forwarded_property("output_packet_schema")
    code_hash = _forwarded_property("code_hash")
    uri = _forwarded_property("uri")
    supports_concurrent_calls = _forwarded_property("supports_concurrent_calls")
    identity_structure = _forwarded_method("identity_structure")
    pipeline_identity_structure = _forwarded_method("pipeline_identity_structure")
    content_hash = _forwarded_method("content_hash")
    pipeline_hash = _forwarded_method("pipeline_hash")
    get_function_variation_data = _forwarded_method("get_function_variation_data")
    execution_data_for = _forwarded_method("execution_data_for")
    get_execution_data = _forwarded_method("get_execution_data")
    record_id_maker = _forwarded_method("record_id_maker")
    output_meta_schema = _forwarded_method("output_meta_schema")
    record_id_maker_for = _forwarded_method("record_id_maker_for")
    set_active = _forwarded_method("set_active")
    is_active = _forwarded_method("is_active")
    direct_call = _forwarded_method("direct_call")
    direct_async_call = _forwarded_method("direct_async_call")

    def computed_label(self) -> str:
        return self.label or self._packet_function.computed_label()

    # delegated executor and active state
    @property
    def executor(self) -> E | None:
        return self._packet_function.executor

    @executor.setter
    def executor(self, executor: E | None) -> None:
        self.set_executor(executor)

    def set_executor(self, executor: E | None) -> None:
        self._packet_function.set_executor(executor)

    def with_executor(self, executor: E | None) -> Self:
        clone = copy.copy(self)
        clone._packet_function = self._packet_function.with_executor(executor)
        return clone

    # delegated calls (the wrapped function routes through its executor)
    def call(self, packet: Packet, *, logger: PacketLoggerProtocol | None = None) -> Packet | None:
        return self._packet_function.call(packet, logger=logger)

    async def async_call(
        self, packet: Packet, *, logger: PacketLoggerProtocol | None = None
    ) -> Packet | None:
        return await self._packet_function.async_call(packet, logger=logger)

    def submit_call(
        self, packet: Packet, *, logger: PacketLoggerProtocol | None = None
    ) -> Pending[Packet | None]:
        return self._packet_function.submit_call(packet, logger=logger)
