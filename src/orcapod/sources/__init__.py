"""Layer 5: sources — streams made from outside data, the roots of provenance.

The SQL table sources are imported when first named (module ``__getattr__``), so importing
orcapod does not load the SQL layer.
"""

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'orcapod.sources' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
