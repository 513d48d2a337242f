"""Layer 4: Arrow record stores behind one protocol.

``ArrowDatabase`` is the contract; ``InMemoryArrowDatabase`` (tests, notebooks),
``DeltaTableDatabase`` (one Delta Lake table per path; the default for real use),
``SQLiteDatabase`` and ``PostgreSQLDatabase`` (one SQL table per path, through ADBC drivers
installed as optional extras) and ``NoOpArrowDatabase`` (stores nothing) implement it with one
semantics, described in ``orcapod.databases.protocol``.
"""

from orcapod.databases.delta import DeltaTableDatabase
from orcapod.databases.in_memory import InMemoryArrowDatabase
from orcapod.databases.noop import NoOpArrowDatabase
from orcapod.databases.postgresql import PostgreSQLDatabase
from orcapod.databases.protocol import ArrowDatabase
from orcapod.databases.sqlite import SQLiteDatabase

__all__ = [
    "ArrowDatabase",
    "DeltaTableDatabase",
    "InMemoryArrowDatabase",
    "NoOpArrowDatabase",
    "PostgreSQLDatabase",
    "SQLiteDatabase",
]
