"""Layer 5: sources — streams made from outside data, the roots of provenance."""

from orcapod.sources.base import RootSource
from orcapod.sources.cached import CachedSource
from orcapod.sources.files import CSVSource, DeltaTableSource
from orcapod.sources.in_memory import ArrowTableSource, DataFrameSource, DictSource, ListSource
from orcapod.sources.registry import SourceRegistry
from orcapod.sources.sql import PostgreSQLTableSource, SQLiteTableSource

__all__ = [
    "ArrowTableSource",
    "CSVSource",
    "CachedSource",
    "DataFrameSource",
    "DeltaTableSource",
    "DictSource",
    "ListSource",
    "PostgreSQLTableSource",
    "RootSource",
    "SQLiteTableSource",
    "SourceRegistry",
]
