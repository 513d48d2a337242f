import pytest

from orcapod.sources import DictSource

ROWS = [
    {"subject": "s1", "session": 1, "weight": 70.0, "height": 1.75},
    {"subject": "s2", "session": 1, "weight": 82.5, "height": 1.80},
    {"subject": "s2", "session": 2, "weight": 81.0, "height": 1.80},
]


@pytest.fixture
def rows():
    return [dict(r) for r in ROWS]


@pytest.fixture
def source(rows):
    return DictSource(rows, tag_columns=["subject", "session"], source_id="patients")
