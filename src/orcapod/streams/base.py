"""``StreamProtocol`` (what outside code may implement) and ``StreamBase`` (shared behaviour).

A stream is an immutable, ordered sequence of (tag, packet) rows with a fixed schema. Every
stream can show itself as an Arrow table (hidden columns off by default), iterate its rows,
predict its schema, and identify itself two ways: ``content_hash()`` (includes data) and
``pipeline_hash()`` (schema and topology only).

Provenance of the stream object itself: ``producer`` is the pod or operator that made it
(None for a root stream or a source) and ``upstreams`` its input streams (``()`` for a root).
``data_context`` / ``data_context_key`` name the data context its rows were made under.

Fluent operator shortcuts (``stream.join(other)``, ``.batch(…)``, …) live on ``StreamBase``
but operators are a higher layer. Instead of importing upward, the operators package registers
its constructors here (``register_operator``) when it is imported; ``import orcapod`` always
imports it, so the shortcuts are available to every user of the package.

polars and pandas appear here in annotations only (the frames come from
``orcapod.data.frames``), so importing a stream does not import them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pyarrow as pa

from orcapod.contexts import DataContext, resolve_context
from orcapod.data import Packet, Tag
from orcapod.data.frames import to_pandas, to_polars
from orcapod.errors import InputValidationError, OrcapodError
from orcapod.types import ColumnConfig, ContentHash, Schema
from orcapod.types.columns import DEFAULT_CONTEXT_KEY

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = ["StreamBase", "StreamProtocol", "check_slice_rows", "register_operator"]

ColumnsArg = ColumnConfig | Mapping[str, Any] | None


@runtime_checkable
class StreamProtocol(Protocol):
    """What every stream offers; implement it to plug a custom stream into orcapod."""

    def keys(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[tuple[str, ...], tuple[str, ...]]: ...

    def output_schema(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[Schema, Schema]: ...

    def iter_packets(self) -> Iterator[tuple[Tag, Packet]]: ...

    def as_table(self, columns: ColumnsArg = None, all_info: bool = False) -> pa.Table: ...

    def content_hash(self) -> ContentHash: ...

    def pipeline_hash(self) -> ContentHash: ...


_OPERATORS: dict[str, Callable[..., Any]] = {}


def register_operator(name: str, factory: Callable[..., Any]) -> None:
    """Called by ``orcapod.operators`` to provide the fluent shortcut ``stream.<name>(…)``."""
    _OPERATORS[name] = factory


def _operator(name: str) -> Callable[..., Any]:
    try:
        return _OPERATORS[name]
    except KeyError as err:
        raise OrcapodError(
            f"stream.{name}() needs orcapod.operators; `import orcapod` (or "
            "`import orcapod.operators`) before using fluent operator methods"
        ) from err


def check_slice_rows(rows: int) -> None:
    """``iter_slices``' slice size: a positive int."""
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise InputValidationError(
            f"iter_slices(rows={rows!r}): rows must be a whole number of at least 1"
        )


