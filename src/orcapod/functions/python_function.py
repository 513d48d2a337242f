"""``PythonPacketFunction``: a Python callable as a packet function.

Schemas. The input schema comes from the parameters: each type from ``input_schema`` when
given there, else from the resolved annotation (``typing.get_type_hints``, so string
annotations work); a parameter without either is an error. Parameters with defaults are
optional fields (a packet without that column uses the default). ``*args``, ``**kwargs`` and
positional-only parameters are rejected (a packet passes its values by name). The output
schema comes from ``output_keys`` and the return annotation: one key takes the whole
annotation; several keys take the items of a ``tuple[A, B, ...]`` annotation of that length,
or ``T`` for every key from ``tuple[T, ...]`` / ``list[T]``; ``output_schema`` (a mapping or a
sequence aligned with the keys) sets or overrides any key's type. Annotations are read with
their ``Annotated`` metadata, so ``Annotated[NDArray[np.float32], Shape(64)]`` declares an
array's shape (``orcapod.types.arrays``). Every type is checked once, at construction,
against the types orcapod can store; an input array type may leave the dtype open
(``x: np.ndarray`` takes any array column), an output array type must state it. A
``functools.partial`` needs an explicit ``function_name``; its types come from the wrapped
function's annotations, and an argument it binds by keyword stays an optional parameter (a
packet column of that name overrides it, as in a call).

Outputs. With one key the return value IS that key's value; with several, the function returns
a tuple/list of exactly that many values or a dict with exactly those keys. A return value of
None means "filter this packet out" — so a single output key is never null, while a
several-key function may put None inside its tuple/dict for a key typed ``T | None``. The
return annotation of a function that filters is ``-> T | None`` (or ``-> tuple[A, B] | None``);
its outputs are typed ``T`` (or ``A``, ``B``): the ``| None`` says the row may be filtered, not
that the value may be null (``orcapod.functions.signature_schema``). Values
are checked against the output schema with precomputed checks (see
``orcapod.functions.validation``); a mismatch raises ``PacketFunctionError`` naming the key.

Calls. ``call``/``async_call`` go through the executor when one is set, else call the
function directly; a ``logger`` given without an executor is served by a plain
``LocalExecutor`` so the call's output is still captured. ``submit_call`` delivers a call's
failure through its ``Pending`` (it is the row's failure), except an ``ExecutorError`` raised
while submitting: the executor cannot run any call of the function (Ray cannot pickle it,
rejects the options, cannot be reached), so every row would fail alike - it is raised at once
and stops the run instead.

Speed. The per-packet path is thin: read the parameters from the packet, call the function
(directly, or through the executor when one is set), check each value with its precomputed
check, and build the output with ``Packet._make`` and the shared output ``Schema``. Nothing per
packet touches Arrow; source info is a ``LazySourceInfo`` (``orcapod.functions.provenance``)
resolved only when read. Parameters are read from the packet's own value dict (the data
layer's trusted ``_dict()``) by a reader compiled once for the parameter names.

Identity data. The code hash (``orcapod.hashing.function_identity.function_code_hash``) and the
signature hash are computed on first use and cached; git state is read only when variation
data is asked for (to store a result), once per function object. Execution data is the
executor's ``get_executor_data()`` (``executor_type``, ``executor_options``) — ``"none"`` and
``"{}"`` without an executor — plus ``python_version``. All values are strings.

Async functions work everywhere: ``call``/``direct_call`` run them to completion (safely inside
a running event loop), ``async_call`` awaits them; a sync function called through
``direct_async_call`` runs in a worker thread so it does not block the loop.
"""

from __future__ import annotations

import functools
import inspect
import platform
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from orcapod._lazy import lazy_module
from orcapod.data import Packet
from orcapod.errors import ExecutorError, InputValidationError, PacketFunctionError
from orcapod.executors import LocalExecutor, PythonFunctionExecutorProtocol
from orcapod.executors.calling import is_async_callable, run_to_completion
from orcapod.executors.capture import PacketLoggerProtocol
from orcapod.functions.packet_function import PacketFunctionBase
from orcapod.functions.pending import Pending
from orcapod.functions.provenance import CODE_HASH_KEY, LazySourceInfo
from orcapod.functions.signature_schema import (
    check_output_keys,
    check_storable,
    parameter_schema,
    return_schema,
)
from orcapod.functions.validation import Coercer, make_coercer, type_name
from orcapod.hashing.function_identity import (
    function_code_hash,
    function_signature_hash,
    git_info,
)
from orcapod.types import Schema

