"""A real store made by a real ``orcapod run`` of a pipeline file, shared by the CLI tests.

``study.py`` defines one pipeline (a source of three patients, ``compute_bmi`` that prints
and fails for a negative weight, ``classify`` that logs a warning); ``other.py`` a second
pipeline in the same store that also has a node labelled ``compute_bmi``. ``orcapod run``
runs ``study.py`` twice (two runs in the history) and ``other.py`` once.

``s3_env`` is an S3 API server for the test run (``tests/databases/s3_server.py`` in a
subprocess on loopback, stopped at the end of the run), given to ``orcapod`` the way a user
gives credentials: as ``AWS_*`` environment variables.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ORCAPOD = Path(sys.executable).parent / "orcapod"

STUDY = """
import logging

from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.sources import DictSource

log = logging.getLogger("study")


@function_pod("bmi")
def compute_bmi(weight: float, height: float) -> float:
    print(f"bmi of {weight} kg, {height} m")
    if weight <= 0:
        raise ValueError(f"weight must be positive, got {weight}")
    return round(weight / height**2, 2)


@function_pod("category")
def classify(bmi: float) -> str:
    log.warning("classifying %s", bmi)
    return "normal" if bmi < 25 else "overweight"


patients = DictSource(
    [
        {"patient": "ada", "weight": 61.0, "height": 1.68},
        {"patient": "bob", "weight": 91.0, "height": 1.82},
        {"patient": "cyd", "weight": -1.0, "height": 1.75},
    ],
    tag_columns=["patient"],
    label="patients",
)

study = Pipeline("study", DeltaTableDatabase("store"))
with study:
    classify.pod(compute_bmi.pod(patients))
"""

OTHER = """
from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.sources import DictSource


@function_pod("bmi")
def compute_bmi(weight: float, height: float) -> float:
    return round(weight / height**2, 1)


people = DictSource(
    [{"person": "eve", "weight": 55.0, "height": 1.60}], tag_columns=["person"], label="people"
)
other = Pipeline("other", DeltaTableDatabase("store"))
with other:
    compute_bmi.pod(people)
"""


@dataclass(frozen=True)
class Cli:
    """Runs ``orcapod ...`` in the project folder (``cwd``) as a real process."""

    cwd: Path

    @property
    def store(self) -> Path:
        return self.cwd / "store"

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, check: int | None = 0
    ) -> subprocess.CompletedProcess[str]:
        done = run_orcapod(self.cwd, *args, env=env)
        if check is not None:
            assert done.returncode == check, (done.returncode, done.stdout, done.stderr)
        return done


def run_orcapod(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "COLUMNS": "120",
        "RAY_AUTH_MODE": "disabled",
        "RAY_ADDRESS": "local",  # a new local Ray, never a cluster another process left
    }
    if "PYTHONPATH" in os.environ:  # the source under test, when it is not the installed one
        base["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run(
        [str(ORCAPOD), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**base, **(env or {})},
        check=False,
    )


@pytest.fixture(scope="session")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """The project folder with ``study.py``, ``other.py`` and their store, after two runs of
    ``study.py`` and one of ``other.py`` (see the module docstring)."""
    folder = tmp_path_factory.mktemp("project")
    (folder / "study.py").write_text(STUDY, encoding="utf-8")
    (folder / "other.py").write_text(OTHER, encoding="utf-8")
    made = Cli(folder)
    made("run", "study.py")
    made("run", "study.py")
    made("run", "other.py")
    return made


@pytest.fixture
def fresh_project(tmp_path: Path) -> Callable[[str], Cli]:
    """A new project folder holding one file ``study.py`` with the given text."""

    def make(source: str) -> Cli:
        (tmp_path / "study.py").write_text(source, encoding="utf-8")
        return Cli(tmp_path)

    return make


@pytest.fixture
def study_code() -> str:
    """The text of ``study.py`` (module docstring)."""
    return STUDY


@pytest.fixture
def orcapod_in() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``orcapod_in(folder, *args, env=None)``: run ``orcapod`` in ``folder``."""
    return run_orcapod


@dataclass(frozen=True)
class S3Env:
    """The test run's S3 API server (``s3_server``), as ``AWS_*`` environment variables."""

    server: Any

    @property
    def env(self) -> dict[str, str]:
        return dict(self.server.options)

    def fresh_bucket(self, name: str) -> str:
        """A new, empty bucket named ``name``."""
        self.server.client().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def s3_env(s3_server: Any) -> S3Env:
    """The test run's S3 API server (``tests/conftest.py``), as ``AWS_*`` variables (module
    docstring)."""
    return S3Env(s3_server)
