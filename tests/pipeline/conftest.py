"""Shared pipeline fixtures: two small sources, real databases, counted functions."""

from __future__ import annotations

import pytest

from orcapod.databases import (
    DeltaTableDatabase,
    InMemoryArrowDatabase,
    PostgreSQLDatabase,
    SQLiteDatabase,
)
from orcapod.functions import function_pod
from orcapod.sources import DictSource

SUBJECTS = [
    {"subject": "s1", "height": 1.75},
    {"subject": "s2", "height": 1.80},
    {"subject": "s3", "height": 1.60},
]
VISITS = [
    {"subject": "s1", "visit": 1, "weight": 70.0},
    {"subject": "s2", "visit": 1, "weight": 90.0},
    {"subject": "s3", "visit": 1, "weight": 50.0},
    {"subject": "s3", "visit": 2, "weight": 52.0},
]


def subjects_source(rows=SUBJECTS) -> DictSource:
    return DictSource(rows, tag_columns=["subject"], source_id="subjects")


def visits_source(rows=VISITS) -> DictSource:
    return DictSource(rows, tag_columns=["subject", "visit"], source_id="visits")


@pytest.fixture
def subjects() -> DictSource:
    return subjects_source()


@pytest.fixture
def make_subjects():
    return subjects_source


@pytest.fixture
def make_visits():
    return visits_source


@pytest.fixture
def visits() -> DictSource:
    return visits_source()


@pytest.fixture(params=["memory", "delta", "sqlite", "postgresql"])
def database(request, tmp_path):
    """Every storing backend: the pipelines run unchanged on each."""
    if request.param == "memory":
        return InMemoryArrowDatabase()
    if request.param == "sqlite":
        return SQLiteDatabase(tmp_path / "store.sqlite")
    if request.param == "postgresql":
        return PostgreSQLDatabase(request.getfixturevalue("postgresql_server").fresh_uri())
    return DeltaTableDatabase(tmp_path / "store")


class Counted:
    """Two pod functions that count their calls (each test gets fresh ones)."""

    def identity_structure(self) -> str:
        return "Counted"  # the counters are not part of the functions' identity

    def __init__(self) -> None:
        self.bmi_calls = 0
        self.classify_calls = 0

        @function_pod("bmi")
        def compute_bmi(weight: float, height: float) -> float:
            self.bmi_calls += 1
            return round(weight / height**2, 2)

        @function_pod("category")
        def classify(bmi: float) -> str:
            self.classify_calls += 1
            return "high" if bmi >= 25 else "normal"

        self.compute_bmi = compute_bmi
        self.classify = classify


@pytest.fixture
def fns() -> Counted:
    return Counted()