if TYPE_CHECKING:
    import asyncio
else:
    asyncio = lazy_module("asyncio")

__all__ = ["PYTHON_FUNCTION_TYPE_ID", "PythonPacketFunction"]

PYTHON_FUNCTION_TYPE_ID = "python.function.v0"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_CAPTURE_EXECUTOR = LocalExecutor()
_PYTHON_VERSION = platform.python_version()


def _compile_reader(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """``lambda d: {"a": d["a"], ...}`` for these names (about twice as fast as a dict
    comprehension). The names are parameter names, i.e. Python identifiers."""
    for name in names:
        if not name.isidentifier():  # pragma: no cover - guaranteed by inspect.signature
            raise InputValidationError(f"parameter name {name!r} is not an identifier")
    body = ", ".join(f"{name!r}: d[{name!r}]" for name in names)
    reader: Callable[[Mapping[str, Any]], dict[str, Any]] = eval(f"lambda d: {{{body}}}")
    return reader


def _compile_column_reader(
    names: list[str],
) -> Callable[[Mapping[str, Any]], Callable[[int], dict[str, Any]]]:
    """``columns -> (lambda i: {"a": <column a>[i], ...})`` for these parameter names: the
    reader of one row block's rows, bound to its column lists."""
    args = ", ".join(f"_c{j}" for j in range(len(names)))
    body = ", ".join(f"{name!r}: _c{j}[i]" for j, name in enumerate(names))
    make: Callable[..., Callable[[int], dict[str, Any]]] = eval(
        f"lambda {args}: lambda i: {{{body}}}"
    )
    return lambda columns: make(*(columns[n] for n in names))


def _compile_direct_call(names: list[str]) -> Callable[..., Callable[[int], Any]]:
    """``(function, *columns) -> (lambda i: function(a=<column a>[i], ...))`` for these
    parameter names (identifiers: they are the function's own parameters): one row's call
    made straight from column lists, with no argument dict per row."""
    args = "".join(f", _c{j}" for j in range(len(names)))
    body = ", ".join(f"{name}=_c{j}[i]" for j, name in enumerate(names))
    make: Callable[..., Callable[[int], Any]] = eval(f"lambda _f{args}: lambda i: _f({body})")
    return make


class PythonPacketFunction(PacketFunctionBase[PythonFunctionExecutorProtocol]):
    """A Python function applied to packets (see the module docstring)."""

    def __init__(
        self,
        function: Callable[..., Any],
        output_keys: str | Sequence[str],
        function_name: str | None = None,
        version: str = "v0.0",
        input_schema: Mapping[str, Any] | None = None,
        output_schema: Mapping[str, Any] | Sequence[Any] | None = None,
        label: str | None = None,
        executor: PythonFunctionExecutorProtocol | None = None,
    ) -> None:
        if not callable(function):
            raise InputValidationError(f"expected a callable, got {type(function).__name__}")
        if not (
            inspect.isroutine(function)
            or isinstance(function, functools.partial | type)
            or inspect.isroutine(getattr(function, "__wrapped__", None))
        ):
            cls = type(function).__name__
            raise InputValidationError(
                f"a callable object (an instance of {cls}) cannot be a packet function: its "
                "state is not part of a function's identity, so results of differently "
                "configured instances would be mixed up. Write a function instead, with the "
                "settings as parameters or module-level constants (def f(x: int) -> int: ...)"
            )
        name = function_name or getattr(function, "__name__", None)
        if not name and isinstance(function, functools.partial):
            raise InputValidationError(
                "a functools.partial has no name of its own (two partials of one function "
                "are different functions); pass function_name='...'"
            )
        if not name or name == "<lambda>":
            raise InputValidationError(
                "this function has no usable name (a lambda?); pass function_name='...'"
            )
        if not _NAME.fullmatch(name):
            raise InputValidationError(
                f"function name {name!r} must start with a letter or '_' and contain only "
                "letters, digits, '_', '.' and '-'; pass function_name='...'"
            )
        self._function = function
        self._name = name
        self._is_async = is_async_callable(function)
        self._output_keys = check_output_keys(output_keys)
        self._input_schema, self._required, self._optional = parameter_schema(
            function, name, input_schema or {}
        )
        self._output_schema = return_schema(function, name, self._output_keys, output_schema)
        check_storable(self._input_schema, "the input schema", name, open_arrays=True)
        check_storable(self._output_schema, "the output schema", name)
        self._read = _compile_reader(self._required)
        self._coercers = self._make_coercers()
        self._single = len(self._output_keys) == 1
        self._code_hash: str | None = None
        self._signature_hash: str | None = None
        self._git_hash: str | None = None
        super().__init__(version=version, label=label, executor=executor)

    def _make_coercers(self) -> tuple[Coercer, ...]:
        return tuple(make_coercer(self._output_schema[k]) for k in self._output_keys)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        # closures, rebuilt from the parameter names and the output schema
        del state["_read"], state["_coercers"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._read = _compile_reader(self._required)
        self._coercers = self._make_coercers()

    # -- identity ------------------------------------------------------------------------

    @property
    def function(self) -> Callable[..., Any]:
        return self._function

    @property
    def packet_function_type_id(self) -> str:
        return PYTHON_FUNCTION_TYPE_ID

    @property
    def canonical_function_name(self) -> str:
        return self._name

    @property
    def output_keys(self) -> tuple[str, ...]:
        return self._output_keys

    @property
    def input_packet_schema(self) -> Schema:
        return self._input_schema

    @property
    def output_packet_schema(self) -> Schema:
        return self._output_schema

    @property
    def is_async(self) -> bool:
        return self._is_async

    @property
    def code_hash(self) -> str:
        if self._code_hash is None:
            self._code_hash = function_code_hash(self._function).to_string()
        return self._code_hash

    @property
    def signature_hash(self) -> str:
        if self._signature_hash is None:
            self._signature_hash = function_signature_hash(self._function).to_string()
        return self._signature_hash

    @property
    def git_hash(self) -> str:
        """``<commit>``, ``<commit>-dirty`` or ``"unknown"`` (read once, lazily)."""
        if self._git_hash is None:
            info = git_info(self._function)
            commit = info.get("git_commit")
            if not commit:
                self._git_hash = "unknown"
            else:
                self._git_hash = f"{commit}-dirty" if info.get("git_dirty") else str(commit)
        return self._git_hash

    def get_function_variation_data(self) -> dict[str, str]:
        return {
            "function_name": self._name,
            "function_signature_hash": self.signature_hash,
            CODE_HASH_KEY: self.code_hash,
            "git_hash": self.git_hash,
        }

    def execution_data_for(self, executor: Any) -> dict[str, str]:
        if executor is None:
            data: dict[str, str] = {"executor_type": "none", "executor_options": "{}"}
        else:
            raw = executor.get_executor_data()
            data = {k: v if isinstance(v, str) else repr(v) for k, v in raw.items()}
        data["python_version"] = _PYTHON_VERSION
        return data

    # -- calls ---------------------------------------------------------------------------

    def _kwargs(self, packet: Packet) -> dict[str, Any]:
        # ``_dict()`` is the packet's own value dict (built once, never copied); reading it
        # through a reader compiled for these parameters keeps the hot path thin.
        data = packet._dict()
        try:
            kwargs = self._read(data)
        except KeyError as err:
            raise InputValidationError(
                f"packet has no column {err.args[0]!r}, which {self._name!r} needs "
                f"(packet columns: {list(data)})"
            ) from err
        for k in self._optional:
            if k in data:
                kwargs[k] = data[k]
        return kwargs

    def _build(self, raw: Any, packet: Packet, executor: Any) -> Packet | None:
        if raw is None:
            return None
        return Packet._make(
            self._output_data(raw),
            self._output_schema,
            context_key=packet.context_key,
            hidden=LazySourceInfo(self._output_keys, packet, self, executor),
        )

    def _output_data(self, raw: Any) -> dict[str, Any]:
        """The validated, coerced ``{output key: value}`` of a (non-None) return value."""
        if self._single:
            key = self._output_keys[0]
            try:
                return {key: self._coercers[0](raw)}
            except TypeError as err:
                raise self._bad_value(key, err) from err
        return self._unpack(raw)

    def values_call(self) -> Callable[..., dict[str, Any] | None]:
        """``call`` returning the output values instead of a packet, bound to the current
        executor (whose ``record_id_maker_for`` gives the results' provenance); for callers
        that keep outputs column-wise (``FunctionPodStream``). It takes the packet and,
        optionally, ``logger=`` (as ``call`` does)."""
        executor = self._executor
        output_data, packet_kwargs = self._output_data, self._kwargs
        required, optional = self._required, self._optional
        # block-backed packets (stream rows): kwargs read straight from the block's columns
        # by a reader compiled for the parameters the packet's schema has, bound per block
        state: list[Any] = [None, None, None, None]  # schema, reader factory, block, reader

        def kwargs_of(packet: Packet) -> dict[str, Any]:
            block = packet._block  # trusted fast path of the data layer
            if block is None:
                return packet_kwargs(packet)
            if block is not state[2]:
                schema = packet._schema
                if schema is not state[0]:
                    names = [*required, *(k for k in optional if k in schema)]
                    ok = all(k in schema for k in required)
                    state[0], state[1] = schema, _compile_column_reader(names) if ok else None
                state[2] = block
                state[3] = None if state[1] is None else state[1](block.columns)
            elif packet._schema is not state[0]:
                return packet_kwargs(packet)
            reader = state[3]
            return packet_kwargs(packet) if reader is None else reader(packet._row)

        invoke = self._invoke
        function = self._function
        # the sequential local executor runs a call as ``run_to_completion(fn(**kwargs))``:
        # done here directly (the executor may not be a subclass that runs it otherwise)
        local = type(executor) is LocalExecutor
        if self._single:  # one output key: its dict built without the general unpacking
            key, coerce, bad_value = self._output_keys[0], self._coercers[0], self._bad_value

            def output_data(raw: Any) -> dict[str, Any]:
                try:
                    return {key: coerce(raw)}
                except TypeError as err:
                    raise bad_value(key, err) from err

        def call_values(
            packet: Packet, logger: PacketLoggerProtocol | None = None
        ) -> dict[str, Any] | None:
            if not self._active:
                return None
            if local and logger is None:
                raw = run_to_completion(function(**kwargs_of(packet)))
            else:
                raw = invoke(kwargs_of(packet), executor, logger)
            return None if raw is None else output_data(raw)

        return call_values

    def row_caller(
        self, packet_schema: Mapping[str, Any]
    ) -> Callable[[Mapping[str, list[Any]]], Callable[[int], dict[str, Any] | None]] | None:
        """``values_call`` for packets kept column-wise: ``bind(columns)`` gives the call of
        row ``i`` of those columns (one list per parameter the schema has), returning its
        output values. Only without an executor or with the in-process sequential one, where
        a row's call is the function itself: None otherwise, and when ``packet_schema`` lacks
        a required parameter (the packet path then says which)."""
        executor = self._executor
        if not (executor is None or type(executor) is LocalExecutor) or not all(
            k in packet_schema for k in self._required
        ):
            return None
        names = [*self._required, *(k for k in self._optional if k in packet_schema)]
        make = _compile_direct_call(names)
        function, output_data = self._function, self._output_data

        def bind(columns: Mapping[str, list[Any]]) -> Callable[[int], dict[str, Any] | None]:
            direct = make(function, *(columns[n] for n in names))

            def call_row(i: int) -> dict[str, Any] | None:
                if not self._active:
                    return None
                raw = run_to_completion(direct(i))
                return None if raw is None else output_data(raw)

            return call_row

        return bind

    def _unpack(self, raw: Any) -> dict[str, Any]:
        keys = self._output_keys
        if isinstance(raw, Mapping):
            if raw.keys() != set(keys):
                missing = sorted(set(keys) - set(raw))
                extra = sorted(set(raw) - set(keys))
                raise PacketFunctionError(
                    f"{self._name!r} returned a dict with keys {sorted(raw)}; expected exactly "
                    f"the output keys {list(keys)} (missing {missing}, unexpected {extra})"
                )
            values = [raw[k] for k in keys]
        elif isinstance(raw, (tuple, list)):
            if len(raw) != len(keys):
                raise PacketFunctionError(
                    f"{self._name!r} returned {len(raw)} values for the {len(keys)} output "
                    f"keys {list(keys)}; return exactly one value per key (or None to filter)"
                )
            values = list(raw)
        else:
            raise PacketFunctionError(
                f"{self._name!r} returned a {type(raw).__name__} but has {len(keys)} output "
                f"keys {list(keys)}; return a tuple of {len(keys)} values or a dict"
            )
        data: dict[str, Any] = {}
        for key, coerce, value in zip(keys, self._coercers, values, strict=True):
            try:
                data[key] = coerce(value)
            except TypeError as err:
                raise self._bad_value(key, err) from err
        return data

    def _bad_value(self, key: str, err: TypeError) -> PacketFunctionError:
        return PacketFunctionError(
            f"{self._name!r} returned a bad value for output key {key!r}: {err}; return a "
            f"{type_name(self._output_schema[key])} or change the declared output type"
        )

    def _invoke(
        self, kwargs: dict[str, Any], executor: Any, logger: PacketLoggerProtocol | None
    ) -> Any:
        """The one synchronous way the callable is run: directly (no executor, no logger),
        else through the executor (or, for a logger alone, the capturing local executor);
        the raw return value."""
        if executor is None:
            if logger is None:
                raw = self._function(**kwargs)
                return run_to_completion(raw) if self._is_async else raw
            executor = _CAPTURE_EXECUTOR
        return executor.execute_callable(self._function, kwargs, logger=logger)

    def direct_call(self, packet: Packet) -> Packet | None:
        if not self._active:
            return None
        return self._build(self._invoke(self._kwargs(packet), None, None), packet, None)

    async def direct_async_call(self, packet: Packet) -> Packet | None:
        if not self._active:
            return None
        kwargs = self._kwargs(packet)
        if self._is_async:
            raw = await self._function(**kwargs)
        else:
            raw = await asyncio.to_thread(self._function, **kwargs)
        return self._build(raw, packet, None)

    def call(self, packet: Packet, *, logger: PacketLoggerProtocol | None = None) -> Packet | None:
        if not self._active:
            return None
        executor = self._executor
        raw = self._invoke(self._kwargs(packet), executor, logger)
        return self._build(raw, packet, executor)

    async def async_call(
        self, packet: Packet, *, logger: PacketLoggerProtocol | None = None
    ) -> Packet | None:
        if not self._active:
            return None
        executor = self._executor
        if executor is None:
            if logger is None:
                return await self.direct_async_call(packet)
            raw = await _CAPTURE_EXECUTOR.async_execute_callable(
                self._function, self._kwargs(packet), logger=logger
            )
            return self._build(raw, packet, None)
        raw = await executor.async_execute_callable(
            self._function, self._kwargs(packet), logger=logger
        )
        return self._build(raw, packet, executor)

    def submit_call(
        self, packet: Packet, *, logger: PacketLoggerProtocol | None = None
    ) -> Pending[Packet | None]:
        executor = self._executor
        if not self._active or executor is None or not executor.supports_concurrent_execution:
            return Pending.run(self.call, packet, logger=logger)
        try:
            future = executor.submit_callable(self._function, self._kwargs(packet), logger=logger)
        except ExecutorError:
            raise  # no call of the function can run there (module docstring)
        except Exception as err:  # noqa: BLE001 - delivered, in order, by result()
            return Pending.failed(err)
        return Pending.of_future(future).then(lambda raw: self._build(raw, packet, executor))
