"""How ``RayExecutor`` turns calls into Ray tasks: adaptive call grouping, and the Ray plumbing
it shares with the executor (the generic remote tasks, the session id, the cluster's resources).

Why group. Every Ray task costs a few milliseconds that the call does not see: scheduling,
pushing the task, reporting it back, and CPU that Ray's own threads and processes take from the
work (on a small machine that is CPU taken from the calls themselves). A task that runs several
short calls pays it once (measured on 2 CPUs, 40 calls of 50 ms against running them one after
another: one task per call 1.80x, five calls per task 1.90x; between two tasks a worker waits
3-5 ms for the next one, also when it is queued). So ``submit_callable`` queues its
calls in a :class:`CallDispatcher` (one per executor instance, function and per-call options)
that sends them to Ray as GROUP tasks when calls are short, and one call per task when they are
long.

Approach:

* Worker side (``orcapod.executors.ray_worker``, shipped by value so workers need not import
  orcapod). Its group task runs the calls of a group one by one, each with its own capture and
  its own outcome, so one failing call never fails its neighbours. It times every call (the
  driver's estimate of the call duration) and, for adaptive groups, stops taking calls once the
  task has run for ``TASK_BUDGET_SECONDS``, returning fewer outcomes than calls; the driver
  queues the rest again. So a wrong estimate (calls that suddenly take much longer) costs at
  most one call's delay, not a whole group's. Its one-call task (``execute_callable``, and
  ``submit_callable`` without grouping) re-raises the user's exception in the worker, so Ray's
  ``retry_exceptions`` sees it.
* Warm-up. A fresh Ray worker sets up Ray's serialization on its first task (Ray imports
  pyarrow and pydantic for it: about 0.2 s of CPU), and so does the driver on its first
  ``ray.put``. Done one after the other, that delays a first run. So the first time a Ray
  session sees a set of task options, the executor sends :func:`warm_up` tasks, one per task
  slot (``remote_group`` without arguments: no arguments to serialise, nothing to run) BEFORE
  it ships the function, so the workers set up while the driver does. Warm workers lose only
  the few milliseconds of an empty task. (When the executor started a local Ray itself, those
  imports were done while Ray started - ``ray_cluster`` - and the warm-up tasks only load the
  task's definition; they matter for a Ray started by the caller or a remote cluster.)
* Policy, :func:`plan_groups` (a pure function). ``capacity`` = tasks the cluster runs at once
  (:func:`task_capacity`). At most ``2 * capacity`` tasks are in flight (one running and one
  queued in Ray per slot, so a worker never waits for a driver round trip between tasks, which
  costs milliseconds to tens of milliseconds on a busy machine); the other calls wait in our
  queue. Until a call of the function has finished, the duration is unknown: one call per
  task. Once known, a task gets about ``TARGET_TASK_SECONDS`` of calls (``TARGET / estimate``,
  at most ``MAX_CALLS_PER_TASK``; half a second, so the wait between tasks costs about 1% of
  the work, while the tail rule below keeps the finish balanced - measured through
  ``FunctionNode.run()``, 40 calls of 50 ms on 2 CPUs: a 0.5 s target ran 1.5-2% faster than
  0.25 s), but the queued calls are split into at least as many tasks as
  there are free slots, so no slot stays empty while calls wait. Long calls (estimate >= target)
  get one task each and are not held back at all: all of them go to Ray at once, as without
  grouping (an autoscaler sees the whole demand).
* The tail. When the caller says it has submitted its last call (``CallDispatcher.drain``,
  reached through ``RayExecutor.no_more_calls``; a node does so once its input is exhausted), or
  when nothing was submitted for ``TAIL_AFTER_SECONDS``, the queue is probably all the work left,
  and each task launched takes a ``capacity``-th of the calls still queued (at most a full
  group; guided self-scheduling), also when several slots are free at once: groups shrink as
  the queue drains, so the workers finish together (the last tasks hold one call each, so a
  worker that is done early takes the calls a slower one would otherwise run after its current
  task). Splitting the whole queue at once instead (40 calls on 2 CPUs: four tasks of 10) left
  nothing to balance with: a worker 8% slower than the other (a busy machine) finished a call
  or more after it. Simulated (40 calls of 50 ms, 2 ms between tasks), the split costs 6 ms when
  both workers run at the same speed and saves 30 ms at 8%, 55 ms at 15%; a ``2 * capacity``-th
  per task (more, smaller tasks) was a few milliseconds slower in every case. While
  calls keep coming (a node refilling its window as results are collected) full-size groups are
  kept; a short queue then means "more is on its way", not "this is the end". The next
  ``submit`` ends the draining state.
* Consequence: grouping needs more calls in flight than ``2 * capacity``. A caller that keeps
  only ``2 * capacity`` calls in flight (a node's default window of twice the CPUs, on a cluster
  of that size) gets one call per task, as without grouping: a group could then only be formed
  by leaving a worker without a queued next task, and that round trip costs more than the tasks
  saved (measured: groups of 2 in a window of 4 on 2 CPUs leave 10-25 ms gaps between tasks,
  one task per call 3-5 ms). So ``RayExecutor.preferred_concurrency`` (a node's and a pod's
  default window) grows with the group size its dispatchers have learned
  (:meth:`CallDispatcher.group_size`): three full tasks per slot, within a bound.
* The estimate is an exponentially weighted mean of the measured call durations (weight
  ``ESTIMATE_WEIGHT`` per call), per dispatcher; it persists across batches.
* Lingering. A call that arrives while grouping is possible is dispatched ``LINGER_SECONDS``
  later, so calls submitted back to back (a node refilling its window of packets) can share a
  task. When no grouping is possible (unknown or long calls) a call is dispatched at once.
* One daemon thread per process (:class:`_DispatchLoop`) plans and launches tasks for every
  dispatcher; completions arrive on Ray's callback thread, settle the calls' futures and wake
  the loop. The dispatcher never holds its lock while calling Ray or user code.
* ``calls_per_task=k`` (fixed): at most ``k`` calls per task, no estimate and no budget; the same
  slot and tail rules. ``calls_per_task=1`` bypasses the dispatcher entirely (one task
  per call, sent at once: the behaviour without grouping).
* A call whose future is cancelled before its task is launched is dropped (never run); once
  launched (``Future.set_running_or_notify_cancel``) it can no longer be cancelled.

Why group tasks and not long-lived actors fed with calls. Measured on 2 CPUs (40 calls of
50 ms, the benchmark's breakdown summed over both workers): with groups the workers sit idle
0.05-0.09 s per run (the first call starts 5 ms after the submission, tasks change over in
1-3 ms, and one worker usually finishes up to a call before the other); the rest of the gap to
twice the local speed is the calls themselves running slower in a worker (0-5% more CPU time
per call than in the driver, varying from minute to minute on a shared virtual machine) and CPU
taken by other processes. Actors could remove the changeover and start delays (about 0.03 s),
not the finish or the rest. A prototype with one actor per CPU and two calls in flight each,
one call per actor call, left its workers no less idle than the groups on a busy machine
(1-minute load 4-6, three runs: 0.07-0.17 s of gaps between calls per worker, groups
0.02-0.16 s; each call pays the per-call cost that a group pays once). And an actor holds its
CPUs while it lives: held between runs, it blocks every other task of the cluster (other
executors, other options, the user's own tasks) until released; released when idle, its worker
process exits and Ray must start a new one (about 0.6 s of CPU) for the next run. Tasks hold
resources only while they run.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from orcapod.errors import ExecutorError
from orcapod.executors.capture import PacketLoggerProtocol
from orcapod.executors.ray_cluster import task_demand
from orcapod.executors.ray_worker import ship_by_value

__all__ = [
    "INSTALL_HINT",
    "CallDispatcher",
    "QueuedCall",
    "cluster_resources",
    "import_ray",
    "plan_groups",
    "ray_session",
    "remote_task",
    "task_capacity",
    "warm_up",
]

INSTALL_HINT = "pip install 'orcapod[ray]'"
TARGET_TASK_SECONDS = 0.5  # work per group task once the call duration is known
TASK_BUDGET_SECONDS = 2 * TARGET_TASK_SECONDS  # an adaptive group stops taking calls then
MAX_CALLS_PER_TASK = 1000
LINGER_SECONDS = 0.001
TAIL_AFTER_SECONDS = 0.5  # no submission for this long: balance the rest
ESTIMATE_WEIGHT = 0.3

RESOURCES_TTL = 10.0  # seconds a read of the cluster's resources is reused

WARM_UP_TASKS = 64  # at most, per Ray session and task options

_REMOTE_LOCK = threading.Lock()
_WARM_LOCK = threading.Lock()
_warmed: dict[str, Any] = {}  # {"session", "keys"}: task options already warmed up
_remote_tasks: dict[Callable[..., Any], Any] = {}  # ray.remote wrappers, built once per process
_resources: dict[str, Any] = {}  # {"session", "at", "value"}: cached ray.cluster_resources()


def import_ray() -> ModuleType:
    try:
        import ray  # lazy on purpose: Ray is an optional extra
    except ImportError as err:
        raise ExecutorError(
            f"RayExecutor needs Ray, which is not installed; install it with {INSTALL_HINT}, "
            "or use LocalExecutor."
        ) from err
    return ray


def remote_task(ray: ModuleType, fn: Callable[..., Any]) -> Any:
    """``ray.remote(fn)`` for one of the generic tasks of ``ray_worker``, built once per process
    (the module is shipped by value: see there)."""
    task = _remote_tasks.get(fn)
    if task is None:
        with _REMOTE_LOCK:
            task = _remote_tasks.get(fn)
            if task is None:
                ship_by_value(ray.cloudpickle)
                task = _remote_tasks[fn] = ray.remote(fn)
    return task


def warm_up(session: Hashable, options_key: Hashable, task: Any, count: int) -> list[Any]:
    """Send ``count`` (at most ``WARM_UP_TASKS``) empty group tasks (``task``: the group task
    configured with some Ray options), once per Ray session and ``options_key``; returns their
    refs (none when already sent). See the module docstring."""
    with _WARM_LOCK:
        if _warmed.get("session") != session:
            _warmed.clear()
            _warmed["session"] = session
        sent: set[Hashable] = _warmed.setdefault("keys", set())
        if options_key in sent:
            return []
        sent.add(options_key)
    return [task.remote() for _ in range(min(count, WARM_UP_TASKS))]


def ray_session(ray: ModuleType) -> tuple[Any, Any]:
    """Identifies the running Ray (job id, node id); changes when Ray is restarted."""
    context = ray.get_runtime_context()
    return context.get_job_id(), context.get_node_id()


def cluster_resources(ray: ModuleType, session: Hashable) -> Mapping[str, float]:
    """``ray.cluster_resources()``, read at most every ``RESOURCES_TTL`` seconds."""
    now = time.monotonic()
    if _resources.get("session") != session or now - _resources["at"] > RESOURCES_TTL:
        _resources.update(session=session, at=now, value=dict(ray.cluster_resources()))
    value: Mapping[str, float] = _resources["value"]
    return value


# -- policy ----------------------------------------------------------------------------------


def task_capacity(options: Mapping[str, Any], cluster: Mapping[str, float]) -> int:
    """How many tasks with these Ray options the cluster runs at once (at least 1).

    A task asks for ``num_cpus`` (Ray's default 1), ``num_gpus``, ``memory`` and custom
    ``resources`` (``ray_cluster.task_demand``); the capacity is the smallest
    ``total / demand`` over what it asks for. A task asking for nothing is counted as one per
    CPU.
    """
    demand = task_demand(options)
    fits = [cluster.get(name, 0.0) / amount for name, amount in demand.items()]
    if not fits:
        fits = [cluster.get("CPU", 1.0)]
    return max(1, math.floor(min(fits) + 1e-9))


def calls_per_task_for(estimate: float | None, calls_per_task: int | None) -> int:
    """Calls one task should get: the fixed setting, else ``TARGET / estimate`` (1 if unknown)."""
    if calls_per_task is not None:
        return calls_per_task
    if estimate is None:
        return 1
    if estimate <= 0:
        return MAX_CALLS_PER_TASK
    return max(1, min(MAX_CALLS_PER_TASK, int(TARGET_TASK_SECONDS / estimate)))


def plan_groups(
    queued: int,
    in_flight: int,
    capacity: int,
    estimate: float | None,
    calls_per_task: int | None = None,
    *,
    tail: bool = True,
) -> list[int]:
    """Sizes of the group tasks to launch now from ``queued`` calls (see the module docstring).

    ``in_flight``: tasks launched and not finished; ``capacity``: tasks the cluster runs at once;
    ``estimate``: seconds per call (None = unknown); ``calls_per_task``: fixed group size or None;
    ``tail``: no call was submitted for a while, so the queue is probably all the work left.
    """
    if queued <= 0:
        return []
    per_task = calls_per_task_for(estimate, calls_per_task)
    long_calls = calls_per_task is None and estimate is not None and per_task == 1
    slots = queued if long_calls else max(0, 2 * capacity - in_flight)
    if slots == 0:
        return []
    if tail:  # each task takes a capacity-th of what is left, at most a full group
        sizes: list[int] = []
        left = queued
        while left > 0 and len(sizes) < slots:
            sizes.append(min(per_task, -(-left // capacity)))
            left -= sizes[-1]
        return sizes
    tasks = max(-(-queued // per_task), min(queued, slots))
    base, extra = divmod(queued, tasks)
    launch = min(tasks, slots)
    return [base + 1 if i < extra else base for i in range(launch)]


# -- driver side -----------------------------------------------------------------------------


@dataclass(slots=True)
class QueuedCall:
    """A submitted call: its arguments, logger and the caller's future."""

    kwargs: dict[str, Any]
    logger: PacketLoggerProtocol | None
    future: Future[Any]
    started: bool = False  # future set running (a re-queued call of a cut-short group)


class _DispatchLoop:
    """One daemon thread per process that runs ``CallDispatcher.dispatch`` when due."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[CallDispatcher, float] = {}
        self._thread: threading.Thread | None = None

    def wake(self, dispatcher: CallDispatcher, at: float) -> None:
        with self._cond:
            current = self._due.get(dispatcher)
            if current is None or at < current:
                self._due[dispatcher] = at
                self._cond.notify()
            if self._thread is None or not self._thread.is_alive():  # first use, or a fork
                self._thread = threading.Thread(
                    target=self._run, name="orcapod-ray-dispatch", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    ready = [d for d, at in self._due.items() if at <= now]
                    if ready:
                        for dispatcher in ready:
                            del self._due[dispatcher]
                        break
                    timeout = min(self._due.values()) - now if self._due else None
                    self._cond.wait(timeout)
            for dispatcher in ready:
                dispatcher.dispatch()


_LOOP = _DispatchLoop()

#: launch(group, budget): start one task for ``group``; raising fails the group's calls.
Launch = Callable[[list[QueuedCall], float | None], None]


class CallDispatcher:
    """Queue, tasks in flight and duration estimate of one (executor, function, options)."""

    def __init__(
        self, launch: Launch, capacity: Callable[[], int], calls_per_task: int | None
    ) -> None:
        self._launch = launch
        self._capacity = capacity
        self._calls_per_task = calls_per_task
        self._lock = threading.Lock()
        self._queue: deque[QueuedCall] = deque()
        self._in_flight = 0
        self._estimate: float | None = None  # seconds per call; None until one has finished
        self._last_submit = 0.0
        self._draining = False  # the caller submitted its last call (until the next submit)

    def submit(self, call: QueuedCall) -> None:
        now = time.monotonic()
        with self._lock:
            self._queue.append(call)
            self._last_submit = now
            self._draining = False
            linger = calls_per_task_for(self._estimate, self._calls_per_task) > 1
        _LOOP.wake(self, now + (LINGER_SECONDS if linger else 0.0))

    def group_size(self) -> int:
        """Calls one task gets at the current estimate (1 while the duration is unknown)."""
        with self._lock:
            return calls_per_task_for(self._estimate, self._calls_per_task)

    def drain(self) -> None:
        """The caller submits no more calls for now: what is queued is all the work left, so
        it is split for a balanced finish (the tail rule) and dispatched without lingering."""
        with self._lock:
            self._draining = True
            pending = bool(self._queue)
        if pending:
            _LOOP.wake(self, time.monotonic())

    def task_finished(self, durations: Sequence[float], leftovers: Sequence[QueuedCall]) -> None:
        """A launched task ended: ``durations`` of its calls that ran, ``leftovers`` not run."""
        with self._lock:
            self._in_flight -= 1
            for seconds in durations:
                if self._estimate is None:
                    self._estimate = seconds
                else:
                    self._estimate += ESTIMATE_WEIGHT * (seconds - self._estimate)
            self._queue.extendleft(reversed(leftovers))
            pending = bool(self._queue)
        if pending:
            _LOOP.wake(self, time.monotonic())

    def dispatch(self) -> None:
        """Plan and launch tasks for the queued calls (run by the dispatch thread only)."""
        try:
            capacity = self._capacity()
        except Exception as err:  # noqa: BLE001 - delivered to every waiting call
            with self._lock:
                waiting = list(self._queue)
                self._queue.clear()
            for call in waiting:
                if call.started or call.future.set_running_or_notify_cancel():
                    call.future.set_exception(err)
            return
        with self._lock:
            sizes = plan_groups(
                len(self._queue),
                self._in_flight,
                capacity,
                self._estimate,
                self._calls_per_task,
                tail=self._draining or time.monotonic() - self._last_submit >= TAIL_AFTER_SECONDS,
            )
            adaptive = self._calls_per_task is None
            groups = [group for size in sizes if (group := self._take(size))]
            self._in_flight += len(groups)
        for group in groups:
            budget = TASK_BUDGET_SECONDS if adaptive and len(group) > 1 else None
            try:
                self._launch(group, budget)
            except Exception as err:  # noqa: BLE001 - delivered to the group's callers
                for call in group:
                    call.future.set_exception(err)
                self.task_finished((), ())

    def _take(self, size: int) -> list[QueuedCall]:
        group: list[QueuedCall] = []
        while self._queue and len(group) < size:
            call = self._queue.popleft()
            if call.started or call.future.set_running_or_notify_cancel():
                call.started = True
                group.append(call)
        return group
