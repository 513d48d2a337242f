"""Per-call capture: routed by context, never mixing concurrent calls, never stealing others'."""

from __future__ import annotations

import asyncio
import logging
import pickle
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from orcapod.errors import ExecutorError
from orcapod.executors.capture import (
    CapturedOutput,
    OutputCapture,
    PacketLoggerProtocol,
    record_capture,
)

log = logging.getLogger("orcapod.tests.capture")


def test_captures_stdout_stderr_and_log_records(capsys: pytest.CaptureFixture[str]) -> None:
    with OutputCapture() as capture:
        print("to stdout")
        print("to stderr", file=sys.stderr)
        log.warning("a warning %d", 7)
    captured = capture.result()
    assert captured.stdout == "to stdout\n"
    assert captured.stderr == "to stderr\n"
    assert captured.python_logs == "WARNING:orcapod.tests.capture:a warning 7"
    assert captured.success
    assert captured.traceback is None
    assert captured.duration >= 0
    # routed, not teed: nothing reached the real streams
    real = capsys.readouterr()
    assert "to stdout" not in real.out
    assert "to stderr" not in real.err


def test_output_outside_a_capture_reaches_the_real_stream(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with OutputCapture():
        pass
    print("after the capture")
    assert capsys.readouterr().out == "after the capture\n"


def test_failure_capture_has_traceback_of_the_error() -> None:
    with OutputCapture() as capture:
        try:
            raise KeyError("missing-key")
        except KeyError as err:
            error = err
    captured = capture.result(error)
    assert not captured.success
    assert captured.traceback is not None
    assert "KeyError: 'missing-key'" in captured.traceback
    assert "raise KeyError" in captured.traceback


def test_concurrent_threads_do_not_mix_outputs() -> None:
    n = 8
    barrier = threading.Barrier(n)
    results: dict[int, CapturedOutput] = {}

    def work(i: int) -> None:
        with OutputCapture() as capture:
            barrier.wait()
            for line in range(50):
                print(f"thread-{i} line-{line}")
                log.warning("thread-%d log-%d", i, line)
                time.sleep(0)  # let the other threads interleave
        results[i] = capture.result()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, captured in results.items():
        lines = captured.stdout.splitlines()
        assert lines == [f"thread-{i} line-{k}" for k in range(50)]
        logs = captured.python_logs.splitlines()
        assert logs == [f"WARNING:orcapod.tests.capture:thread-{i} log-{k}" for k in range(50)]


def test_uncaptured_thread_is_not_captured_by_a_concurrent_capture(
    capsys: pytest.CaptureFixture[str],
) -> None:
    inside = threading.Event()
    done = threading.Event()

    def bystander() -> None:
        inside.wait()
        print("bystander output")
        done.set()

    thread = threading.Thread(target=bystander)
    thread.start()
    with OutputCapture() as capture:
        print("captured output")
        inside.set()
        done.wait(5)
    thread.join()
    assert capture.result().stdout == "captured output\n"
    assert "bystander output" in capsys.readouterr().out


def test_concurrent_asyncio_tasks_do_not_mix_outputs() -> None:
    async def call(i: int) -> CapturedOutput:
        with OutputCapture() as capture:
            for line in range(5):
                print(f"task-{i} line-{line}")
                await asyncio.sleep(0.001)
        return capture.result()

    async def main() -> list[CapturedOutput]:
        return await asyncio.gather(*(call(i) for i in range(4)))

    for i, captured in enumerate(asyncio.run(main())):
        assert captured.stdout.splitlines() == [f"task-{i} line-{k}" for k in range(5)]


def test_to_thread_inherits_the_capture() -> None:
    async def main() -> CapturedOutput:
        with OutputCapture() as capture:
            await asyncio.to_thread(print, "from a worker thread")
        return capture.result()

    assert asyncio.run(main()).stdout == "from a worker thread\n"


def test_captured_output_pickles() -> None:
    captured = CapturedOutput("o", "e", "WARNING:x:y", "tb", False, 0.5)
    assert pickle.loads(pickle.dumps(captured)) == captured


class _BrokenLogger:
    def record(self, captured: CapturedOutput) -> None:
        raise OSError("disk full")


def test_a_failing_logger_is_reported_with_its_cause() -> None:
    logger: Any = _BrokenLogger()
    assert isinstance(logger, PacketLoggerProtocol)
    with pytest.raises(ExecutorError, match="disk full") as info:
        record_capture(logger, CapturedOutput())
    assert isinstance(info.value.__cause__, OSError)


@pytest.mark.slow
def test_installing_capture_keeps_default_logging_and_streams_intact() -> None:
    # a fresh interpreter with no logging configured: Python prints warnings via lastResort.
    script = (
        "import logging, sys\n"
        "from orcapod.executors.capture import OutputCapture\n"
        "with OutputCapture():\n"
        "    print('hidden')\n"
        "logging.getLogger('lib').warning('still visible')\n"
        "logging.getLogger('lib').info('not shown at default level')\n"
        "print('plain print')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout == "plain print\n"
    assert proc.stderr == "still visible\n"


def test_capture_works_when_the_process_has_no_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", None)  # as under pythonw or some daemons
    with OutputCapture() as capture:
        print("captured anyway")
    print("dropped, as print does with no stdout")
    assert capture.result().stdout == "captured anyway\n"
