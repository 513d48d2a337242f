"""The README's command-line section shows real output: its file is written to a fresh
folder, every ``$ orcapod ...`` line of its console blocks runs there (the installed
script), and the output must be what the README shows, up to what changes from run to run
(run ids, times, durations, and the frames of a traceback: only its first and last lines are
compared)."""

import re
import shlex
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"

_VARYING = [
    (re.compile(r"\b[0-9a-f]{8}\b"), "<run>"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), "<time>"),
    (re.compile(r"\b\d+\.\d+s\b"), "<seconds>"),
    (re.compile(r'File "[^"]*", line \d+'), 'File "<file>", line <n>'),
]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _normal(text: str) -> list[str]:
    lines: list[str] = []
    frames_deeper_than: int | None = None
    for raw in text.splitlines():
        if frames_deeper_than is not None and _indent(raw) > frames_deeper_than:
            continue
        frames_deeper_than = None
        if raw.strip() == "Traceback (most recent call last):":
            frames_deeper_than = _indent(raw)
        line = raw
        for pattern, replacement in _VARYING:
            line = pattern.sub(replacement, line)
        lines.append(line.rstrip())
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _section() -> str:
    text = README.read_text()
    start = text.index("## The command line")
    return text[start : text.index("\n## ", start + 1)]


def test_readme_commands_print_what_the_readme_shows(tmp_path, orcapod_in):
    section = _section()
    (tmp_path / "study.py").write_text(re.search(r"```python\n(.*?)```", section, re.S)[1])
    commands = 0
    for block in re.findall(r"```console\n(.*?)```", section, flags=re.S):
        for chunk in re.split(r"(?m)^(?=\$ )", block):
            if not chunk.strip():
                continue
            command, _, shown = chunk.partition("\n")
            args = shlex.split(command.removeprefix("$ "))
            assert args[0] == "orcapod", command
            done = orcapod_in(tmp_path, *args[1:], env={"COLUMNS": "100"})
            assert _normal(done.stdout + done.stderr) == _normal(shown), command
            commands += 1
    assert commands == 8
