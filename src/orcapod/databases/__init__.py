"""Layer 4: Arrow record stores behind one protocol.

``ArrowDatabase`` is the contract; ``InMemoryArrowDatabase`` (tests, notebooks),
``DeltaTableDatabase`` (one Delta Lake table per path; the default for real use) and
``NoOpArrowDatabase`` (stores nothing) implement it with one semantics, described in
``orcapod.databases.protocol``.
"""

from orcapod.databases.delta import DeltaTableDatabase
from orcapod.databases.in_memory import InMemoryArrowDatabase
from orcapod.databases.noop import NoOpArrowDatabase
from orcapod.databases.protocol import ArrowDatabase

__all__ = ["ArrowDatabase", "DeltaTableDatabase", "InMemoryArrowDatabase", "NoOpArrowDatabase"]
