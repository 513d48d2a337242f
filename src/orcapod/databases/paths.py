"""Record paths: validation, joining, and their filesystem-safe directory names.

A record path is a tuple of name segments, e.g. ``("results", "my_fn", "v1")``. Every backend
validates paths the same way so that a path accepted by one backend is accepted by all:

* the path is a non-empty tuple (or list) of strings;
* no segment is empty, ``.`` or ``..``, and none contains ``/``, ``\\`` or a control character.

Decisions:

* On disk (``DeltaTableDatabase``) each segment becomes one directory. Characters outside
  ``[A-Za-z0-9._-]`` are escaped as ``~`` plus the hex of their UTF-8 bytes (``~3A`` for
  ``:``), so directory names are legal on every filesystem, including Windows, and the mapping
  is injective (``~`` itself is escaped). ``~`` rather than ``%``: deltalake treats table
  locations as URLs and would percent-decode ``%3A`` back to ``:``. A trailing ``.`` is
  escaped too (Windows strips it), and the segment ``_delta_log`` becomes ``~5Fdelta_log`` so it
  can never collide with the log directory of the parent path's Delta table.
* A segment longer than ``MAX_DIRNAME_BYTES`` once escaped cannot be a directory:
  ``check_dirnames`` refuses it. A local ``DeltaTableDatabase`` calls it in ``at(...)`` (so
  ``Pipeline(name, store)`` fails at construction) and for every table path, before the first
  read, so the error comes before anything is computed. Other backends have no such limit.
* A store's location (``store_location``) must be a non-empty text or path: an empty one
  (an unset environment variable, typically) would make the current directory the store.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

from orcapod.errors import InputValidationError

__all__ = [
    "MAX_DIRNAME_BYTES",
    "check_dirnames",
    "RecordPath",
    "join_path",
    "segment_dirname",
    "store_location",
    "validate_note_name",
    "validate_path",
    "validate_subpath",
]

RecordPath = tuple[str, ...]

#: what a segment may not contain: separators and control characters
_BAD_CHAR = re.compile(r"[/\\\x00-\x1f\x7f]")
_SAFE_CHARS = frozenset(string.ascii_letters + string.digits + "._-")
_DELTA_LOG_DIR = "_delta_log"
#: the longest file name most file systems allow (ext4, APFS, NTFS: 255)
MAX_DIRNAME_BYTES = 255


def _check_segment(segment: object, path: object) -> str:
    if not isinstance(segment, str):
        raise InputValidationError(
            f"Record path {path!r} has a non-string segment {segment!r}; "
            "every segment must be a str."
        )
    if segment in ("", ".", ".."):
        raise InputValidationError(
            f"Record path {path!r} has an invalid segment {segment!r}; segments must be "
            "non-empty names other than '.' and '..'."
        )
    found = _BAD_CHAR.search(segment)
    if found is not None:
        raise InputValidationError(
            f"Record path {path!r} has segment {segment!r} containing {found.group(0)!r}; "
            "segments may not contain '/', '\\' or control characters - split the name "
            "into separate path segments instead."
        )
    return segment


def validate_path(path: Sequence[str]) -> RecordPath:
    """Return ``path`` as a validated tuple, or raise ``InputValidationError`` naming the
    offending segment."""
    if isinstance(path, str | bytes) or not isinstance(path, Sequence):
        raise InputValidationError(
            f"Record path must be a tuple of strings, got {path!r}; "
            f"write e.g. ({path!r},) for a single-segment path."
        )
    if len(path) == 0:
        raise InputValidationError("Record path is empty; give at least one segment.")
    return tuple(_check_segment(segment, path) for segment in path)


def validate_subpath(path: Sequence[str]) -> RecordPath:
    """Like :func:`validate_path` but an empty path (the root of a view) is allowed."""
    if isinstance(path, Sequence) and not isinstance(path, str | bytes) and len(path) == 0:
        return ()
    return validate_path(path)


def join_path(prefix: RecordPath, path: Sequence[str]) -> RecordPath:
    """Validate ``path`` and put ``prefix`` (already valid) in front of it."""
    return prefix + validate_path(path)


def check_dirnames(path: Sequence[str]) -> None:
    """Raise ``InputValidationError`` when a segment of ``path`` (valid) is too long for a file
    name once escaped (``MAX_DIRNAME_BYTES``)."""
    for segment in path:
        escaped = len(segment_dirname(segment).encode("utf-8"))
        if escaped > MAX_DIRNAME_BYTES:
            raise InputValidationError(
                f"Record path {tuple(path)!r} has segment {segment[:40]!r}... that is {escaped} "
                f"bytes once escaped for the file system, over the {MAX_DIRNAME_BYTES}-byte limit "
                "of a file name; use a shorter name or label (characters outside "
                "[A-Za-z0-9._-] take 3 bytes or more)."
            )


def segment_dirname(segment: str) -> str:
    """The filesystem-safe directory name of one (valid) path segment."""
    if segment == _DELTA_LOG_DIR:
        return "~5F" + segment[1:]
    encoded = []
    for index, ch in enumerate(segment):
        last = index == len(segment) - 1
        if ch in _SAFE_CHARS and not (last and ch == "."):
            encoded.append(ch)
        else:
            encoded.extend(f"~{byte:02X}" for byte in ch.encode("utf-8"))
    return "".join(encoded)


def validate_note_name(name: object) -> str:
    """``name`` if it can name a table's note (letters, digits, ``-`` and ``_``)."""
    if not (isinstance(name, str) and name.replace("-", "").replace("_", "").isalnum()):
        raise InputValidationError(
            f"note name {name!r} must be letters, digits, '-' and '_' only; pick such a name"
        )
    return name


def store_location(base_path: Any, storage_options: Any) -> str:
    """``base_path`` as text, once it and ``storage_options`` are checked (module docstring):
    ``InputValidationError`` for an empty or non-path location, or options that are not a
    mapping of str to str."""
    raw = os.fspath(base_path) if isinstance(base_path, (str, os.PathLike)) else None
    if not isinstance(raw, str) or not raw.strip():
        raise InputValidationError(
            f"base_path must be a non-empty str or os.PathLike, got {base_path!r} "
            f"({type(base_path).__name__}); pass the store's directory or an s3:// URI, e.g. "
            "DeltaTableDatabase('store'). An empty path (an unset environment variable?) "
            "would make the current directory the store."
        )
    if storage_options is not None and not (
        isinstance(storage_options, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in storage_options.items())
    ):
        raise InputValidationError(
            f"storage_options must be a dict of str to str, got {storage_options!r:.80} "
            f"({type(storage_options).__name__}); pass e.g. "
            "storage_options={'AWS_REGION': 'us-east-1'}."
        )
    return raw
