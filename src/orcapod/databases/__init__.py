"""Layer 4: Arrow record stores behind one protocol.

``ArrowDatabase`` is the contract; ``InMemoryArrowDatabase`` (tests, notebooks),
``DeltaTableDatabase`` (one Delta Lake table per path; the default for real use),
``SQLiteDatabase`` and ``PostgreSQLDatabase`` (one SQL table per path, through ADBC drivers
installed as optional extras) and ``NoOpArrowDatabase`` (stores nothing) implement it with one
semantics, described in ``orcapod.databases.protocol``.

The SQL databases and ``DeltaTableDatabase`` are imported when first named (module
``__getattr__``), so importing orcapod loads neither the SQL layer nor the Delta Lake backend
(a dozen modules: the write path, id indexes, file access): a program that names
``DeltaTableDatabase`` loads it then, while ``import orcapod`` alone, ``orcapod --help`` and
in-memory use never do.
"""

from typing import TYPE_CHECKING

from orcapod._lazy import lazy_exports
from orcapod.databases.in_memory import InMemoryArrowDatabase
from orcapod.databases.noop import NoOpArrowDatabase
from orcapod.databases.protocol import ArrowDatabase

if TYPE_CHECKING:
    from orcapod.databases.delta import DeltaTableDatabase
    from orcapod.databases.postgresql import PostgreSQLDatabase
    from orcapod.databases.sqlite import SQLiteDatabase

__all__ = [
    "ArrowDatabase",
    "DeltaTableDatabase",
    "InMemoryArrowDatabase",
    "NoOpArrowDatabase",
    "PostgreSQLDatabase",
    "SQLiteDatabase",
]


_LAZY = {
    "DeltaTableDatabase": "orcapod.databases.delta",
    "PostgreSQLDatabase": "orcapod.databases.postgresql",
    "SQLiteDatabase": "orcapod.databases.sqlite",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