class StreamBase:
    """Conversions, iteration sugar and fluent operator shortcuts shared by all streams.

    Subclasses implement ``content_hash`` and ``pipeline_hash``, and either the data methods
    (``keys``, ``output_schema``, ``iter_packets``, ``as_table``, ``num_rows``) or a ``stream``
    property returning their rows as an ``ArrowTableStream``, to which those methods delegate.
    """

    # Data surface: by default delegated to ``self.stream``, the materialised rows ---------
    @property
    def stream(self) -> StreamProtocol:
        """The stream this one delegates its data to (e.g. a source's enriched
        ``ArrowTableStream``); streams that hold their own data override the methods below."""
        raise NotImplementedError(f"{type(self).__name__} does not provide .stream")

    def keys(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return self.stream.keys(columns, all_info)

    def output_schema(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[Schema, Schema]:
        return self.stream.output_schema(columns, all_info)

    def iter_packets(self) -> Iterator[tuple[Tag, Packet]]:
        return self.stream.iter_packets()

    def as_table(self, columns: ColumnsArg = None, all_info: bool = False) -> pa.Table:
        return self.stream.as_table(columns, all_info)

    def iter_slices(
        self, rows: int, columns: ColumnsArg = None, all_info: bool = False
    ) -> Iterator[pa.Table]:
        """``as_table(columns, all_info)`` in consecutive slices of at most ``rows`` rows
        (streams that can build their rows a slice at a time do so)."""
        check_slice_rows(rows)
        table = self.as_table(columns, all_info)
        return (table.slice(start, rows) for start in range(0, table.num_rows, rows))

    @property
    def num_rows(self) -> int:
        return int(self.as_table().num_rows)

    def __len__(self) -> int:
        return self.num_rows

    # Provenance of the stream object -------------------------------------------------------
    @property
    def producer(self) -> Any:
        """The pod or operator that produced this stream; None for root streams and sources."""
        return None

    @property
    def upstreams(self) -> tuple[Any, ...]:
        """The streams this one was computed from; ``()`` for root streams and sources."""
        return ()

    @property
    def data_context_key(self) -> str:
        return DEFAULT_CONTEXT_KEY

    @property
    def data_context(self) -> DataContext:
        return resolve_context(self.data_context_key)

    # Identity (every stream implements both) ------------------------------------------------
    def content_hash(self) -> ContentHash:
        raise NotImplementedError

    def pipeline_hash(self) -> ContentHash:
        raise NotImplementedError

    # Shared behaviour --------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[Tag, Packet]]:
        return self.iter_packets()

    async def async_iter_packets(self) -> AsyncIterator[tuple[Tag, Packet]]:
        """The rows, for ``async for`` (the stream is already computed or computes on the
        first row, as ``iter_packets`` does)."""
        for pair in self.iter_packets():
            yield pair

    def flow(self) -> list[tuple[Tag, Packet]]:
        """All rows as a list of (tag, packet) pairs."""
        return list(self.iter_packets())

    def as_polars_df(self, columns: ColumnsArg = None, all_info: bool = False) -> pl.DataFrame:
        """The rows as a polars DataFrame (arrays and Paths restored, see
        ``orcapod.data.frames``)."""
        return to_polars(self.as_table(columns, all_info))

    def as_df(self, columns: ColumnsArg = None, all_info: bool = False) -> pl.DataFrame:
        """The rows as a polars DataFrame (same as ``as_polars_df``)."""
        return self.as_polars_df(columns, all_info)

    def as_lazy_frame(self, columns: ColumnsArg = None, all_info: bool = False) -> pl.LazyFrame:
        """The rows as a polars LazyFrame (over the Arrow table, no copy)."""
        return self.as_polars_df(columns, all_info).lazy()

    def as_pandas_df(
        self, columns: ColumnsArg = None, all_info: bool = False, index_by_tags: bool = False
    ) -> pd.DataFrame:
        """The rows as a pandas DataFrame with orcapod's Python values (Paths, dicts, numpy
        arrays; see ``orcapod.data.frames``)."""
        df = to_pandas(self.as_table(columns, all_info))
        if index_by_tags:
            tag_keys, _ = self.keys()
            if tag_keys:
                df = df.set_index(list(tag_keys))
        return df

    # Fluent operator shortcuts ------------------------------------------------------------
    def join(self, other_stream: Any, *others: Any, label: str | None = None) -> Any:
        """``Join`` of this stream with ``other_stream`` (and any further ``others``)."""
        return _operator("join")(self, other_stream, *others, label=label)

    def semi_join(self, other_stream: Any, label: str | None = None) -> Any:
        return _operator("semi_join")(self, other_stream, label=label)

    def merge_join(self, other_stream: Any, label: str | None = None) -> Any:
        return _operator("merge_join")(self, other_stream, label=label)

    def batch(
        self, batch_size: int = 0, drop_partial_batch: bool = False, label: str | None = None
    ) -> Any:
        return _operator("batch")(self, batch_size, drop_partial_batch, label=label)

    def select_tag_columns(
        self, tag_columns: Any, *more: str, strict: bool = True, label: str | None = None
    ) -> Any:
        """Keep these tag columns: one name, a list of names, or several names."""
        return _operator("select_tag_columns")(self, tag_columns, *more, strict=strict, label=label)

    def select_packet_columns(
        self, packet_columns: Any, *more: str, strict: bool = True, label: str | None = None
    ) -> Any:
        return _operator("select_packet_columns")(
            self, packet_columns, *more, strict=strict, label=label
        )

    def drop_tag_columns(
        self, tag_columns: Any, *more: str, strict: bool = True, label: str | None = None
    ) -> Any:
        return _operator("drop_tag_columns")(self, tag_columns, *more, strict=strict, label=label)

    def drop_packet_columns(
        self, packet_columns: Any, *more: str, strict: bool = True, label: str | None = None
    ) -> Any:
        return _operator("drop_packet_columns")(
            self, packet_columns, *more, strict=strict, label=label
        )

    def map_tags(
        self, name_map: Mapping[str, str], drop_unmapped: bool = False, label: str | None = None
    ) -> Any:
        return _operator("map_tags")(self, name_map, drop_unmapped, label=label)

    def map_packets(
        self, name_map: Mapping[str, str], drop_unmapped: bool = False, label: str | None = None
    ) -> Any:
        return _operator("map_packets")(self, name_map, drop_unmapped, label=label)

    def polars_filter(
        self, *predicates: Any, constraint_map: Mapping[str, Any] | None = None, **constraints: Any
    ) -> Any:
        """``PolarsFilter`` with these predicates and equality constraints (given as keywords,
        or as ``constraint_map`` for column names that are not Python identifiers)."""
        return _operator("polars_filter")(
            self, *predicates, **(constraint_map or {}), **constraints
        )

    def cross_join(self, *others: Any, **kwargs: Any) -> Any:
        return _operator("cross_join")(self, *others, **kwargs)

    def group_by(self, *columns: Any, **kwargs: Any) -> Any:
        return _operator("group_by")(self, *columns, **kwargs)

    def tags_to_packet(self, *columns: Any, **kwargs: Any) -> Any:
        return _operator("tags_to_packet")(self, *columns, **kwargs)

    def packet_to_tags(self, *columns: Any, **kwargs: Any) -> Any:
        return _operator("packet_to_tags")(self, *columns, **kwargs)
