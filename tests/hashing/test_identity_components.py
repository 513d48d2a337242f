"""``function_identity_components``: the code hash cut into named, comparable parts."""

from __future__ import annotations

import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orcapod.hashing.function_identity import (
    function_code_hash,
    function_identity_components,
    value_summary,
)

Loader = Callable[..., types.ModuleType]


@pytest.fixture
def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Loader]:
    """Write modules into tmp_path and import ``main`` afresh."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.syspath_prepend(str(tmp_path))
    written: set[str] = set()

    def _load(**files: str) -> types.ModuleType:
        for name, text in files.items():
            (tmp_path / f"{name}.py").write_text(textwrap.dedent(text))
            written.add(name)
        for name in written:
            sys.modules.pop(name, None)
        return __import__("main")

    yield _load
    for name in written:
        sys.modules.pop(name, None)


HELPERS = """
SCALE = 2
def normalise(x):
    return x * SCALE
"""

MAIN = """
import math
import helpers
from helpers import normalise
LIMIT = 0.5
def f(x, k=3, *, mode="fast"):
    return normalise(x) + LIMIT + k + math.floor(x) + helpers.normalise(1)
"""


def _by_key(fn) -> dict[str, tuple[str, str]]:
    _, parts = function_identity_components(fn)
    return {c.key: (c.digest, c.summary) for c in parts}


def test_the_components_name_every_part_and_the_hash_is_the_code_hash(load: Loader) -> None:
    main = load(helpers=HELPERS, main=MAIN)
    code_hash, parts = function_identity_components(main.f)
    assert code_hash == function_code_hash(main.f)
    keys = {c.key: c.summary for c in parts}
    assert keys == {
        "code f": "",
        "default k": "3",
        "default mode": "'fast'",
        "global LIMIT": "0.5",
        "global helpers.SCALE": "2",
        "helper helpers.normalise": "",
        "library math": "math",
    }


@pytest.mark.parametrize(
    ("files", "changed"),
    [
        ({"main": MAIN.replace("LIMIT = 0.5", "LIMIT = 0.7")}, {"global LIMIT"}),
        ({"helpers": HELPERS.replace("SCALE = 2", "SCALE = 3")}, {"global helpers.SCALE"}),
        ({"helpers": HELPERS.replace("x * SCALE", "x * SCALE + 1")}, {"helper helpers.normalise"}),
        ({"main": MAIN.replace("k=3", "k=4")}, {"default k"}),
        ({"main": MAIN.replace("+ k +", "- k +")}, {"code f"}),
    ],
)
def test_each_semantic_edit_changes_exactly_its_component(
    load: Loader, files: dict[str, str], changed: set[str]
) -> None:
    before = _by_key(load(helpers=HELPERS, main=MAIN).f)
    after = _by_key(load(**{"helpers": HELPERS, "main": MAIN, **files}).f)
    differing = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert differing == changed


def test_cosmetic_edits_change_no_component(load: Loader) -> None:
    before = _by_key(load(helpers=HELPERS, main=MAIN).f)
    cosmetic = MAIN.replace(
        'def f(x, k=3, *, mode="fast"):',
        "def f(x, k=3, *, mode='fast'):\n    '''Doc.'''\n    # note",
    )
    after = _by_key(load(helpers=HELPERS, main=cosmetic).f)
    assert after == before


def test_value_summaries_are_short() -> None:
    assert value_summary(0.5) == "0.5"
    assert len(value_summary("x" * 500)) <= 60
    assert len(value_summary(list(range(1000)))) <= 60
