"""Grouping of short calls into Ray tasks: the policy (pure functions, no Ray) and the
behaviour through ``RayExecutor.submit_callable`` on a real local Ray (``ray_session``)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from types import ModuleType
from typing import Any

import pytest

from orcapod.errors import ExecutorError
from orcapod.executors import RayExecutor
from orcapod.executors.ray import IN_FLIGHT_PER_SLOT, LEARNED_WINDOW_FACTOR, MIN_IN_FLIGHT
from orcapod.executors.ray_dispatch import (
    MAX_CALLS_PER_TASK,
    TARGET_TASK_SECONDS,
    TASK_BUDGET_SECONDS,
    WARM_UP_TASKS,
    CallDispatcher,
    QueuedCall,
    plan_groups,
    remote_task,
    task_capacity,
    warm_up,
)
from orcapod.executors.ray_dispatch import ray_session as ray_session_id
from orcapod.executors.ray_worker import remote_group


class UserError(Exception):
    pass


def tagged(x: int, seconds: float = 0.0, extra: Any = None) -> Any:
    """Returns its input, the id of the Ray task running it and the worker's pid; fails for
    x % 5 == 3, and returns a value Ray cannot send back for x == 11."""
    import ray

    task_id = ray.get_runtime_context().get_task_id()
    time.sleep(seconds)
    print(f"out {x}")
    if x % 5 == 3:
        raise UserError(f"bad {x} in task {task_id}")
    if x == 11:
        return threading.Lock()
    return x, task_id, os.getpid()


# -- policy (no Ray) ---------------------------------------------------------------------------


def test_unknown_duration_sends_one_call_per_task_and_holds_the_rest() -> None:
    # 2 CPUs: two tasks running and two queued behind them; the other calls wait in our queue
    assert plan_groups(queued=40, in_flight=0, capacity=2, estimate=None) == [1, 1, 1, 1]
    assert plan_groups(queued=40, in_flight=3, capacity=2, estimate=None) == [1]
    assert plan_groups(queued=40, in_flight=4, capacity=2, estimate=None) == []


FIVE_PER_TASK = TARGET_TASK_SECONDS / 5.5  # a call duration that fills a task with 5 calls


def test_short_calls_are_grouped_by_target_duration() -> None:
    est = FIVE_PER_TASK
    for tail in (True, False):
        sizes = plan_groups(queued=40, in_flight=0, capacity=2, estimate=est, tail=tail)
        assert sizes == [5] * 4
    huge = plan_groups(queued=100_000, in_flight=0, capacity=2, estimate=0.0)
    assert huge == [MAX_CALLS_PER_TASK] * 4
    # calls still coming in: every free slot gets a task, the groups keep their size
    assert plan_groups(queued=8, in_flight=3, capacity=2, estimate=est, tail=False) == [4]
    assert plan_groups(queued=6, in_flight=2, capacity=2, estimate=est, tail=False) == [3, 3]
    assert plan_groups(queued=3, in_flight=0, capacity=2, estimate=est, tail=False) == [1, 1, 1]


def test_the_tail_of_the_queue_is_split_for_balance() -> None:
    # nothing submitted lately: each task takes half of what is left (2 CPUs), so the groups
    # shrink to one call at the end
    est = FIVE_PER_TASK
    assert plan_groups(queued=8, in_flight=3, capacity=2, estimate=est, tail=True) == [4]
    assert plan_groups(queued=6, in_flight=0, capacity=2, estimate=est, tail=True) == [3, 2, 1]
    assert plan_groups(queued=4, in_flight=0, capacity=2, estimate=0.001) == [2, 1, 1]
    assert plan_groups(queued=1, in_flight=3, capacity=2, estimate=est) == [1]


def test_the_tail_shrinks_groups_also_when_every_slot_is_free() -> None:
    # 40 calls of a tenth of the target on 2 CPUs, all queued at once and the caller done:
    # not four groups of 10 (nothing left to balance the finish with) but shrinking groups,
    # with calls held back for whichever worker is free first
    est = TARGET_TASK_SECONDS / 10
    assert plan_groups(queued=40, in_flight=0, capacity=2, estimate=est) == [10, 10, 10, 5]
    assert plan_groups(queued=5, in_flight=3, capacity=2, estimate=est) == [3]
    assert plan_groups(queued=3, in_flight=2, capacity=2, estimate=est) == [2, 1]
    # calls still coming in: full groups, the whole queue launched
    assert plan_groups(queued=40, in_flight=0, capacity=2, estimate=est, tail=False) == [10] * 4


def test_long_calls_go_one_per_task_and_are_not_held_back() -> None:
    sizes = plan_groups(queued=10, in_flight=4, capacity=2, estimate=TARGET_TASK_SECONDS * 2)
    assert sizes == [1] * 10


def test_fixed_calls_per_task() -> None:
    assert plan_groups(queued=40, in_flight=0, capacity=2, estimate=None, calls_per_task=3) == [
        3,
        3,
        3,
        3,
    ]
    assert plan_groups(queued=40, in_flight=2, capacity=2, estimate=9.0, calls_per_task=3) == [
        3,
        3,
    ]


def test_task_capacity_follows_the_task_resources() -> None:
    cluster = {"CPU": 8.0, "GPU": 2.0, "memory": 16e9, "disk": 3.0}
    assert task_capacity({}, cluster) == 8
    assert task_capacity({"num_cpus": 0.5}, cluster) == 16
    assert task_capacity({"num_cpus": 1, "num_gpus": 1}, cluster) == 2
    assert task_capacity({"num_cpus": 0, "resources": {"disk": 1}}, cluster) == 3
    assert task_capacity({"num_cpus": 0}, cluster) == 8  # asks for nothing: one per CPU
    assert task_capacity({"num_gpus": 1}, {"CPU": 4.0}) == 1  # never below one


def test_calls_per_task_is_an_executor_option_not_stored_with_results() -> None:
    adaptive = RayExecutor(num_cpus=1)
    fixed = adaptive.with_options(calls_per_task=4)
    assert fixed.calls_per_task == 4 and adaptive.calls_per_task is None
    assert fixed != adaptive and fixed == RayExecutor(num_cpus=1, calls_per_task=4)
    assert hash(fixed) == hash(RayExecutor(num_cpus=1, calls_per_task=4))
    assert fixed.get_executor_data() == adaptive.get_executor_data()
    assert "calls_per_task" not in fixed.task_options({"calls_per_task": 2})
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ExecutorError, match="calls_per_task"):
            RayExecutor(calls_per_task=bad)


# -- through a real local Ray ------------------------------------------------------------------


def _submit_all(
    executor: RayExecutor, xs: list[int], seconds: float, loggers: list[Any] | None = None
) -> list[Future[Any]]:
    return [
        executor.submit_callable(
            tagged, {"x": x, "seconds": seconds}, logger=None if loggers is None else loggers[i]
        )
        for i, x in enumerate(xs)
    ]


@pytest.mark.ray
def test_short_calls_share_tasks_yet_keep_their_own_outcome_and_capture(
    ray_session: ModuleType, new_logger: Callable[[], Any]
) -> None:
    executor = RayExecutor()
    for future in _submit_all(executor, [1, 2, 4, 6, 7, 9], 0.005):  # learns the duration
        future.result(timeout=60)
    xs = list(range(40))
    loggers = [new_logger() for _ in xs]
    futures = _submit_all(executor, xs, 0.005, loggers)
    unsendable = executor.submit_callable(tagged, {"x": 0, "extra": threading.Lock()})
    futures += _submit_all(executor, [40, 41], 0.005)  # queued behind it, maybe in its group

    tasks: Counter[str] = Counter()
    failed_in: list[str] = []
    for x, future, logger in zip(xs, futures[:40], loggers, strict=True):
        error = future.exception(timeout=60)  # the logger has the capture once it is done
        captured = logger.only
        if x == 11:  # failed its whole group; run again alone, it fails alone
            assert isinstance(error, ExecutorError) and isinstance(error, TypeError)
            assert "'tagged' returned a value that cannot be sent back" in str(error)
            assert "the row {'x': 11" in str(error)
            assert not captured.success
            continue
        assert captured.stdout == f"out {x}\n"
        if x % 5 == 3:
            assert type(error) is UserError
            assert str(error).startswith(f"bad {x} in task ")
            assert not captured.success and f"UserError: bad {x} in task" in captured.traceback
            failed_in.append(str(error).rsplit(" ", 1)[1])
        else:
            value, task_id, _ = future.result(timeout=60)
            assert value == x  # in submit order
            assert captured.success and captured.traceback is None
            tasks[task_id] += 1
    with pytest.raises(TypeError, match="pickle"):  # arguments Ray cannot send: that call only
        unsendable.result(timeout=60)
    assert [f.result(timeout=60)[0] for f in futures[40:]] == [40, 41]
    assert max(tasks.values()) > 1  # calls were grouped
    # a failing call shared its task with calls that succeeded
    assert any(task_id in tasks for task_id in failed_in)


@pytest.mark.ray
def test_no_grouping_with_calls_per_task_1_nor_for_long_calls(ray_session: ModuleType) -> None:
    xs = [0, 1, 2, 4, 5, 6, 7, 9]
    single = RayExecutor(calls_per_task=1)
    task_ids = [f.result(timeout=60)[1] for f in _submit_all(single, xs, 0.0)]
    assert len(set(task_ids)) == len(xs)

    # the executor first sees instant calls, then calls longer than a group's time budget:
    # a group cut short after its first call sends the rest again, one call per task
    adaptive = RayExecutor()
    for future in _submit_all(adaptive, xs, 0.0):
        future.result(timeout=60)
    long_calls = _submit_all(adaptive, [0, 1, 2, 4, 5, 6], TASK_BUDGET_SECONDS + 0.05)
    outcomes = [f.result(timeout=120) for f in long_calls]
    assert [x for x, _, _ in outcomes] == [0, 1, 2, 4, 5, 6]
    assert len({task_id for _, task_id, _ in outcomes}) == len(outcomes)


@pytest.mark.ray
def test_calls_held_back_can_be_cancelled_and_never_run(
    ray_session: ModuleType, new_logger: Callable[[], Any]
) -> None:
    executor = RayExecutor()  # duration unknown: 2 CPUs -> 4 tasks sent, the rest held back
    loggers = [new_logger() for _ in range(8)]
    futures = _submit_all(executor, [0, 1, 2, 4, 5, 6, 7, 9], 0.3, loggers)
    deadline = time.monotonic() + 10
    while sum(f.running() for f in futures) < 4 and time.monotonic() < deadline:
        time.sleep(0.005)
    cancelled = [f.cancel() for f in futures]
    assert cancelled == [False] * 4 + [True] * 4  # sent calls run on; held ones are dropped
    assert [f.result(timeout=60)[0] for f in futures[:4]] == [0, 1, 2, 4]
    assert all(f.cancelled() for f in futures[4:])
    time.sleep(0.5)  # a held call sent after all would have run and been captured by now
    assert [len(logger.records) for logger in loggers] == [1] * 4 + [0] * 4


# -- the dispatcher (its own dispatch thread; tasks recorded, not sent to Ray) -----------------


class _Launches:
    """Records the groups a dispatcher launches; lets a test wait for them."""

    def __init__(self) -> None:
        self.groups: list[list[QueuedCall]] = []
        self._cond = threading.Condition()

    def __call__(self, group: list[QueuedCall], budget: float | None) -> None:
        with self._cond:
            self.groups.append(group)
            self._cond.notify_all()

    def wait_for(self, count: int) -> list[int]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.groups) >= count, timeout=10)
            return [len(group) for group in self.groups]


def _queue(dispatcher: CallDispatcher, count: int) -> None:
    for i in range(count):
        dispatcher.submit(QueuedCall({"x": i}, None, Future()))


def _grouping_dispatcher() -> tuple[CallDispatcher, _Launches, threading.Event]:
    """2 task slots, calls known to fill a task with 5; planning waits while the gate is shut."""
    launches = _Launches()
    gate = threading.Event()
    gate.set()

    def capacity() -> int:
        assert gate.wait(10)
        return 2

    dispatcher = CallDispatcher(launches, capacity, None)
    _queue(dispatcher, 1)  # duration unknown: sent alone
    assert launches.wait_for(1) == [1]
    dispatcher.task_finished([FIVE_PER_TASK], ())
    return dispatcher, launches, gate


def test_a_drained_dispatcher_splits_what_is_left_for_a_balanced_finish() -> None:
    for drain, last_size in ((False, 4), (True, 2)):
        dispatcher, launches, gate = _grouping_dispatcher()
        gate.clear()
        _queue(dispatcher, 4 * 5 + 4)  # four full groups go out, 4 calls wait
        gate.set()
        assert launches.wait_for(5)[1:] == [5] * 4
        if drain:  # the caller has nothing more: the 4 waiting calls are all the work left
            dispatcher.drain()
        dispatcher.task_finished([FIVE_PER_TASK] * 5, ())  # a slot is free
        # still coming in: the free slot gets every waiting call; drained: half of them (2
        # CPUs), so the other slots can take the rest as they free up
        assert launches.wait_for(6)[5] == last_size
        if drain:
            _queue(dispatcher, 1)  # a new call ends the draining state: full groups again
            dispatcher.task_finished([FIVE_PER_TASK] * 5, ())
            assert launches.wait_for(7)[6] == 3  # the 2 still waiting and the new one


@pytest.mark.ray
def test_no_more_calls_is_only_a_hint(ray_session: ModuleType) -> None:
    executor = RayExecutor()
    executor.no_more_calls()  # nothing shipped yet: nothing to split
    for future in _submit_all(executor, [1, 2], 0.0):  # learns the duration
        future.result(timeout=60)
    futures = _submit_all(executor, [0, 1, 2, 4, 5, 6, 7, 9], 0.01)
    executor.no_more_calls()
    futures += _submit_all(executor, [10, 12], 0.01)  # more calls after the hint still run
    assert [f.result(timeout=60)[0] for f in futures] == [0, 1, 2, 4, 5, 6, 7, 9, 10, 12]


@pytest.mark.ray
def test_the_preferred_window_grows_to_hold_the_groups_learned(ray_session: ModuleType) -> None:
    cpus = int(ray_session.cluster_resources()["CPU"])
    base = max(MIN_IN_FLIGHT, IN_FLIGHT_PER_SLOT * cpus)
    fixed = RayExecutor(calls_per_task=8)
    assert fixed.preferred_concurrency == base  # nothing sent yet
    fixed.submit_callable(tagged, {"x": 1}).result(timeout=60)
    # three tasks of 8 per slot: two in flight, one more to split for the finish
    assert fixed.preferred_concurrency == min(LEARNED_WINDOW_FACTOR * base, max(base, 24 * cpus))
    adaptive = RayExecutor()
    for future in _submit_all(adaptive, [1, 2], 0.0):  # instant calls: huge groups, capped
        future.result(timeout=60)
    assert adaptive.preferred_concurrency == LEARNED_WINDOW_FACTOR * base
    single = RayExecutor(calls_per_task=1)  # no grouping: the window stays as it was
    single.submit_callable(tagged, {"x": 1}).result(timeout=60)
    assert single.preferred_concurrency == base


@pytest.mark.ray
def test_warm_up_sends_empty_tasks_once_per_session_and_options(ray_session: ModuleType) -> None:
    ray = ray_session
    session = ray_session_id(ray)
    task = remote_task(ray, remote_group).options(num_cpus=1)
    first, other = f"warm-{uuid.uuid4().hex}", f"warm-{uuid.uuid4().hex}"
    refs = warm_up(session, first, task, 3)
    assert ray.get(refs, timeout=60) == [[], [], []]  # an empty group task runs nothing
    assert warm_up(session, first, task, 3) == []  # these options are warm already
    assert len(warm_up(session, other, task, WARM_UP_TASKS + 5)) == WARM_UP_TASKS
