"""``RayExecutor``: runs a packet function's callable as a task on a Ray cluster.

Approach:

* ``ray`` is imported lazily inside the methods that use it (``_import_ray``): the one
  function-local import the project allows, so ``import orcapod`` works without Ray. Using the
  executor without Ray raises ``ExecutorError`` naming ``pip install 'orcapod[ray]'``.
* Ray is started on first use when ``ray.is_initialized()`` is False:
  ``ray.init(address=self.address, ignore_reinit_error=True, include_dashboard=False)``
  (local when ``address`` is None). A Ray that is already initialised (by the caller or an
  earlier executor) is used as is, whatever this executor's ``address``.
* The user function is shipped ONCE per (executor instance, function): ``ray.put(fn)`` on
  first use, the ObjectRef cached on the instance (a bounded LRU keyed by the function, which it
  keeps alive), and every call sends only that ref, wrapped in a list so Ray does not resolve it,
  to one generic module-level task, ``_remote_call``. A worker fetches and unpickles a function
  once and keeps it in a bounded per-process cache (so a stateful callable object keeps its
  state between calls within one worker process). Cached refs are dropped when Ray is restarted.
* Capture happens in the worker (``orcapod.executors.capture``) only when a logger is given;
  without a logger, worker output goes to Ray's usual log forwarding. On success the task
  returns ``(result, captured)``. On failure the worker attaches the capture to the user's
  exception and re-raises THAT exception, so Ray's ``retry_exceptions`` (including a list of
  exception types) sees the real type. The driver takes ``RayTaskError.cause`` (the user's
  exception, original type and message), detaches the capture, hands it to the logger, and
  raises the exception chained ``from`` the Ray error (which carries the remote traceback).
  Errors of Ray itself (a crashed worker, a lost object, a cancelled task) become
  ``ExecutorError``.
* Workers import ``orcapod`` (for ``_remote_call``), so a remote cluster needs it installed (the
  same image, or ``runtime_env={"pip": [...]}``). A local cluster shares this environment.

Decisions where the issue is silent:

* ``num_cpus``, ``num_gpus``, ``resources``, ``runtime_env`` and every extra keyword are TASK
  options, passed to ``.options(...)`` of each task (``runtime_env`` per task, so it also works
  on a running cluster). ``with_options`` replaces the named ones and merges extra keywords over
  the existing ones; per-call ``executor_options`` are merged last. Options Ray rejects raise
  ``ExecutorError`` at the first call. ``name`` defaults to the function's ``__name__``.
* ``get_executor_data()`` records ``runtime_env`` only as present/absent (it may hold secrets
  in ``env_vars``) and ``address`` as given (or ``"auto"``).
* The executor type id is ``"ray"``; it runs packet functions of type ``"python.function.v0"``.
* Ray (2.x) writes ``~/.ray/auth_token`` when it starts a local cluster with token
  authentication; set ``RAY_AUTH_MODE=disabled`` in the environment to prevent that (the tests
  and the benchmark do).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import Any, Self

from orcapod.errors import ExecutorError
from orcapod.executors.calling import canonical_options_json, run_to_completion
from orcapod.executors.capture import (
    CapturedOutput,
    OutputCapture,
    PacketLoggerProtocol,
    record_capture,
)

__all__ = ["RayExecutor"]

PYTHON_FUNCTION_TYPE_ID = "python.function.v0"
INSTALL_HINT = "pip install 'orcapod[ray]'"
_CAPTURE_ATTR = "_orcapod_captured_output"
_DRIVER_CACHE_SIZE = 128  # functions per executor instance
_WORKER_CACHE_SIZE = 64  # functions per worker process
_NAMED_OPTIONS = ("address", "num_cpus", "num_gpus", "resources", "runtime_env")

_INIT_LOCK = threading.Lock()
_REMOTE_LOCK = threading.Lock()
_remote_task: Any = None  # ray.remote(_remote_call), built once per process
_worker_functions: OrderedDict[str, Callable[..., Any]] = OrderedDict()
_worker_lock = threading.Lock()


def _import_ray() -> ModuleType:
    try:
        import ray  # lazy on purpose: Ray is an optional extra
    except ImportError as err:
        raise ExecutorError(
            f"RayExecutor needs Ray, which is not installed; install it with {INSTALL_HINT}, "
            "or use LocalExecutor."
        ) from err
    return ray


# -- worker side -----------------------------------------------------------------------------


def _worker_function(ray: ModuleType, fn_ref: Any) -> Callable[..., Any]:
    key = fn_ref.hex()
    with _worker_lock:
        fn = _worker_functions.get(key)
        if fn is not None:
            _worker_functions.move_to_end(key)
            return fn
    fn = ray.get(fn_ref)
    with _worker_lock:
        _worker_functions[key] = fn
        while len(_worker_functions) > _WORKER_CACHE_SIZE:
            _worker_functions.popitem(last=False)
    return fn


def _remote_call(
    fn_holder: list[Any], kwargs: dict[str, Any], capture: bool
) -> tuple[Any, CapturedOutput | None]:
    """The one generic Ray task: run the shipped function, capturing when asked."""
    fn = _worker_function(_import_ray(), fn_holder[0])
    if not capture:
        return run_to_completion(fn(**kwargs)), None
    with OutputCapture() as output:
        try:
            result = run_to_completion(fn(**kwargs))
        except BaseException as err:
            setattr(err, _CAPTURE_ATTR, output.result(err))
            raise
    return result, output.result()


def _remote(ray: ModuleType) -> Any:
    global _remote_task  # noqa: PLW0603 - one remote wrapper per process
    if _remote_task is None:
        with _REMOTE_LOCK:
            if _remote_task is None:
                _remote_task = ray.remote(_remote_call)
    return _remote_task


# -- driver side -----------------------------------------------------------------------------


def _freeze(value: Any) -> Hashable:
    """A hashable stand-in for an option value, equal for equal values (for ``__hash__``)."""
    if isinstance(value, Mapping):
        return ("map", tuple(sorted((str(k), _freeze(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("seq", tuple(_freeze(v) for v in value))
    if isinstance(value, (set, frozenset)):
        return ("set", frozenset(_freeze(v) for v in value))
    try:
        hash(value)
    except TypeError:  # an unhashable custom value: fall back to its repr
        return ("repr", repr(value))
    return value


def _copy_plain(value: Any) -> Any:
    """Copy the dict/list containers of an option value so later edits by the caller don't leak
    in; other objects (e.g. scheduling strategies) are shared."""
    if isinstance(value, Mapping):
        return {k: _copy_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_plain(v) for v in value]
    return value


def _function_key(fn: Callable[..., Any]) -> Hashable:
    try:
        hash(fn)
    except TypeError:  # unhashable callable object: identity (the cache keeps it alive)
        return ("id", id(fn))
    return ("fn", fn)


@dataclass(frozen=True, init=False)
class RayExecutor:
    """Executor running each call as a Ray task (see the module docstring)."""

    address: str | None
    num_cpus: float | None
    num_gpus: float | None
    resources: Mapping[str, float] | None
    runtime_env: Mapping[str, Any] | None
    remote_options: Mapping[str, Any]

    def __init__(
        self,
        address: str | None = None,
        num_cpus: float | None = None,
        num_gpus: float | None = None,
        resources: Mapping[str, float] | None = None,
        runtime_env: Mapping[str, Any] | None = None,
        **remote_options: Any,
    ) -> None:
        if address is not None and not isinstance(address, str):
            raise ExecutorError(
                f"RayExecutor(address={address!r}) must be a string such as 'auto' or "
                "'ray://host:10001', or None to start a local Ray."
            )
        for name, number in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
            if number is not None and (isinstance(number, bool) or number < 0):
                raise ExecutorError(
                    f"RayExecutor({name}={number!r}) must be a non-negative number or None."
                )
        object.__setattr__(self, "address", address)
        object.__setattr__(self, "num_cpus", num_cpus)
        object.__setattr__(self, "num_gpus", num_gpus)
        object.__setattr__(
            self, "resources", None if resources is None else MappingProxyType(dict(resources))
        )
        object.__setattr__(
            self,
            "runtime_env",
            None if runtime_env is None else MappingProxyType(_copy_plain(runtime_env)),
        )
        object.__setattr__(self, "remote_options", MappingProxyType(_copy_plain(remote_options)))
        self._init_runtime()

    def _init_runtime(self) -> None:
        # runtime state, not part of the value: excluded from eq, hash, repr and pickling
        object.__setattr__(self, "_lock", threading.Lock())
        object.__setattr__(self, "_session", None)
        object.__setattr__(self, "_functions", OrderedDict())

    def __hash__(self) -> int:
        return hash(
            (
                self.address,
                self.num_cpus,
                self.num_gpus,
                _freeze(self.resources),
                _freeze(self.runtime_env),
                _freeze(self.remote_options),
            )
        )

    def __getstate__(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "resources": None if self.resources is None else dict(self.resources),
            "runtime_env": None if self.runtime_env is None else dict(self.runtime_env),
            "remote_options": dict(self.remote_options),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        remote_options = state.pop("remote_options")
        type(self).__init__(self, **state, **remote_options)

    # -- value semantics -------------------------------------------------------------------

    @property
    def executor_type_id(self) -> str:
        return "ray"

    def supported_function_type_ids(self) -> frozenset[str]:
        return frozenset({PYTHON_FUNCTION_TYPE_ID})

    def supports(self, function_type_id: str) -> bool:
        ids = self.supported_function_type_ids()
        return not ids or function_type_id in ids

    @property
    def supports_concurrent_execution(self) -> bool:
        return True

    def with_options(self, **opts: Any) -> Self:
        named = {name: getattr(self, name) for name in _NAMED_OPTIONS}
        remote = dict(self.remote_options)
        for key, value in opts.items():
            if key in named:
                named[key] = value
            else:
                remote[key] = value
        return type(self)(**named, **remote)

    def task_options(self, executor_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The options given to Ray's ``.options(...)`` for a call (without the default name)."""
        options: dict[str, Any] = {}
        for name in ("num_cpus", "num_gpus", "resources", "runtime_env"):
            value = getattr(self, name)
            if value is not None:
                options[name] = _copy_plain(value)
        options.update(_copy_plain(dict(self.remote_options)))
        if executor_options:
            options.update(_copy_plain(dict(executor_options)))
        return options

    def get_executor_data(self) -> dict[str, Any]:
        options = self.task_options()
        if "runtime_env" in options:
            options["runtime_env"] = True
        options["address"] = self.address if self.address is not None else "auto"
        return {
            "executor_type": self.executor_type_id,
            "executor_options": canonical_options_json(options),
        }

    # -- execution -------------------------------------------------------------------------

    def execute_callable(
        self,
        fn: Callable[..., Any],
        kwargs: Mapping[str, Any],
        executor_options: Mapping[str, Any] | None = None,
        *,
        logger: PacketLoggerProtocol | None = None,
    ) -> Any:
        ray = self._ray()
        ref = self._submit(ray, fn, kwargs, executor_options, logger is not None)
        try:
            value = ray.get(ref)
        except ray.exceptions.RayError as err:
            raise self._failure(ray, fn, err, logger) from err
        return self._success(value, logger)

    async def async_execute_callable(
        self,
        fn: Callable[..., Any],
        kwargs: Mapping[str, Any],
        executor_options: Mapping[str, Any] | None = None,
        *,
        logger: PacketLoggerProtocol | None = None,
    ) -> Any:
        ray = self._ray()
        ref = self._submit(ray, fn, kwargs, executor_options, logger is not None)
        try:
            value = await ref
        except ray.exceptions.RayError as err:
            raise self._failure(ray, fn, err, logger) from err
        return self._success(value, logger)

    def submit_callable(
        self,
        fn: Callable[..., Any],
        kwargs: Mapping[str, Any],
        executor_options: Mapping[str, Any] | None = None,
        *,
        logger: PacketLoggerProtocol | None = None,
    ) -> Future[Any]:
        ray = self._ray()
        ref = self._submit(ray, fn, kwargs, executor_options, logger is not None)
        outer: Future[Any] = Future()

        def settle(inner: Future[Any]) -> None:
            try:
                try:
                    value = inner.result()
                except ray.exceptions.RayError as err:
                    raise self._failure(ray, fn, err, logger) from err
                outer.set_result(self._success(value, logger))
            except BaseException as err:  # noqa: BLE001 - delivered through the future
                outer.set_exception(err)

        ref.future().add_done_callback(settle)
        return outer

    # -- internals -------------------------------------------------------------------------

    def _ray(self) -> ModuleType:
        ray = _import_ray()
        if not ray.is_initialized():
            with _INIT_LOCK:
                if not ray.is_initialized():
                    try:
                        ray.init(
                            address=self.address,
                            ignore_reinit_error=True,
                            include_dashboard=False,
                        )
                    except (ConnectionError, RuntimeError, ValueError) as err:
                        raise ExecutorError(
                            f"could not start or connect to Ray (address={self.address!r}): "
                            f"{err}. Start Ray yourself with ray.init(...), or fix the address."
                        ) from err
        return ray

    def _submit(
        self,
        ray: ModuleType,
        fn: Callable[..., Any],
        kwargs: Mapping[str, Any],
        executor_options: Mapping[str, Any] | None,
        capture: bool,
    ) -> Any:
        fn_ref, remote = self._shipped(ray, fn, executor_options)
        return remote.remote([fn_ref], dict(kwargs), capture)

    def _shipped(
        self,
        ray: ModuleType,
        fn: Callable[..., Any],
        executor_options: Mapping[str, Any] | None,
    ) -> tuple[Any, Any]:
        """The function's ObjectRef (put once) and the configured remote task for it."""
        context = ray.get_runtime_context()
        session = (context.get_job_id(), context.get_node_id())
        key = _function_key(fn)
        functions: OrderedDict[Hashable, tuple[Any, Any, Any]] = self.__dict__["_functions"]
        with self.__dict__["_lock"]:  # held while shipping, so a function is put only once
            if self.__dict__["_session"] != session:  # Ray was (re)started: old refs are gone
                functions.clear()
                object.__setattr__(self, "_session", session)
            entry = functions.get(key)
            if entry is not None:
                functions.move_to_end(key)
            else:
                try:
                    fn_ref = ray.put(fn)
                except Exception as err:
                    raise ExecutorError(
                        f"the function {fn!r} cannot be serialised for Ray: {err}. Make it "
                        "picklable (a module-level function, no locks or open files in closures)."
                    ) from err
                entry = (fn, fn_ref, self._configured(ray, fn, None))
                functions[key] = entry
                while len(functions) > _DRIVER_CACHE_SIZE:
                    functions.popitem(last=False)
        if executor_options:
            return entry[1], self._configured(ray, fn, executor_options)
        return entry[1], entry[2]

    def _configured(
        self,
        ray: ModuleType,
        fn: Callable[..., Any],
        executor_options: Mapping[str, Any] | None,
    ) -> Any:
        options = self.task_options(executor_options)
        options.setdefault("name", getattr(fn, "__name__", type(fn).__name__))
        try:
            return _remote(ray).options(**options)
        except (TypeError, ValueError) as err:
            raise ExecutorError(
                f"Ray rejected the task options {options!r}: {err}. Fix them in RayExecutor(...) "
                "or with_options(...) (see ray.remote for the valid names and values)."
            ) from err

    @staticmethod
    def _success(
        value: tuple[Any, CapturedOutput | None], logger: PacketLoggerProtocol | None
    ) -> Any:
        result, captured = value
        if logger is not None and captured is not None:
            record_capture(logger, captured)
        return result

    @staticmethod
    def _failure(
        ray: ModuleType,
        fn: Callable[..., Any],
        err: Exception,
        logger: PacketLoggerProtocol | None,
    ) -> BaseException:
        """The exception to raise for a failed task, after handing its capture to ``logger``."""
        cause = err.cause if isinstance(err, ray.exceptions.RayTaskError) else None
        if isinstance(cause, BaseException):
            captured = cause.__dict__.pop(_CAPTURE_ATTR, None)
            if logger is not None:
                if not isinstance(captured, CapturedOutput):
                    captured = CapturedOutput(traceback=str(err), success=False)
                record_capture(logger, captured)
            return cause
        if logger is not None:
            record_capture(logger, CapturedOutput(traceback=str(err), success=False))
        return ExecutorError(
            f"Ray failed to run {getattr(fn, '__name__', fn)!r}: {type(err).__name__}: {err}. "
            "This is a failure of Ray (worker crash, lost object, cancellation), not of the "
            "function; check the Ray logs and the cluster's resources, then retry."
        )
