"""``CachedSource``: a source that keeps a cumulative, deduplicated record of its rows.

``source.cached(database)`` (or ``CachedSource(source, database)``) writes every row the
source provides to ``database`` and serves *all* rows ever recorded there — this run's and
every earlier run's. Useful for inputs that only show their newest rows (a folder that is
pruned, a query over a moving window) while the pipeline must keep every row it ever saw.

How: on first data access, the live source's full table (user columns, system tags and source
info) gets one record id per row from the vectorised ``hash_rows`` over every column (hex,
no Python loop per row); ``add_records(..., skip_duplicates=True)`` stores only rows not
stored before, the database is flushed (the record is durable before it is served), and the
stored table is read back once. The result is fixed for the life of this object (streams are
immutable); build a new ``CachedSource`` to see later additions.

Decisions:

* The table path must stay the same when the source gains rows, so it is not keyed by the
  source's content hash (which covers its data): it is
  ``("source", <source_id given, else the live source's id, else its label, else class
  name>, "schema:<pipeline hash>")``, i.e.
  one table per source id and schema, below ``cache_path_prefix`` when given. Pass
  ``cache_path`` to choose another.
* Content hash: the hash of the rows actually served (plus the cache path), so it changes
  exactly when the served data changes. Pipeline hash: the live source's (same schema).
* When the live source has no data to give (an unbound ``SourceProxy``), the recorded rows
  are served as they are; with nothing recorded either, ``UnboundSourceError`` is raised.
* It needs no node, so it lives with the sources: ``RootSource.cached(database)`` builds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from orcapod.errors import InputValidationError, UnboundSourceError
from orcapod.hashing import hash_object, hash_rows, hash_table
from orcapod.hashing.arrow_hashing import digests_to_hex
from orcapod.streams import ArrowTableStream
from orcapod.streams.base import StreamBase, StreamProtocol
from orcapod.types import ColumnConfig, ContentHash
from orcapod.types.columns import RECORD_HASH

if TYPE_CHECKING:
    pass

__all__ = ["CachedSource", "row_hash_ids"]

_LIVE_COLUMNS = ColumnConfig(source=True, system_tags=True)


def row_hash_ids(table: pa.Table) -> pa.Array:
    """One 32-hex-digit id per row: ``hash_rows`` over every column (vectorised)."""
    return digests_to_hex(hash_rows(table))


class CachedSource(StreamBase):
    """Serves the cumulative, deduplicated record of ``source`` kept in ``cache_database``."""

    def __init__(
        self,
        source: StreamProtocol,
        cache_database: Any,
        cache_path_prefix: Sequence[str] = (),
        cache_path: Sequence[str] | None = None,
        source_id: str | None = None,
        label: str | None = None,
    ) -> None:
        if not isinstance(source, StreamProtocol):
            raise InputValidationError(
                f"CachedSource needs a source or stream, got {type(source).__name__}"
            )
        for method in ("add_records", "get_all_records", "flush"):
            if not callable(getattr(cache_database, method, None)):
                raise InputValidationError(
                    f"cache_database must be an orcapod ArrowDatabase (it has no {method}()); "
                    "pass e.g. InMemoryArrowDatabase() or DeltaTableDatabase(path)"
                )
        self._source = source
        self._database = cache_database
        self._label = label
        self._source_id = source_id
        if cache_path is None:
            name = (
                source_id
                or getattr(source, "source_id", None)
                or getattr(source, "label", None)
                or type(source).__name__
            )
            cache_path = (
                *cache_path_prefix,
                "source",
                str(name),
                "schema:" + source.pipeline_hash().to_string(),
            )
        self._path = tuple(cache_path)
        self._stream: ArrowTableStream | None = None
        self._content_hash: ContentHash | None = None  # set with the stream

    @property
    def source(self) -> StreamProtocol:
        return self._source

    @property
    def cache_path(self) -> tuple[str, ...]:
        return self._path

    @property
    def source_id(self) -> str | None:
        """The id given at construction, else the live source's."""
        return self._source_id or getattr(self._source, "source_id", None)

    @property
    def data_context_key(self) -> str:
        inner = getattr(self._source, "data_context_key", None)
        return inner if isinstance(inner, str) else super().data_context_key

    def get_all_records(self) -> pa.Table | None:
        """Every row recorded so far (user columns, system tags, source info and the
        ``_record_hash`` id), or None when nothing is recorded; a query, no refresh."""
        result: pa.Table | None = self._database.get_all_records(self._path)
        return result

    @property
    def label(self) -> str:
        inner = getattr(self._source, "label", None)
        return self._label or (inner if isinstance(inner, str) and inner else "CachedSource")

    def __repr__(self) -> str:
        return f"CachedSource({self._source!r}, path={self._path!r})"

    # The cumulative record -------------------------------------------------------------------
    def _live_table(self) -> pa.Table:
        return self._source.as_table(_LIVE_COLUMNS)

    def refresh_cache(self) -> int:
        """Record the live rows not recorded yet (flushed); return how many rows were live."""
        live = self._live_table()
        if live.num_rows:
            records = live.append_column(RECORD_HASH, row_hash_ids(live))
            self._database.add_records(
                self._path, records, record_id_column=RECORD_HASH, skip_duplicates=True
            )
            self._database.flush()
        return int(live.num_rows)

    @property
    def stream(self) -> ArrowTableStream:
        """The served rows (recorded on first use)."""
        if self._stream is None:
            try:
                self.refresh_cache()
                live_schema: pa.Schema | None = self._live_table().schema
                unavailable: UnboundSourceError | None = None
            except UnboundSourceError as err:  # no live rows: serve what was recorded
                live_schema, unavailable = None, err
            stored = self._database.get_all_records(self._path)
            if live_schema is None:
                if stored is None:
                    raise UnboundSourceError(
                        f"{self!r}: the live source is unavailable and nothing is recorded "
                        f"at {self._path}; bind the source first"
                    ) from unavailable
                table = stored.drop_columns([c for c in (RECORD_HASH,) if c in stored.schema.names])
            elif stored is None:
                table = live_schema.empty_table()
            else:
                relaxed = pa.schema([f.with_nullable(True) for f in live_schema])
                table = stored.select(live_schema.names).cast(relaxed)
            tag_columns = self._source.keys()[0]
            self._stream = ArrowTableStream(
                table,
                tag_columns,
                identity=self._hash_rows_served(table),
                pipeline_identity=self._source.pipeline_hash(),
                label=self.label,
            )
        return self._stream

    # Identity ----------------------------------------------------------------------------------
    def _hash_rows_served(self, table: pa.Table) -> ContentHash:
        self._content_hash = hash_object(
            {"kind": "CachedSource", "path": list(self._path), "rows": hash_table(table)}
        )
        return self._content_hash

    def content_hash(self) -> ContentHash:
        return self.stream.content_hash()

    def pipeline_hash(self) -> ContentHash:
        return self._source.pipeline_hash()

    # Stream surface ------------------------------------------------------------------------
