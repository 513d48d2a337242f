"""Every command answers ``--help``, and shell completion is offered."""

import pytest

COMMANDS = ["run", "status", "runs", "show", "logs", "graph", "demo"]


def test_top_level_help_lists_every_command_and_completion(tmp_path, orcapod_in):
    done = orcapod_in(tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    for command in COMMANDS:
        assert f"  {command} " in done.stdout, command
    assert "--install-completion" in done.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(tmp_path, orcapod_in, command):
    done = orcapod_in(tmp_path, command, "--help")
    assert done.returncode == 0, done.stderr
    assert f"Usage: orcapod {command}" in done.stdout


def test_version(tmp_path, orcapod_in):
    done = orcapod_in(tmp_path, "--version")
    assert done.returncode == 0 and done.stdout.startswith("orcapod ")
