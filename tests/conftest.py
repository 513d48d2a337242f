"""Fixtures shared across the whole suite: ONE real local Ray per test run, an executor that
logs its submissions and the end-of-calls hint (``no_more_calls``), and ``markdown_runner``,
which runs the python examples of a Markdown page (README.md, docs/)."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from orcapod.executors import LocalExecutor
from orcapod.executors.capture import PacketLoggerProtocol


@dataclass(frozen=True)
class HintedExecutor(LocalExecutor):
    """A thread-pool executor that logs submissions (``submit <x>``) and the ``no_more_calls``
    hint (``no more calls``) in ``log``."""

    log: list[str] = field(default_factory=list, compare=False)

    def submit_callable(
        self,
        fn: Callable[..., Any],
        kwargs: Mapping[str, Any],
        executor_options: Mapping[str, Any] | None = None,
        *,
        logger: PacketLoggerProtocol | None = None,
    ) -> Future[Any]:
        self.log.append(f"submit {kwargs['x']}")
        return super().submit_callable(fn, kwargs, executor_options, logger=logger)

    def no_more_calls(self) -> None:
        self.log.append("no more calls")


@pytest.fixture
def hinted_executor() -> Callable[[int], HintedExecutor]:
    """Makes a ``HintedExecutor`` with ``max_workers`` threads."""
    return lambda max_workers: HintedExecutor(max_workers=max_workers)


@pytest.fixture(scope="session")
def ray_session() -> Iterator[ModuleType]:
    """A real local Ray (2 CPUs, no dashboard), started once per test run and shut down after.

    ``RAY_AUTH_MODE=disabled`` keeps Ray from writing ``~/.ray/auth_token``; session files go to
    Ray's temp dir (/tmp/ray).
    """
    ray = pytest.importorskip("ray")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "disabled")
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
        try:
            yield ray
        finally:
            ray.shutdown()


def _shown_after(lines: list[str], end_lineno: int) -> list[str]:
    """The ``# `` comment lines right after a statement: what it shows (its value or output)."""
    shown = []
    for line in lines[end_lineno:]:
        if not line.startswith("# "):
            break
        shown.append(line[2:])
    return shown


def run_markdown_python(
    markdown: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    """Run the fenced ```python blocks of ``markdown`` in order in one fresh namespace.

    The statements run one by one from a real file in ``workdir`` holding the page's code (so
    ``inspect.getsource`` and function identity see them as a user's script would). An
    expression statement, a ``print(...)`` call or a ``for`` loop followed directly by
    ``# `` comment lines must show exactly that: the expression's ``repr``, or the printed
    lines. Returns the namespace.
    """
    blocks = re.findall(r"```python\n(.*?)```", markdown.read_text(), flags=re.S)
    assert blocks, f"{markdown.name} has no python blocks"
    script = workdir / f"{markdown.stem.replace('-', '_')}_example.py"
    script.write_text("".join(blocks))
    filename = str(script)
    namespace: dict[str, Any] = {"__name__": f"{script.stem}"}
    offset = 0
    for block in blocks:
        lines = block.splitlines()
        for node in ast.parse(block).body:
            code = ast.get_source_segment(block, node)
            shown = _shown_after(lines, node.end_lineno or node.lineno)
            ast.increment_lineno(node, offset)
            prints = (
                isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", None) == "print"
            )
            where = f"{markdown.name}: {code}"
            if (isinstance(node, ast.For) or prints) and shown:
                capsys.readouterr()
                exec(compile(ast.Module([node], []), filename, "exec"), namespace)
                assert capsys.readouterr().out.splitlines() == shown, where
            elif isinstance(node, ast.Expr) and shown:
                value = eval(compile(ast.Expression(node.value), filename, "eval"), namespace)
                assert repr(value) == "\n".join(shown), where
            else:
                exec(compile(ast.Module([node], []), filename, "exec"), namespace)
        offset += block.count("\n")
    return namespace


@pytest.fixture
def markdown_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[[Path], dict[str, Any]]:
    """Runs a Markdown page's python examples in ``tmp_path`` (see ``run_markdown_python``)."""
    monkeypatch.chdir(tmp_path)
    return lambda markdown: run_markdown_python(markdown, tmp_path, capsys)
