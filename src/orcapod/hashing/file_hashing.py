"""Content identity of files and directories, with a per-process memo.

A ``pathlib.Path`` value (in an Arrow column or passed to ``hash_object``) is identified by what
the path *contains*, never by the path string:

* a regular file: ``xxh3_128`` over a domain tag and the file bytes, streamed in 1 MiB chunks.
  ``xxh3_128`` is used rather than SHA-256 because data files can be gigabytes and the digest is
  an identity for honest data (not a defence against crafted collisions); it runs at memory
  speed, so hashing is bound by disk I/O.
* a directory: ``xxh3_128`` over its sorted tree: for every entry below it (recursively, by
  relative POSIX name) a kind marker and, for files, the file digest. Empty directories count.
  Symbolic links are followed.

Digests are memoised per process, keyed by ``(absolute path, st_mtime_ns, st_size, st_ino)``, so
re-hashing an unchanged file costs one ``stat``. A file rewritten within the same mtime tick
with the same size and inode would be served from the memo; file systems with coarse
timestamps make that possible but it needs a same-size rewrite inside one tick.

A missing path raises ``HashingError`` naming the path. A path held in a row of a stream is
identified by ``path_row_digest`` instead: when it cannot be read (missing, unreadable), the
row is identified by a marker of the absolute path, so the stream can still be built and only
the rows whose function reads that path fail (and are retried on the next run; once the file
exists its content identifies the row, and it is computed).
``hash_file(path)`` gives the digest as a ``ContentHash`` (method ``file_v1``).
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import xxhash

from orcapod.errors import HashingError
from orcapod.types import ContentHash

__all__ = [
    "FILE_HASH_METHOD",
    "clear_file_digest_memo",
    "hash_file",
    "path_content_digest",
    "path_row_digest",
]

FILE_HASH_METHOD = "file_v1"

_CHUNK = 1 << 20
_FILE_TAG = b"orcapod.file.v1\0"
_DIR_TAG = b"orcapod.dir.v1\0"
_UNREADABLE_TAG = b"orcapod.unreadable-path.v1\0"

_memo: dict[tuple[str, int, int, int], bytes] = {}
_memo_lock = threading.Lock()


def clear_file_digest_memo() -> None:
    """Forget every memoised file digest (tests; or after editing files within one mtime tick)."""
    with _memo_lock:
        _memo.clear()


def hash_file(file_path: str | os.PathLike[str]) -> ContentHash:
    """Content hash of a file (or directory tree) at ``file_path``."""
    return ContentHash(FILE_HASH_METHOD, path_content_digest(file_path))


def path_content_digest(path: str | os.PathLike[str]) -> bytes:
    """16-byte digest of a file's bytes, or of a directory's tree of names and file contents."""
    absolute = os.path.abspath(os.fspath(path))
    try:
        st = os.stat(absolute)
    except FileNotFoundError as err:
        raise HashingError(
            f"cannot hash path {absolute!r}: it does not exist. A path value is identified by "
            "the content of the file it names; create the file or fix the path."
        ) from err
    except OSError as err:
        raise HashingError(f"cannot hash path {absolute!r}: stat failed ({err})") from err
    if stat.S_ISDIR(st.st_mode):
        return _directory_digest(Path(absolute))
    return _file_digest(absolute, st)


def path_row_digest(path: str | os.PathLike[str]) -> bytes:
    """``path_content_digest``, or for a path that cannot be read a marker digest of its
    absolute path (see the module docstring)."""
    try:
        return path_content_digest(path)
    except HashingError:  # identified as "this path, unreadable": the row's function reports it
        absolute = os.path.abspath(os.fspath(path))
        return xxhash.xxh3_128(_UNREADABLE_TAG + absolute.encode("utf-8", "surrogatepass")).digest()


def _file_digest(absolute: str, st: os.stat_result) -> bytes:
    key = (absolute, st.st_mtime_ns, st.st_size, st.st_ino)
    with _memo_lock:
        cached = _memo.get(key)
    if cached is not None:
        return cached
    hasher = xxhash.xxh3_128()
    hasher.update(_FILE_TAG)
    try:
        with open(absolute, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                hasher.update(chunk)
    except OSError as err:
        raise HashingError(
            f"cannot hash path {absolute!r}: reading it failed ({err}); check that the file "
            "exists and is readable"
        ) from err
    digest = hasher.digest()
    with _memo_lock:
        _memo[key] = digest
    return digest


def _directory_digest(root: Path) -> bytes:
    entries: list[tuple[str, bytes]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        base = Path(dirpath)
        for name in dirnames:
            entries.append(((base / name).relative_to(root).as_posix(), b"D"))
        for name in filenames:
            full = base / name
            entries.append((full.relative_to(root).as_posix(), b"F" + path_content_digest(full)))
    entries.sort()
    hasher = xxhash.xxh3_128()
    hasher.update(_DIR_TAG)
    for rel, payload in entries:
        encoded = rel.encode("utf-8", "surrogatepass")
        hasher.update(len(encoded).to_bytes(8, "little"))
        hasher.update(encoded)
        hasher.update(payload)
    return hasher.digest()
