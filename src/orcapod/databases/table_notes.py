"""Notes kept beside a table's data files: ``<table>/_orcapod_index/notes/<name>.json``.

A note is a short text a caller keeps with one state of a table (see ``table_token`` in the
database protocol), e.g. "every record here points at an existing result". The file holds the
token of the state it was written in, the text, and an xxh3 checksum of both; a damaged file,
or one whose checksum does not match, reads as no note. Notes are a cache: a note that cannot
be read or written (a read-only store, a file removed by hand) leaves the caller doing the
work the note would have saved, so neither is an error. Writes replace the file atomically
(``TableFiles.write``: a rename locally, one PUT on object storage), so concurrent writers
leave one whole note.
"""

from __future__ import annotations

import json

import xxhash

from orcapod.databases.column_index import INDEX_DIR
from orcapod.databases.table_files import TableFiles
from orcapod.errors import DatabaseError

__all__ = ["load_note", "save_note"]

_FORMAT = 1


def _rel(name: str) -> str:
    return f"{INDEX_DIR}/notes/{name}.json"


def _checksum(token: str, text: str) -> str:
    return xxhash.xxh3_64_hexdigest(f"{_FORMAT}\0{token}\0{text}".encode())


def save_note(files: TableFiles, name: str, token: str, text: str) -> bool:
    """Write the note; False when it could not be written (it is a cache, see above)."""
    body = {"format": _FORMAT, "token": token, "text": text, "checksum": _checksum(token, text)}
    try:
        files.write(_rel(name), json.dumps(body).encode())
    except OSError:
        return False
    return True


def load_note(files: TableFiles, name: str) -> tuple[str, str] | None:
    """``(token, text)`` of the note, or None when there is none or it is damaged."""
    try:
        data = files.read(_rel(name))
    except (OSError, DatabaseError):  # unreadable: no note (the caller does the work)
        return None
    if data is None:
        return None
    try:
        body = json.loads(data)
        token, text, checksum = body["token"], body["text"], body["checksum"]
    except (ValueError, TypeError, KeyError):
        return None
    if body.get("format") != _FORMAT or not isinstance(token, str) or not isinstance(text, str):
        return None
    return (token, text) if checksum == _checksum(token, text) else None
