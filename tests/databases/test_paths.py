"""Record path validation and the filesystem-safe directory names of path segments."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orcapod.databases.paths import check_dirnames, join_path, segment_dirname, validate_path
from orcapod.errors import InputValidationError

valid_segment = st.text(min_size=1, max_size=12).filter(
    lambda s: (
        s not in (".", "..") and not any(c in "/\\" or ord(c) < 32 or ord(c) == 127 for c in s)
    )
)


def test_paths_are_normalised_to_tuples() -> None:
    assert validate_path(["a", "b"]) == ("a", "b")
    assert join_path(("root",), ("x",)) == ("root", "x")


def test_non_string_segments_are_rejected() -> None:
    with pytest.raises(InputValidationError, match="non-string segment 3"):
        validate_path(("a", 3))  # type: ignore[arg-type]


@given(valid_segment)
def test_dirnames_use_only_portable_characters(segment: str) -> None:
    name = segment_dirname(segment)
    assert re.fullmatch(r"[A-Za-z0-9._~-]+", name)
    assert not name.endswith(".")
    assert name != "_delta_log"


@given(valid_segment, valid_segment)
def test_distinct_segments_get_distinct_dirnames(one: str, two: str) -> None:
    if one != two:
        assert segment_dirname(one) != segment_dirname(two)


def test_dirnames_of_tricky_segments() -> None:
    assert segment_dirname("fn:v1") == "fn~3Av1"
    assert segment_dirname("~3A") == "~7E3A"
    assert segment_dirname("_delta_log") == "~5Fdelta_log"
    assert segment_dirname("plain-name_1.0") == "plain-name_1.0"
    assert segment_dirname("end.") == "end~2E"
    assert segment_dirname("é") == "~C3~A9"


def test_a_segment_too_long_for_a_file_name_once_escaped_is_refused() -> None:
    check_dirnames(("a" * 255,))
    validate_path(("é" * 100,))  # a valid path: only file names are limited
    with pytest.raises(InputValidationError, match=r"600 bytes once escaped .* 255-byte limit"):
        check_dirnames(("ok", "é" * 100))  # 200 UTF-8 bytes, each escaped as ~XX
