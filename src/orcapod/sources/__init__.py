"""Layer 5: sources — streams made from outside data, the roots of provenance.

The SQL table sources are imported when first named (module ``__getattr__``), so importing
orcapod does not load the SQL layer.
"""

from typing import TYPE_CHECKING

from orcapod._lazy import lazy_exports
from orcapod.sources.base import RootSource
from orcapod.sources.cached import CachedSource
from orcapod.sources.derived import DerivedSource
from orcapod.sources.files import CSVSource, DeltaTableSource
from orcapod.sources.in_memory import ArrowTableSource, DataFrameSource, DictSource, ListSource
from orcapod.sources.proxy import SourceProxy
from orcapod.sources.registry import GLOBAL_SOURCE_REGISTRY, SourceRegistry

if TYPE_CHECKING:
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


_LAZY = {
    "PostgreSQLTableSource": "orcapod.sources.sql",
    "SQLiteTableSource": "orcapod.sources.sql",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
