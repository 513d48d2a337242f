"""RayExecutor vs LocalExecutor on CPU-bound calls (2 CPUs).

N calls of ~50 ms of pure-Python CPU work (a busy loop with a fixed iteration count calibrated
on this machine by CPU time, so other load does not shorten the calls; not a sleep):
LocalExecutor runs them one after another; RayExecutor gets all N submitted at once through
``submit_callable`` (then ``no_more_calls()``, as a node says when its input is exhausted) on
a local Ray with ``num_cpus=2``. Ray's start-up and the first
(warm-up) calls are timed and reported separately, not in the comparison. A plain
2-process ``ProcessPoolExecutor`` run of the same calls is reported as a reference for what the
machine allows at that moment (on a shared machine, other load lowers both), and every trial
reports the calls' CPU share (CPU time / wall time; 1.0 = a whole CPU per running call), which
tells executor overhead apart from CPU taken by other processes. Every Ray run also reports a
``breakdown`` of its time over the worker processes that ran calls (see :func:`breakdown`):
``idle`` (no call running: dispatch delays, the start and the uneven finish), ``stolen`` (a call
running but waiting for a CPU) and ``cpu`` (the calls' own CPU time); on N processes they add up
to N times the run's seconds.

A trial runs the calls three ways: locally, through the executor, and with plain Ray, one
``ray.remote`` task per call on the same Ray (what the executor would get without grouping its
calls into tasks: a same-moment reference). ``--repeats`` trials (default 7) are interleaved,
and the order of the three runs rotates from one trial to the next, so none of them always
follows the same other run. ``ratio`` is the ratio of the medians (local over Ray);
``paired_ratio`` is the median of each trial's own ratio, whose two runs are seconds apart (on
a machine whose speed drifts from minute to minute, the steadier of the two), with
``paired_ratio_spread`` = lowest, quartiles, highest. The warm-up before the trials runs calls
of the measured size, so the executor has learned their duration as in a second run.

``ray_cpu_outside_calls`` (per trial, and its median): CPU seconds of this process and every
process it started (a local Ray's raylet, GCS, agents and workers), during the Ray run, minus
the calls' own CPU time (Linux ``/proc``; 10 ms ticks, so compare medians); the same for the
plain Ray run and for the local run (there: an idle Ray's own activity, and the driver's). It
is what the driver and Ray cost on top of the work; on 2 CPUs that the calls fill, each of
these seconds is taken from the calls. It moves much less than wall time with other load on
the machine (a run slowed by other load still holds more of Ray's periodic work, though).

Prints one JSON object per figure. ``--quick``: one trial of 8 calls of ~20 ms.

Where a warm run's time goes beyond the 1.0 s of work per CPU (measured on this 2-CPU machine,
Ray 2.60, while other jobs kept its 1-minute load at 4-9, 22 trials; quartiles): the workers sit
idle 0.10-0.20 s per run summed over both (plain Ray, one task per call: 0.20-0.53), and the
driver and Ray spend 0.10-0.15 s of CPU outside the calls (plain Ray 0.14-0.20); in the
quietest trial 0.086 and 0.053. The idle time is the start (a lease and a push per worker,
about 5 ms each), one changeover per task (Ray pushes a leased worker one task at a time and
has no setting to queue more on it; 1.6-2.4 ms median, the same whether a task's arguments
hold an ``ObjectRef``, bytes or nothing) and the finish (the last calls never end together
when one worker loses more CPU to other load). The CPU is mostly Ray's own: an idle local Ray
takes about 21 ms of CPU a second (log monitor 5-7 - it polls the log directory every 0.1 s -,
raylet 6-7, GCS 3, the driver's Ray threads 2-3, dashboard head, autoscaler monitor and agent
about 1 each; lengthening the raylet's resource-report, GC-check and idle-worker periods to
1 s changed nothing measurable), plus 7-8 ms a second per idle worker (Ray's signal check
every 10 ms, which stops while a task runs); each task adds about 2-4 ms across the driver
(``.remote()`` alone is 0.19 ms of its CPU), the raylet, the GCS and the worker. A simulation
of the dispatch (equal workers, 5 ms start, 2 ms changeover) ends a run at 1.019 s; with the
CPU above on the same 2 CPUs a quiet machine allows about 1.04-1.05 s, a ratio of 1.90-1.92,
and every 1 % of the machine taken by other processes costs about 0.02 of it. Checked and not
a cause of differences between set-ups: garbage collection (no collection beyond generation 0
during 15 runs) and which run a Ray run follows. Not explained: over 50 trials (load 1-9) the
calls' own CPU time in the executor's group tasks was a median 3.2 % above the local run's
(quartiles -1 % to +9 %), where plain Ray's was level with it (-4 % to +2.5 %); but 20
alternations of the two on one Ray, outside this benchmark, gave the group tasks' calls +0.2 %
of thread CPU time (quartiles -2.8 % to +1.1 %), so it is not the group task itself (the calls
are preempted about 17 times per 50 ms by other processes' wake-ups either way). If it is real
in these trials, it is worth about 0.06 of ratio. Other load moves single figures by far more
than all of the above, hence the interleaved, paired trials.

Which Ray. By default the trials run on the Ray a user's ``RayExecutor()`` starts itself when
none is running (the default user path, as in ``--cold``): a local Ray on all of the
machine's CPUs (2 here) with the executor's start-up settings (``ray_cluster.local_settings``:
workers preloaded, started with the raylet, at the caller's priority). ``--caller-starts-ray``
runs them on a Ray the benchmark starts itself with ``ray.init(num_cpus=2)`` instead, what a
user who calls ``ray.init`` before using the executor gets: Ray's own settings, under which
the workers run at nice 15. With Ray's settings both set-ups measured the same warm ratio
(1.79 / 1.80, 10 trials each, same session); the executor's priority setting is worth 0.05-0.1
of warm ratio (15 trials each, alternating: 1.84 against 1.79 with the executor's earlier
settings, 1.87 against 1.77 against the caller's Ray; seconds stolen from the calls 0.06
against 0.14-0.18): every process at normal priority - the driver, Ray's own services - takes
the CPU from nice-15 workers, not from the local run they are compared with.
(Until then the default was the caller's ``ray.init``; ``--cold``'s warm run, in a fresh
process whose local run came before Ray started, read about 0.1 higher than it: 1.89 against
1.79 with Ray's settings, same session. With the executor's settings both read 1.88-1.90.)

``--cold`` measures the first Ray run of a fresh process instead (``--repeats`` fresh processes,
one after another): each runs the N calls with LocalExecutor, then builds a ``RayExecutor()``
and runs them through it with nothing started before - the executor starts Ray itself, as in a
user's first run, so the workers are cold - then runs them again (warm). Reported per process:
the first run with Ray's start-up (``ray.init``, timed inside the executor's first call) and
without it (the first run's time minus ``ray.init``'s), and the warm run, each as a ratio to
the local time of the same process; also how long after ``ray.init`` the first call started
(``first_call_seconds``: the start-up cost left in the first run) and the calls' CPU share.

    .venv/bin/python benchmarks/ray_executor.py [--quick] [--cold] [--caller-starts-ray]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from orcapod.executors import LocalExecutor, RayExecutor

NUM_CPUS = 2
ORDER = ["local", "ray", "plain"]  # a trial's runs, rotated by one per trial


Result = tuple[int, float, float, float, int]


def cpu_work(iterations: int) -> Result:
    """Busy loop; returns (checksum, CPU seconds, wall seconds, start as ``time.time()``, the
    process id that ran it)."""
    started, wall, cpu = time.time(), time.perf_counter(), time.process_time()
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return total, time.process_time() - cpu, time.perf_counter() - wall, started, os.getpid()


def cpu_share(results: list[Result]) -> float:
    """CPU time / wall time of the calls: 1.0 = each call had a whole CPU to itself; lower
    means other processes on the machine took CPU from the work."""
    return round(sum(r[1] for r in results) / sum(r[2] for r in results), 3)


def calibrate(target_seconds: float) -> int:
    """Iterations of ``cpu_work`` that take about ``target_seconds`` of CPU here (best of 5;
    CPU time, not wall time, so other load on the machine does not shorten the calls)."""
    probe = 200_000
    best = min(cpu_work(probe)[1] for _ in range(5))
    return max(1, int(probe * target_seconds / best))


def _timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def spread(values: list[float]) -> list[float]:
    """Lowest, lower quartile, upper quartile and highest of ``values`` (rounded)."""
    if len(values) < 2:
        return [round(v, 3) for v in values]
    low, _, high = statistics.quantiles(values, n=4)
    return [round(min(values), 3), round(low, 3), round(high, 3), round(max(values), 3)]


def emit(**figure: Any) -> None:
    print(json.dumps({"benchmark": "ray_executor", **figure}), flush=True)


Results = list[Result]


def breakdown(results: Results, started: float, ended: float) -> dict[str, float]:
    """Where a concurrent run's time went, summed over the processes that ran calls (times as
    ``time.time()``): ``idle`` = seconds a process had no call running between the run's start
    and end (dispatch: before its first call, between calls, after its last), ``stolen`` =
    wall minus CPU seconds inside the calls (CPU taken by other processes: Ray's own, the
    driver, other load), ``cpu`` = CPU seconds of the calls. For N processes,
    ``N * run seconds = idle + stolen + cpu``."""
    idle = stolen = cpu = 0.0
    for pid in {r[4] for r in results}:
        calls = sorted((r for r in results if r[4] == pid), key=lambda r: r[3])
        busy = sum(r[2] for r in calls)
        idle += (ended - started) - busy
        stolen += busy - sum(r[1] for r in calls)
        cpu += sum(r[1] for r in calls)
    return {"idle": round(idle, 4), "stolen": round(stolen, 4), "cpu": round(cpu, 4)}


def tree_cpu_seconds(*, own_first: bool) -> float | None:
    """CPU seconds used so far by this process and every process it started (a local Ray's
    raylet, GCS, agents and workers are all descendants of the process that started it), the
    others read from ``/proc``; None where ``/proc`` is not available. Exited processes are not
    counted, so only differences over a run where no process of the tree exits mean anything.
    This process's own time is read before walking ``/proc`` (``own_first``, at the end of a
    run) or after it (at the start), so that the walk itself is never counted."""
    own = time.process_time() if own_first else 0.0
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:  # exited meanwhile
            continue
        parents.setdefault(int(fields[1]), []).append(pid)
        cpu[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    total, todo = 0.0, list(parents.get(os.getpid(), ()))
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo.extend(parents.get(pid, ()))
    return total + (own if own_first else time.process_time())


def outside_calls(before: float | None, after: float | None, results: Results) -> float | None:
    """CPU seconds the run cost beyond the calls' own CPU time: the driver (submission,
    dispatch, results) and Ray (raylet, GCS, agents, the workers' task handling). On a machine
    whose CPUs the calls fill, each of these seconds is taken from the calls."""
    if before is None or after is None:
        return None
    return round(after - before - sum(r[1] for r in results), 3)


def run_local(iterations: int, calls: int) -> tuple[float, Results]:
    local = LocalExecutor()
    start = time.perf_counter()
    results = [local.execute_callable(cpu_work, {"iterations": iterations}) for _ in range(calls)]
    return time.perf_counter() - start, results


def run_ray(executor: RayExecutor, iterations: int, calls: int) -> tuple[float, Results]:
    seconds, results, _ = timed_ray(executor, iterations, calls)
    return seconds, results


def timed_ray(
    executor: RayExecutor, iterations: int, calls: int
) -> tuple[float, Results, dict[str, float]]:
    """The run's seconds, results and :func:`breakdown`."""
    wall, start = time.time(), time.perf_counter()
    futures = [executor.submit_callable(cpu_work, {"iterations": iterations}) for _ in range(calls)]
    executor.no_more_calls()  # all submitted (as a node says): split the rest for the finish
    results = [f.result() for f in futures]
    seconds = time.perf_counter() - start
    return seconds, results, breakdown(results, wall, wall + seconds)


def run_plain_ray(
    remote: Any, iterations: int, calls: int
) -> tuple[float, Results, dict[str, float]]:
    import ray

    wall, start = time.time(), time.perf_counter()
    results = ray.get([remote.remote(iterations) for _ in range(calls)])
    seconds = time.perf_counter() - start
    return seconds, results, breakdown(results, wall, wall + seconds)


def cold_child(iterations: int, calls: int) -> None:
    """One fresh process: local run, first (cold) Ray run with Ray started by the executor,
    warm Ray run (see the module docstring)."""
    import ray

    local_seconds, local_results = run_local(iterations, calls)
    init_seconds = 0.0
    real_init = ray.init

    def timed_init(*args: Any, **kwargs: Any) -> Any:
        nonlocal init_seconds
        start = time.perf_counter()
        try:
            return real_init(*args, **kwargs)
        finally:
            init_seconds = time.perf_counter() - start

    ray.init = timed_init
    try:
        executor = RayExecutor()
        submitted = time.time()
        cold_seconds, cold_results, _ = timed_ray(executor, iterations, calls)
        warm_seconds, warm_results, warm_parts = timed_ray(executor, iterations, calls)
        # the cold run's breakdown from the end of ray.init
        cold_parts = breakdown(cold_results, submitted + init_seconds, submitted + cold_seconds)
        assert [r[0] for r in cold_results] == [r[0] for r in local_results]
        assert [r[0] for r in warm_results] == [r[0] for r in local_results]
        print(
            json.dumps(
                {
                    "local_seconds": local_seconds,
                    "ray_init_seconds": init_seconds,
                    "cold_with_init_seconds": cold_seconds,
                    "cold_seconds": cold_seconds - init_seconds,
                    "warm_seconds": warm_seconds,
                    # from the first submission (after ray.init) to the first call's start
                    "first_call_seconds": min(r[3] for r in cold_results)
                    - submitted
                    - init_seconds,
                    "cold_cpu_share": cpu_share(cold_results),
                    "warm_cpu_share": cpu_share(warm_results),
                    "cold_breakdown": cold_parts,
                    "warm_breakdown": warm_parts,
                }
            ),
            flush=True,
        )
    finally:
        ray.shutdown()


def measure_cold(iterations: int, calls: int, repeats: int) -> None:
    """``--cold``: ``repeats`` fresh processes (module docstring)."""
    cold, cold_init, warm = [], [], []
    for trial in range(repeats):
        args = [sys.executable, __file__, "--cold-child", str(iterations), "--calls", str(calls)]
        done = subprocess.run(args, check=True, capture_output=True, text=True)
        got = json.loads(done.stdout.splitlines()[-1])
        local = got["local_seconds"]
        cold.append(local / got["cold_seconds"])
        cold_init.append(local / got["cold_with_init_seconds"])
        warm.append(local / got["warm_seconds"])
        emit(
            figure="cold_trial",
            trial=trial,
            calls=calls,
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in got.items()},
            cold_ratio=round(cold[-1], 3),
            cold_with_init_ratio=round(cold_init[-1], 3),
            warm_ratio=round(warm[-1], 3),
            load_1min=os.getloadavg()[0],
        )
    emit(
        figure="cold_speedup",
        calls=calls,
        cpus=NUM_CPUS,
        repeats=repeats,
        cold_ratio=round(statistics.median(cold), 3),
        cold_with_init_ratio=round(statistics.median(cold_init), 3),
        warm_ratio=round(statistics.median(warm), 3),
        load_1min=os.getloadavg()[0],
        goal_cold=1.6,
        goal_warm=1.85,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke size")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved trials (median)")
    parser.add_argument("--cold", action="store_true", help="first runs of fresh processes")
    parser.add_argument(
        "--caller-starts-ray",
        action="store_true",
        help="warm trials on the benchmark's ray.init(num_cpus=2) (Ray's own settings), not on "
        "the Ray the executor starts (the default user path, as --cold)",
    )
    # the default since the user path became the default; accepted for old command lines
    parser.add_argument("--executor-starts-ray", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cold-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    calls, work_seconds = (8, 0.02) if args.quick else (40, 0.05)
    repeats = 1 if args.quick else args.repeats

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no ~/.ray/auth_token
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no cloud metadata probe
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # 127.0.0.1 stays loopback
    if args.cold_child is not None:
        cold_child(args.cold_child, args.calls)
        return
    import ray  # optional extra: imported only when the benchmark runs

    iterations = calibrate(work_seconds)
    if args.cold:
        emit(figure="calibration", iterations=iterations, seconds=_timed(cpu_work, iterations))
        measure_cold(iterations, calls, repeats)
        return
    emit(figure="calibration", iterations=iterations, seconds=_timed(cpu_work, iterations))

    # what this machine gives two processes right now (other load shows up here)
    with ProcessPoolExecutor(max_workers=NUM_CPUS) as pool:
        list(pool.map(cpu_work, [1] * NUM_CPUS))
        start = time.perf_counter()
        list(pool.map(cpu_work, [iterations] * calls))
        pool_seconds = time.perf_counter() - start
    emit(figure="process_pool_reference", calls=calls, seconds=round(pool_seconds, 4))

    start = time.perf_counter()
    executor = RayExecutor()
    if not args.caller_starts_ray:  # as in --cold: the executor's own start (all CPUs here)
        executor.submit_callable(cpu_work, {"iterations": 1}).result()
    else:
        ray.init(
            num_cpus=NUM_CPUS,
            include_dashboard=False,
            logging_level="ERROR",
            _node_ip_address="127.0.0.1",  # loopback only
        )
    emit(
        figure="ray_startup",
        seconds=round(time.perf_counter() - start, 4),
        started_by="benchmark" if args.caller_starts_ray else "executor",
        cpus=ray.cluster_resources().get("CPU"),
    )
    try:
        plain = ray.remote(cpu_work)
        start = time.perf_counter()
        # calls of the measured size, so the executor's duration estimate is that of the trials
        warm = [
            executor.submit_callable(cpu_work, {"iterations": iterations}) for _ in range(NUM_CPUS)
        ]
        for future in warm:
            future.result()
        ray.get([plain.remote(iterations) for _ in range(NUM_CPUS)])
        emit(figure="ray_warmup", calls=NUM_CPUS, seconds=round(time.perf_counter() - start, 4))

        local_times, ray_times, plain_times = [], [], []
        ratios, plain_ratios = [], []
        overheads: list[float] = []
        for trial in range(repeats):
            # the three runs of a trial in a rotating order, so that none of them always follows
            # the same other run (a burst of outside load, or what the previous run left behind)
            got: dict[str, Any] = {}
            for kind in ORDER[trial % len(ORDER) :] + ORDER[: trial % len(ORDER)]:
                before = tree_cpu_seconds(own_first=False)
                if kind == "local":
                    got[kind] = (*run_local(iterations, calls), {})
                elif kind == "ray":
                    got[kind] = timed_ray(executor, iterations, calls)
                else:
                    got[kind] = run_plain_ray(plain, iterations, calls)
                after = tree_cpu_seconds(own_first=True)
                got[kind + "_outside"] = outside_calls(before, after, got[kind][1])
            local_seconds, local_results, _ = got["local"]
            ray_seconds, ray_results, ray_parts = got["ray"]
            plain_seconds, plain_results, plain_parts = got["plain"]
            assert [r[0] for r in ray_results] == [r[0] for r in local_results]
            assert [r[0] for r in plain_results] == [r[0] for r in local_results]
            local_times.append(local_seconds)
            ray_times.append(ray_seconds)
            plain_times.append(plain_seconds)
            ratios.append(local_seconds / ray_seconds)
            plain_ratios.append(local_seconds / plain_seconds)
            if got["ray_outside"] is not None:
                overheads.append(got["ray_outside"])
            emit(
                figure="trial",
                trial=trial,
                order=[k for k in got if not k.endswith("_outside")],
                calls=calls,
                local_sequential_seconds=round(local_seconds, 4),
                ray_concurrent_seconds=round(ray_seconds, 4),
                ratio=round(ratios[-1], 3),
                plain_ray_task_per_call_seconds=round(plain_seconds, 4),
                plain_ray_ratio=round(plain_ratios[-1], 3),
                local_cpu_share=cpu_share(local_results),
                ray_cpu_share=cpu_share(ray_results),
                ray_breakdown=ray_parts,
                plain_ray_breakdown=plain_parts,
                ray_cpu_outside_calls=got["ray_outside"],
                plain_ray_cpu_outside_calls=got["plain_outside"],
                local_cpu_outside_calls=got["local_outside"],
                load_1min=os.getloadavg()[0],
            )
        local_median = statistics.median(local_times)
        ray_median = statistics.median(ray_times)
        plain_median = statistics.median(plain_times)
        emit(
            figure="speedup",
            calls=calls,
            work_ms=round(work_seconds * 1000),
            cpus=NUM_CPUS,
            repeats=repeats,
            local_sequential_seconds=round(local_median, 4),
            ray_concurrent_seconds=round(ray_median, 4),
            ratio=round(local_median / ray_median, 3),
            paired_ratio=round(statistics.median(ratios), 3),
            paired_ratio_spread=spread(ratios),
            plain_ray_task_per_call_seconds=round(plain_median, 4),
            plain_ray_ratio=round(local_median / plain_median, 3),
            plain_ray_paired_ratio=round(statistics.median(plain_ratios), 3),
            ray_cpu_outside_calls=round(statistics.median(overheads), 3) if overheads else None,
            load_1min=os.getloadavg()[0],
            goal=1.85,
        )
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
