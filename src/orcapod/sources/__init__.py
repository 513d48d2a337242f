"""Layer 5: sources — streams made from outside data, the roots of provenance."""

from orcapod.sources.base import RootSource
from orcapod.sources.cached import CachedSource
from orcapod.sources.derived import DerivedSource
from orcapod.sources.files import CSVSource, DeltaTableSource
from orcapod.sources.in_memory import ArrowTableSource, DataFrameSource, DictSource, ListSource
from orcapod.sources.proxy import SourceProxy
from orcapod.sources.registry import GLOBAL_SOURCE_REGISTRY, SourceRegistry
from orcapod.sources.sql import PostgreSQLTableSource, SQLiteTableSource

__all__ = [
    "ArrowTableSource",
    "CSVSource",
    "CachedSource",
    "DataFrameSource",
    "DeltaTableSource",
    "DerivedSource",
    "DictSource",
    "GLOBAL_SOURCE_REGISTRY",
    "ListSource",
    "PostgreSQLTableSource",
    "RootSource",
    "SQLiteTableSource",
    "SourceProxy",
    "SourceRegistry",
]
