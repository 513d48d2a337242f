"""``RayExecutor``: runs a packet function's callable as tasks on a Ray cluster.

Approach:

* ``ray`` is imported lazily (``ray_dispatch.import_ray``): the one function-local import the
  project allows, so ``import orcapod`` works without Ray. Using the executor without Ray raises
  ``ExecutorError`` naming ``pip install 'orcapod[ray]'``.
* Ray is started on first use when ``ray.is_initialized()`` is False
  (``orcapod.executors.ray_cluster.connect``); when ``address`` is None a local Ray is started
  on ``127.0.0.1`` (loopback only when ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` was set before
  Ray was imported). A Ray that is already initialised (by the caller or an earlier executor)
  is used as is, whatever this executor's ``address``. An explicit ``host:port`` that does
  not answer within ``connect_timeout`` seconds, and task options no node of the cluster can
  satisfy within ``resource_timeout`` seconds, raise ``ExecutorError``
  (``orcapod.executors.ray_cluster``) instead of waiting forever.
* The user function is shipped ONCE per (executor instance, function): ``ray.put(fn)`` on
  first use (a function that cannot be pickled raises ``ExecutorError`` there, naming what
  cannot be pickled: ``ray_outcomes.unshippable``; raised by ``submit_callable``, it stops a
  node's run before any row is dispatched instead of failing each row), the ObjectRef cached
  on the instance (a bounded LRU keyed by the function, which it keeps alive), and every
  task sends only that ref, wrapped in a list so Ray does not resolve it, to one of two
  generic tasks (``ray_worker.remote_call`` for one call, ``remote_group`` for
  several; shipped by value, so a worker runs a plain call without importing orcapod). A
  worker fetches and unpickles a function once and keeps it in a bounded per-process cache (so
  a stateful callable object keeps its state between calls within one worker process). Cached
  refs are dropped when Ray is restarted.
* ``execute_callable`` / ``async_execute_callable`` run one call per task. ``submit_callable``
  (how nodes and pods dispatch packets) queues the call in a per-(function, options)
  ``CallDispatcher`` that groups short calls into one task and keeps a bounded number of tasks
  in flight; see ``orcapod.executors.ray_dispatch`` for the policy. ``no_more_calls()`` (a node
  says it once its input is exhausted; results are unaffected, the next call ends it) has the
  queued calls split for a balanced finish. Grouping never changes results: every call keeps
  its own outcome, capture and exception.
* How a task's outcome becomes the caller's result or exception (capture, the user's own
  exception re-raised, errors of Ray itself as ``ExecutorError``):
  ``orcapod.executors.ray_outcomes``.
* Workers import ``orcapod`` only to capture a call's output or to run an async function
  (the generic tasks themselves are shipped by value; see ``ray_worker``), and whenever the
  user's function does; a remote cluster should have it installed (the same image, or
  ``runtime_env={"pip": [...]}``). A local cluster shares this environment.

Decisions:

* ``num_cpus``, ``num_gpus``, ``resources``, ``runtime_env`` and every extra keyword are TASK
  options, passed to ``.options(...)`` of each task (``runtime_env`` per task, so it also works
  on a running cluster). ``with_options`` replaces the named ones and merges extra keywords over
  the existing ones; per-call ``executor_options`` are merged last. Options Ray rejects raise
  ``ExecutorError`` at the first call. ``name`` defaults to the function's ``__name__``.
* ``calls_per_task`` (None = adaptive, the default; an int >= 1 = at most that many calls per
  task; 1 = no grouping, one task per call sent at once) is an option of the executor, not of
  Ray: it can be given to the constructor, ``with_options`` or per call in
  ``executor_options``. It is left out of ``get_executor_data()``: it changes how calls are
  batched, never what they return, so results computed with different settings are the same
  results. With ``retry_exceptions`` in the task options calls are never grouped (Ray retries
  a whole task; retrying a group would rerun its successful calls), and neither are calls of
  ``execute_callable``.
* A group task that fails as a whole (a crashed or killed worker, an unpicklable return value)
  is split: each of its calls is run again as its own one-call task, so the failure reaches
  only the call that causes it (its neighbours ran once more; Ray's own ``max_retries`` already
  re-runs whole tasks after a crash). A group that cannot be launched (one call's arguments
  cannot be serialised) is sent call by call the same way. A cancelled group task fails all its
  calls.
* The cluster's total resources (for the dispatcher's capacity) are read with
  ``ray.cluster_resources()`` at most every ``RESOURCES_TTL`` seconds, so a growing cluster
  is noticed.
* ``get_executor_data()`` records ``runtime_env`` only as present/absent (it may hold secrets
  in ``env_vars``) and ``address`` without its userinfo (or ``"auto"``); the repr hides the
  userinfo too. ``connect_timeout`` and ``resource_timeout`` are left out like
  ``calls_per_task``: they never change results.
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
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType
from typing import Any, Self

from orcapod.errors import ExecutorError
from orcapod.executors.calling import canonical_options_json
from orcapod.executors.capture import PacketLoggerProtocol
from orcapod.executors.ray_cluster import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_RESOURCE_TIMEOUT,
    connect,
    public_address,
    wait_for_feasible,
)
from orcapod.executors.ray_dispatch import (
    CallDispatcher,
    QueuedCall,
    cluster_resources,
    import_ray,
    ray_session,
    remote_task,
    task_capacity,
    warm_up,
)
from orcapod.executors.ray_options import (
    check_amount,
    check_calls_per_task,
    check_resources,
    check_timeout,
    copy_plain,
    freeze_option,
)
from orcapod.executors.ray_outcomes import (
    CallOutcome,
    function_name,
    settle_call,
    task_failure,
    task_success,
    unshippable,
)
from orcapod.executors.ray_worker import remote_call, remote_group

__all__ = ["RayExecutor"]

PYTHON_FUNCTION_TYPE_ID = "python.function.v0"
_DRIVER_CACHE_SIZE = 128  # functions per executor instance
_ROUTES_PER_FUNCTION = 32  # distinct per-call option sets per function
MIN_IN_FLIGHT = 32  # preferred_concurrency: calls in flight, at least
IN_FLIGHT_PER_SLOT = 8  # ... and per task slot of the cluster
LEARNED_WINDOW_FACTOR = 4  # ... or up to 4x that, to hold the groups learned (see there)
_NAMED_OPTIONS = (
    "address",
    "num_cpus",
    "num_gpus",
    "resources",
    "runtime_env",
    "calls_per_task",
    "connect_timeout",
    "resource_timeout",
)


def _function_key(fn: Callable[..., Any]) -> Hashable:
    try:
        hash(fn)
    except TypeError:  # unhashable callable object: identity (the cache keeps it alive)
        return ("id", id(fn))
    return ("fn", fn)


@dataclass
class _Route:
    """How calls of one function with one set of per-call options reach Ray."""

    fn: Callable[..., Any]
    fn_ref: Any
    session: Hashable
    single: Any  # the configured one-call task
    group: Any = None  # the configured group task, when calls are grouped
    dispatcher: CallDispatcher | None = None


@dataclass
class _Shipped:
    fn: Callable[..., Any]  # kept alive: the cache key may be its id
    fn_ref: Any
    routes: OrderedDict[Hashable, _Route] = field(default_factory=OrderedDict)


@dataclass(frozen=True, init=False)
class RayExecutor:
    """Executor running calls as Ray tasks (see the module docstring)."""

    address: str | None
    num_cpus: float | None
    num_gpus: float | None
    resources: Mapping[str, float] | None
    runtime_env: Mapping[str, Any] | None
    calls_per_task: int | None
    connect_timeout: float
    resource_timeout: float
    remote_options: Mapping[str, Any]

    def __init__(
        self,
        address: str | None = None,
        num_cpus: float | None = None,
        num_gpus: float | None = None,
        resources: Mapping[str, float] | None = None,
        runtime_env: Mapping[str, Any] | None = None,
        calls_per_task: int | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        resource_timeout: float = DEFAULT_RESOURCE_TIMEOUT,
        **remote_options: Any,
    ) -> None:
        if address is not None and not isinstance(address, str):
            raise ExecutorError(
                f"RayExecutor(address={address!r}) must be a string such as 'auto' or "
                "'ray://host:10001', or None to start a local Ray."
            )
        for name, number in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
            check_amount(name, number)
        check_resources(resources)
        object.__setattr__(self, "address", address)
        object.__setattr__(self, "num_cpus", num_cpus)
        object.__setattr__(self, "num_gpus", num_gpus)
        object.__setattr__(
            self, "resources", None if resources is None else MappingProxyType(dict(resources))
        )
        object.__setattr__(
            self,
            "runtime_env",
            None if runtime_env is None else MappingProxyType(copy_plain(runtime_env)),
        )
        object.__setattr__(self, "calls_per_task", check_calls_per_task(calls_per_task))
        object.__setattr__(
            self, "connect_timeout", check_timeout("connect_timeout", connect_timeout)
        )
        object.__setattr__(
            self, "resource_timeout", check_timeout("resource_timeout", resource_timeout)
        )
        object.__setattr__(self, "remote_options", MappingProxyType(copy_plain(remote_options)))
        self._init_runtime()

    def _init_runtime(self) -> None:
        # runtime state, not part of the value: excluded from eq, hash, repr and pickling
        object.__setattr__(self, "_lock", threading.Lock())
        object.__setattr__(self, "_session", None)
        object.__setattr__(self, "_functions", OrderedDict())

    def __hash__(self) -> int:
        named = tuple(freeze_option(getattr(self, name)) for name in _NAMED_OPTIONS)
        return hash((named, freeze_option(self.remote_options)))

    def __repr__(self) -> str:
        shown = {name: getattr(self, name) for name in _NAMED_OPTIONS}
        shown["address"] = public_address(self.address)
        for name in ("resources", "runtime_env"):
            shown[name] = None if shown[name] is None else dict(shown[name])
        if shown["runtime_env"] is not None:
            shown["runtime_env"] = "<set>"  # may hold secrets in env_vars
        text = ", ".join(f"{k}={v!r}" for k, v in shown.items() if v is not None)
        extra = "".join(f", {k}={v!r}" for k, v in self.remote_options.items())
        return f"RayExecutor({text}{extra})"

    def __getstate__(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in _NAMED_OPTIONS}
        for name in ("resources", "runtime_env"):  # plain dicts, not mapping proxies
            state[name] = None if state[name] is None else dict(state[name])
        return {**state, "remote_options": dict(self.remote_options)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        type(self).__init__(self, **{**state.pop("remote_options"), **state})

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

    @property
    def preferred_concurrency(self) -> int:
        """Calls a caller should keep in flight (pods' and nodes' default window): enough to
        group short calls with every task slot busy - ``IN_FLIGHT_PER_SLOT`` per slot, at least
        ``MIN_IN_FLIGHT``; once this instance's largest group size is known, room for three full
        tasks per slot (two in flight, one to split at the end), at most ``LEARNED_WINDOW_FACTOR``
        times the former (a smaller window cuts groups short)."""
        ray = import_ray()
        if not ray.is_initialized():
            return MIN_IN_FLIGHT
        capacity = task_capacity(self.task_options(), cluster_resources(ray, ray_session(ray)))
        window = max(MIN_IN_FLIGHT, IN_FLIGHT_PER_SLOT * capacity)
        grouped = max((d.group_size() for d in self._dispatchers()), default=1)
        return min(LEARNED_WINDOW_FACTOR * window, max(window, 3 * capacity * grouped))

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
                options[name] = copy_plain(value)
        options.update(copy_plain(dict(self.remote_options)))
        if executor_options:
            options.update(copy_plain(dict(executor_options)))
        for ours in ("calls_per_task", "connect_timeout", "resource_timeout"):  # not Ray's
            options.pop(ours, None)
        return options

    def get_executor_data(self) -> dict[str, Any]:
        options = self.task_options()
        if "runtime_env" in options:
            options["runtime_env"] = True
        options["address"] = public_address(self.address) or "auto"
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
        route = self._route(ray, fn, executor_options)
        ref = route.single.remote([route.fn_ref], dict(kwargs), logger is not None)
        try:
            value = ray.get(ref)
        except ray.exceptions.RayError as err:
            raise task_failure(ray, fn, err, logger, kwargs)  # noqa: B904 - chained there
        return task_success(value, logger)

    async def async_execute_callable(
        self,
        fn: Callable[..., Any],
        kwargs: Mapping[str, Any],
        executor_options: Mapping[str, Any] | None = None,
        *,
        logger: PacketLoggerProtocol | None = None,
    ) -> Any:
        ray = self._ray()
        route = self._route(ray, fn, executor_options)
        ref = route.single.remote([route.fn_ref], dict(kwargs), logger is not None)
        try:
            value = await ref
        except ray.exceptions.RayError as err:
            raise task_failure(ray, fn, err, logger, kwargs)  # noqa: B904 - chained there
        return task_success(value, logger)

    def submit_callable(
        self,
        fn: Callable[..., Any],
        kwargs: Mapping[str, Any],
        executor_options: Mapping[str, Any] | None = None,
        *,
        logger: PacketLoggerProtocol | None = None,
    ) -> Future[Any]:
        ray = self._ray()
        route = self._route(ray, fn, executor_options)
        call = QueuedCall(dict(kwargs), logger, Future())
        if route.dispatcher is None:
            call.future.set_running_or_notify_cancel()
            self._submit_alone(ray, route, call)
        else:
            route.dispatcher.submit(call)
        return call.future

    def no_more_calls(self) -> None:
        """The caller has submitted its last call for now: a hint (module docstring)."""
        for dispatcher in self._dispatchers():
            dispatcher.drain()

    def _dispatchers(self) -> list[CallDispatcher]:
        with self.__dict__["_lock"]:
            routes = [r for s in self.__dict__["_functions"].values() for r in s.routes.values()]
        return [route.dispatcher for route in routes if route.dispatcher is not None]

    # -- internals -------------------------------------------------------------------------

    def _ray(self) -> ModuleType:
        ray = import_ray()
        if not ray.is_initialized():
            connect(ray, self.address, self.connect_timeout)
        return ray

    def _route(
        self,
        ray: ModuleType,
        fn: Callable[..., Any],
        executor_options: Mapping[str, Any] | None,
    ) -> _Route:
        """The shipped function (put once) and how calls with these options reach Ray."""
        session = ray_session(ray)
        key = _function_key(fn)
        options_key = freeze_option(executor_options) if executor_options else None
        functions: OrderedDict[Hashable, _Shipped] = self.__dict__["_functions"]
        with self.__dict__["_lock"]:  # held while shipping, so a function is put only once
            if self.__dict__["_session"] != session:  # Ray was (re)started: old refs are gone
                functions.clear()
                object.__setattr__(self, "_session", session)
            shipped = functions.get(key)
            route = None if shipped is None else shipped.routes.get(options_key)
            # a new route: options checked and workers warmed up BEFORE the function is put
            options = (
                None
                if route is not None
                else self._checked_options(ray, fn, session, executor_options)
            )
            if shipped is not None:
                functions.move_to_end(key)
            else:
                try:
                    fn_ref = ray.put(fn)
                except Exception as err:  # noqa: BLE001 - raised as ``unshippable``
                    # chained from what pickling raised, not from Ray's report (in the message)
                    raise unshippable(fn, err) from (err.__cause__ or err)
                shipped = functions[key] = _Shipped(fn, fn_ref)
                while len(functions) > _DRIVER_CACHE_SIZE:
                    functions.popitem(last=False)
            if route is None:
                assert options is not None
                route = shipped.routes[options_key] = self._new_route(
                    ray, shipped, session, executor_options, options
                )
                while len(shipped.routes) > _ROUTES_PER_FUNCTION:
                    shipped.routes.popitem(last=False)
        return route

    def _checked_options(
        self,
        ray: ModuleType,
        fn: Callable[..., Any],
        session: Hashable,
        executor_options: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        """The Ray options of a new route, once some node can run them; the first route of a
        Ray session with these options also sends warm-up tasks (``ray_dispatch.warm_up``)."""
        options = self.task_options(executor_options)
        wait_for_feasible(ray, options, self.resource_timeout, function_name(fn))
        capacity = task_capacity(options, cluster_resources(ray, session))
        warm_up(
            session,
            freeze_option(options),
            self._configured(ray, remote_group, options),
            capacity,
        )
        options.setdefault("name", function_name(fn))
        return options

    def _new_route(
        self,
        ray: ModuleType,
        shipped: _Shipped,
        session: Hashable,
        executor_options: Mapping[str, Any] | None,
        options: dict[str, Any],
    ) -> _Route:
        per_task = self.calls_per_task
        if executor_options and "calls_per_task" in executor_options:
            per_task = check_calls_per_task(executor_options["calls_per_task"])
        route = _Route(
            shipped.fn, shipped.fn_ref, session, self._configured(ray, remote_call, options)
        )
        if per_task == 1 or options.get("retry_exceptions"):
            return route
        route.group = self._configured(ray, remote_group, options)

        def launch(group: list[QueuedCall], budget: float | None) -> None:
            self._launch(ray, route, group, budget)

        def capacity() -> int:
            try:
                cluster = cluster_resources(ray, route.session)
            except Exception as err:
                raise ExecutorError(
                    "could not read the Ray cluster's resources to send calls of "
                    f"{function_name(route.fn)!r}: {err}. Is Ray still running? Submit the "
                    "calls again."
                ) from err
            return task_capacity(options, cluster)

        route.dispatcher = CallDispatcher(launch, capacity, per_task)
        return route

    @staticmethod
    def _configured(ray: ModuleType, task: Callable[..., Any], options: dict[str, Any]) -> Any:
        try:
            return remote_task(ray, task).options(**options)
        except (TypeError, ValueError) as err:
            raise ExecutorError(
                f"Ray rejected the task options {options!r}: {err}. Fix them in RayExecutor(...) "
                "or with_options(...) (see ray.remote for the valid names and values)."
            ) from err

    def _submit_alone(self, ray: ModuleType, route: _Route, call: QueuedCall) -> None:
        """One call as its own task; the outcome settles ``call.future`` (already running)."""
        ref = route.single.remote([route.fn_ref], call.kwargs, call.logger is not None)

        def settle(inner: Future[Any]) -> None:
            try:
                try:
                    value = inner.result()
                except ray.exceptions.RayError as err:
                    raise task_failure(ray, route.fn, err, call.logger, call.kwargs)  # noqa: B904 - chained there
                call.future.set_result(task_success(value, call.logger))
            except BaseException as err:  # noqa: BLE001 - delivered through the future
                call.future.set_exception(err)

        ref.future().add_done_callback(settle)

    def _launch(
        self, ray: ModuleType, route: _Route, group: list[QueuedCall], budget: float | None
    ) -> None:
        """Start one group task (called by the dispatch thread)."""
        if not ray.is_initialized() or ray_session(ray) != route.session:
            raise ExecutorError(
                f"Ray was shut down or restarted while calls of {function_name(route.fn)!r} "
                "waited to be sent; submit them again (the function is shipped anew)."
            )
        calls = [(call.kwargs, call.logger is not None) for call in group]
        try:
            ref = route.group.remote([route.fn_ref], calls, budget)
        except Exception:  # not swallowed: re-raised, or met again by each call alone
            if len(group) == 1:
                raise  # the dispatcher hands the error to the call
            # e.g. one call's arguments cannot be pickled: each call is launched alone, so the
            # same error reaches exactly the calls it belongs to (all of them, if Ray is down)
            assert route.dispatcher is not None
            route.dispatcher.task_finished((), ())
            self._run_alone(ray, route, group)
            return
        ref.future().add_done_callback(lambda inner: self._settle_group(ray, route, group, inner))

    def _run_alone(self, ray: ModuleType, route: _Route, calls: list[QueuedCall]) -> None:
        """Each call as its own one-call task (outside the dispatcher)."""
        for call in calls:
            try:
                self._submit_alone(ray, route, call)
            except Exception as err:  # noqa: BLE001 - delivered through the future
                call.future.set_exception(err)

    def _settle_group(
        self, ray: ModuleType, route: _Route, group: list[QueuedCall], inner: Future[Any]
    ) -> None:
        """A group task ended (on Ray's callback thread): settle every call of it."""
        assert route.dispatcher is not None
        try:
            outcomes = [CallOutcome.of(raw) for raw in inner.result()]
        except Exception as err:  # noqa: BLE001 - delivered to the calls below
            route.dispatcher.task_finished((), ())
            if (
                len(group) > 1
                and isinstance(err, ray.exceptions.RayError)
                and not isinstance(err, ray.exceptions.TaskCancelledError)
            ):
                self._run_alone(ray, route, group)
                return
            for call in group:
                try:
                    raise task_failure(ray, route.fn, err, call.logger, call.kwargs)
                except BaseException as error:  # noqa: BLE001 - delivered through the future
                    call.future.set_exception(error)
            return
        route.dispatcher.task_finished([o.seconds for o in outcomes], group[len(outcomes) :])
        for call, outcome in zip(group, outcomes, strict=False):
            settle_call(route.fn, call, outcome)
