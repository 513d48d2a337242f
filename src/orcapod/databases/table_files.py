"""``TableFiles``: the files of one Delta table's directory, on local disk or object storage.

The Delta log and data files are read and written by deltalake. Beside them the database keeps
lookup-index sidecars (``column_index``) and reads single columns of data files (``id_index``,
``column_index``); ``TableFiles`` does that through a ``pyarrow.fs`` filesystem, so the same
code serves a local table and one in an S3 bucket.

Object storage: ``s3://`` URIs are served by pyarrow's own S3 client and by obstore, both
configured from the ``storage_options`` given to deltalake (``object_stores``). Other schemes
(``gs://``, ``az://``, ...) get no ``TableFiles`` (``for_table`` returns None): their tables
work, without lookup sidecars and with id indexes rebuilt from a query.

Reads of several files on object storage run concurrently (``TableFiles.map``, up to
``READ_THREADS`` at a time: pyarrow releases the GIL while it waits for the network and while
it decodes), so a read of several sidecars costs about one request's latency, not one per
file. Locally they run one after the other (page-cache reads).

A data file on object storage whose size the table's snapshot gives (``know_sizes``) is opened
as parquet over ranged GETs of that size (``_SizedObject``, through obstore), so its footer is
fetched by one ranged GET and its column chunks by one more (pyarrow's pre-buffering joins
them); ``open_input_file`` would first ask the object's size with a HEAD (one request more per
file read, about a tenth of a 4-process shared run's requests). Decision: not through a
``pyarrow.dataset`` fragment told the size, which saves the HEAD as well, because importing
``pyarrow.dataset`` imports pandas (~0.3 s of CPU in every process reading a data file).

Everything else on S3 (reads of sidecars and notes, whose sizes nothing records, writes,
listings, existence checks, the store's bucket check) goes through ``obstore``
(``object_store_of``: the client deltalake's own storage layer is built on, configured from the
same options): its GET of a whole object or a range is one request where pyarrow's client makes
two (a HEAD first), 3 of the ~62 requests of a small incremental run, and its client is set up
in ~10 ms where pyarrow's takes ~30 ms (the AWS SDK's start), which a run that reads no data
file then never pays: pyarrow's client is made on first use (``filesystem_of`` gives what makes
it). Its "no such file" is believed; any other failure (credentials only pyarrow's client looks
for, say) hands the table's files to pyarrow's client from then on. Decision: options that
obstore accepts but pyarrow rejects are reported when pyarrow's client is first made, not when
the store is (both read the same settings; obstore rejecting them makes pyarrow's client at
once, for the bucket check).

Writes replace a whole file atomically: locally through a temporary file and a rename, on
object storage by one PUT (an object is visible only once complete).
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import functools
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from orcapod._lazy import lazy_module
from orcapod.errors import DatabaseError

if TYPE_CHECKING:
    import obstore
    import obstore.exceptions as obstore_errors
    import obstore.store as obstores
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq
else:
    obstore = lazy_module("obstore")
    obstore_errors = lazy_module("obstore.exceptions")
    obstores = lazy_module("obstore.store")
    pafs = lazy_module("pyarrow.fs")
    pq = lazy_module("pyarrow.parquet")

__all__ = ["READ_THREADS", "TableFiles"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: parsed parquet footers kept per table (``read_rows``, ``read_groups``)
_FOOTERS = 512
#: concurrent reads of object storage (``TableFiles.map``)
READ_THREADS = 8
_T = TypeVar("_T")
_R = TypeVar("_R")


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(READ_THREADS, thread_name_prefix="orcapod-read")


class TableFiles:
    """Files in and under one table's directory (module docstring). ``rel`` paths are
    relative to the table's directory, with ``/`` separators."""

    def __init__(
        self,
        filesystem: pafs.FileSystem | Callable[[], pafs.FileSystem],
        root: str,
        uri: str,
        local: bool,
        objects: obstores.S3Store | None = None,
    ) -> None:
        #: makes the filesystem when first needed (on S3 it costs ~30 ms to set up)
        self._make_fs = filesystem if callable(filesystem) else lambda: filesystem
        #: obstore's client of the table's bucket (None: reads go through ``filesystem``)
        self._objects = None if local else objects
        self._root = root
        self._uri = uri.rstrip("/")
        self._local = local
        self._footers: dict[str, pq.FileMetaData] = {}
        #: data file name -> its size (None: unknown), from the table's snapshot
        self._size_of: Callable[[str], int | None] = lambda name: None

    @functools.cached_property
    def _fs(self) -> pafs.FileSystem:
        return self._make_fs()

    @classmethod
    def for_table(
        cls,
        uri: str,
        filesystem: pafs.FileSystem | Callable[[], pafs.FileSystem] | None,
        objects: obstores.S3Store | None = None,
    ) -> TableFiles | None:
        """Access to the table at ``uri`` through the store's ``filesystem`` (or what makes
        it: ``filesystem_of``) and, on S3, its ``objects`` client (``object_store_of``); None
        when the store has no filesystem."""
        if filesystem is None:
            return None
        if "://" not in uri:
            root = os.path.realpath(uri)
            return cls(filesystem, root, root, local=True)
        return cls(filesystem, uri.split("://", 1)[1], uri, local=False, objects=objects)

    def name_of(self, file: str) -> str | None:
        """The name of data file ``file`` (as deltalake lists it) when it lies directly in the
        table's directory; None otherwise."""
        if self._local:
            if os.path.dirname(file) == self._root:  # (as deltalake lists a resolved root)
                return os.path.basename(file)
            path = os.path.realpath(file)
            return os.path.basename(path) if os.path.dirname(path) == self._root else None
        rest = file.removeprefix(self._uri + "/")
        return rest if rest != file and rest and "/" not in rest else None

    def read(self, rel: str) -> bytes | None:
        """The content of ``rel`` (None: there is no such file)."""
        return self._read(rel, lambda handle: handle.read())  # (one GET of the whole file)

    def read_range(self, rel: str, offset: int, length: int) -> bytes | None:
        """``length`` bytes of ``rel`` from ``offset`` (fewer at its end; None: no such
        file). On object storage one ranged GET."""
        return self._read(rel, lambda handle: handle.read_at(length, offset), (offset, length))

    def _get(self, path: str, span: tuple[int, int] | None) -> tuple[bool, bytes | None]:
        """(True, the object at ``path`` or its range ``span``; None: no such object) through
        obstore, or (False, None) once obstore failed (``_ask``)."""
        if span is None:
            return self._ask(lambda store, key: bytes(obstore.get(store, key).bytes()), path)
        start, length = span
        return self._ask(
            lambda store, key: bytes(obstore.get_range(store, key, start=start, length=length)),
            path,
        )

    def _ask(self, request: Callable[[Any, str], _R], path: str) -> tuple[bool, _R | None]:
        """(True, ``request(store, key)`` of the object at ``path`` (``_path``); None: no such
        object) through obstore, or (False, None) once obstore failed otherwise: pyarrow's
        client serves the table from then on."""
        store = self._objects
        assert store is not None
        try:
            return True, request(store, path.split("/", 1)[1])
        except (FileNotFoundError, obstore_errors.NotFoundError):
            return True, None
        except (obstore_errors.BaseError, OSError, ValueError):
            self._objects = None
            return False, None

    def _read(
        self, rel: str, take: Callable[[Any], bytes], span: tuple[int, int] | None = None
    ) -> bytes | None:
        """``take(handle)`` of ``rel`` opened for reading (None: there is no such file); on S3
        the whole object, or the range ``span`` = (offset, length), by one GET when obstore
        can (module docstring)."""
        path = self._path(rel)
        if self._objects is not None:
            answered, data = self._get(path, span)
            if answered:
                return data
        try:
            with self._fs.open_input_file(path) as handle:
                return take(handle)
        except FileNotFoundError:
            return None
        except (OSError, pa.ArrowException) as err:
            if not self._local and _not_found(err):
                return None
            raise DatabaseError(
                f"Cannot read {self._display(rel)}: {err}. Check that the table's location is "
                "readable, or delete the file to have it rebuilt."
            ) from err

    def map(self, read: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """``[read(item) for item in items]``, concurrently on object storage (module
        docstring); the first error is raised."""
        if self._local or len(items) < 2:
            return [read(item) for item in items]
        return list(_pool().map(read, items))

    @property
    def uri(self) -> str:
        """The table's location, as given (without a trailing ``/``)."""
        return self._uri

    @property
    def remote(self) -> bool:
        """Is the table on object storage?"""
        return not self._local

    def exists(self, rel: str) -> bool:
        """Does the file ``rel`` exist? (One HEAD request on object storage.)"""
        if self._local:
            return os.path.isfile(self._path(rel))
        if self._objects is not None:
            answered, found = self._ask(obstore.head, self._path(rel))
            if answered:
                return found is not None
        try:
            self._fs.open_input_stream(self._path(rel)).close()
        except FileNotFoundError:
            return False
        except (OSError, pa.ArrowException) as err:
            if _not_found(err):
                return False
            raise DatabaseError(
                f"Cannot read {self._display(rel)}: {err}. Check that the table's location is "
                "readable."
            ) from err
        return True

    def write(self, rel: str, data: bytes) -> None:
        """Replace ``rel`` with ``data`` atomically; OSError when it cannot be written."""
        path = self._path(rel)
        if self._objects is not None:
            answered, done = self._ask(lambda store, key: obstore.put(store, key, data), path)
            if answered and done is None:
                raise FileNotFoundError(f"cannot write {self._display(rel)}: no such bucket")
            if answered:
                return
        try:
            if not self._local:
                with self._fs.open_output_stream(path) as out:
                    out.write(data)
                return
            self._fs.create_dir(os.path.dirname(path), recursive=True)
            temporary = f"{path}.{uuid.uuid4().hex}.tmp"
            try:
                with self._fs.open_output_stream(temporary) as out:
                    out.write(data)
                self._fs.move(temporary, path)
            finally:
                with contextlib.suppress(OSError):
                    self._fs.delete_file(temporary)
        except pa.ArrowException as err:
            raise OSError(str(err)) from err

    def list_dirs(self, rel: str) -> list[str]:
        """The names of the directories in ``rel`` (empty when it does not exist)."""
        listed = self._listed(rel)
        if listed is not None:
            return [p.rsplit("/", 1)[-1] for p in listed["common_prefixes"]]
        return [i.base_name for i in self._infos(rel) if i.type == pafs.FileType.Directory]

    def list_files(self, rel: str) -> list[str]:
        """The names of the files in ``rel`` (empty when it does not exist)."""
        if self._local:  # (no stat per file, unlike a FileSelector)
            try:
                with os.scandir(self._path(rel)) as entries:
                    return [e.name for e in entries if e.is_file()]
            except FileNotFoundError:
                return []
            except OSError as err:
                raise self._cannot_list(rel, err) from err
        return list(self.list_stamps(rel))

    def list_stamps(self, rel: str) -> dict[str, tuple[int, int]]:
        """The files in ``rel`` by name, each with its size and modification time (ns)
        (empty when it does not exist; on object storage one listing)."""
        listed = self._listed(rel)
        if listed is not None:
            return {
                o["path"].rsplit("/", 1)[-1]: (int(o["size"]), _ns(o["last_modified"]))
                for o in listed["objects"]
            }
        return {
            i.base_name: (int(i.size or 0), int(i.mtime_ns or 0))
            for i in self._infos(rel)
            if i.type == pafs.FileType.File
        }

    def _listed(self, rel: str) -> Any:
        """On object storage, obstore's listing of ``rel`` (its objects and common prefixes,
        one LIST per 1,000 entries); None when obstore does not serve the table (any more)."""
        if self._objects is None:
            return None
        prefix = self._path(rel) + "/"
        answered, listed = self._ask(
            lambda store, key: obstore.list_with_delimiter(store, prefix=key), prefix
        )
        if not answered:
            return None
        return listed if listed is not None else {"common_prefixes": [], "objects": []}

    def _infos(self, rel: str) -> list[pafs.FileInfo]:
        """What is in ``rel`` (empty when it does not exist; on object storage one listing
        per 1,000 entries)."""
        try:
            selector = pafs.FileSelector(self._path(rel), allow_not_found=True)
            infos: list[pafs.FileInfo] = self._fs.get_file_info(selector)
        except FileNotFoundError:
            return []
        except (OSError, pa.ArrowException) as err:
            raise self._cannot_list(rel, err) from err
        return infos

    def _cannot_list(self, rel: str, err: Exception) -> DatabaseError:
        return DatabaseError(
            f"Cannot list {self._display(rel)}: {err}. Check that the table's location is readable."
        )

    def know_sizes(self, size_of: Callable[[str], int | None]) -> None:
        """Where the sizes of the table's data files come from: ``size_of(name)`` (None: not
        known); on object storage a data file of known size is read without a HEAD."""
        self._size_of = size_of

    def _sized(self, file: str) -> pq.ParquetFile | None:
        """On object storage served by obstore, ``file`` opened as parquet at its known size
        (module docstring; its footer parsed once per process, as in ``_parquet``); None:
        local, no obstore, or its size is unknown."""
        if self._local or self._objects is None:
            return None
        name = self.name_of(file)
        size = None if name is None else self._size_of(name)
        if size is None:
            return None
        path = file.removeprefix("s3://")
        sized = _SizedObject(functools.partial(self._object_range, path), size)
        return self._parquet(file, sized, pre_buffer=True)

    def _object_range(self, path: str, offset: int, length: int) -> bytes:
        """``length`` bytes of the object at ``path`` from ``offset``: one ranged GET."""
        answered, data = self._get(path, (offset, length))
        if not answered:  # obstore failed: pyarrow's client serves the table from now on
            with self._fs.open_input_file(path) as handle:
                return bytes(handle.read_at(length, offset))
        if data is None:
            raise FileNotFoundError(f"{self._uri}: no object {path}")
        return data

    def read_column(self, file: str, column: str) -> pa.ChunkedArray | None:
        """``column`` of the parquet data file ``file`` (as deltalake lists it); None when the
        file has no such column (it was written before the column existed)."""
        table = self.read_columns(file, [column])
        return table.column(column) if table.num_columns else None

    def read_columns(self, file: str, columns: Sequence[str]) -> pa.Table:
        """Those of ``columns`` that the parquet data file ``file`` has (as deltalake lists
        it)."""
        path = file if self._local else file.removeprefix("s3://")
        try:
            sized = self._sized(file)
            if sized is not None:
                present = [c for c in columns if sized.schema_arrow.get_field_index(c) >= 0]
                return sized.read(columns=present, use_threads=False)
            with self._fs.open_input_file(path) as handle:
                parquet = pq.ParquetFile(handle)
                present = [c for c in columns if parquet.schema_arrow.get_field_index(c) >= 0]
                return parquet.read(columns=present)
        except (OSError, pa.ArrowException) as err:
            raise DatabaseError(
                f"Cannot read the data file {file}: {err}. Check that the table's files are "
                "readable."
            ) from err

    def read_rows(self, file: str, rows: Sequence[int]) -> pa.Table:
        """The rows at positions ``rows`` (ascending) of the parquet data file ``file`` (as
        deltalake lists it), decoding only the row groups that hold them."""
        try:
            with self._row_groups(file) as (metadata, schema, read):
                starts = [0]
                for group in range(metadata.num_row_groups):
                    starts.append(starts[-1] + metadata.row_group(group).num_rows)
                parts = []
                by_group: dict[int, list[int]] = {}
                for row in rows:
                    if not 0 <= row < starts[-1]:
                        raise DatabaseError(
                            f"The data file {file} has {starts[-1]} rows, not a row {row}; "
                            "delete the table's lookup index to have it rebuilt."
                        )
                    group = bisect.bisect_right(starts, row) - 1
                    by_group.setdefault(group, []).append(row - starts[group])
                for group, offsets in by_group.items():
                    parts.append(read([group]).take(offsets))
        except (OSError, pa.ArrowException) as err:
            raise DatabaseError(
                f"Cannot read the data file {file}: {err}. Check that the table's files are "
                "readable."
            ) from err
        if not parts:
            return schema.empty_table()
        return pa.concat_tables(parts)

    def read_groups(
        self, file: str, pick: Callable[[pq.FileMetaData], Sequence[int]]
    ) -> pa.Table | None:
        """The row groups of the parquet data file ``file`` (as deltalake lists it) that
        ``pick`` chooses from its footer, every column (None: it chose none)."""
        try:
            with self._row_groups(file) as (metadata, _, read):
                groups = list(pick(metadata))
                return read(groups) if groups else None
        except (OSError, pa.ArrowException) as err:
            raise DatabaseError(
                f"Cannot read the data file {file}: {err}. Check that the table's files are "
                "readable."
            ) from err

    @contextlib.contextmanager
    def _row_groups(
        self, file: str
    ) -> Iterator[tuple[pq.FileMetaData, pa.Schema, Callable[[Sequence[int]], pa.Table]]]:
        """``file``'s footer, schema and a reader of chosen row groups (every column), while
        the file is open (on object storage without a HEAD when its size is known)."""
        sized = self._sized(file)
        if sized is not None:
            known = sized

            def read_sized(groups: Sequence[int]) -> pa.Table:
                return known.read_row_groups(list(groups), use_threads=False)

            yield known.metadata, known.schema_arrow, read_sized
            return
        path = file if self._local else file.removeprefix("s3://")
        with self._fs.open_input_file(path) as handle:
            parquet = self._parquet(file, handle)

            def read_file(groups: Sequence[int]) -> pa.Table:
                return parquet.read_row_groups(list(groups), use_threads=False)

            yield parquet.metadata, parquet.schema_arrow, read_file

    def _parquet(self, file: str, handle: Any, pre_buffer: bool = False) -> pq.ParquetFile:
        """``file`` opened as parquet, its footer parsed once per process (data files are
        immutable; at most ``_FOOTERS`` footers are kept per table)."""
        footer = self._footers.get(file)
        parquet = pq.ParquetFile(handle, metadata=footer, pre_buffer=pre_buffer)
        if footer is None:
            if len(self._footers) >= _FOOTERS:
                self._footers.clear()
            self._footers[file] = parquet.metadata
        return parquet

    def _path(self, rel: str) -> str:
        return f"{self._root}/{rel}" if rel else self._root

    def _display(self, rel: str) -> str:
        return f"{self._uri}/{rel}" if rel else self._uri


def _ns(when: dt.datetime) -> int:
    """``when`` in nanoseconds since the epoch, exactly (as pyarrow's ``mtime_ns``)."""
    return (when - _EPOCH) // dt.timedelta(microseconds=1) * 1000


def _not_found(err: Exception) -> bool:
    text = str(err)
    return "NoSuchKey" in text or "does not exist" in text or "404" in text


class _SizedObject:
    """A read-only file of known ``size`` whose bytes come from ``read_at(offset, length)``
    (one ranged GET each): what pyarrow reads a parquet file through, asking no HEAD."""

    def __init__(self, read_at: Callable[[int, int], bytes], size: int) -> None:
        self._read_at = read_at
        self._size = size
        self._at = 0
        self.closed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._at, os.SEEK_END: self._size}[whence]
        self._at = base + offset
        return self._at

    def read(self, size: int | None = -1) -> bytes:
        end = self._size if size is None or size < 0 else min(self._size, self._at + size)
        if end <= self._at:
            return b""
        data = self._read_at(self._at, end - self._at)
        self._at += len(data)
        return data

    def close(self) -> None:
        self.closed = True
