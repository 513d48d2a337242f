"""Layer 7: operators — restructure streams (join, select, rename, move, batch, group, filter).

Applying an operator (``Join()(a, b)``) validates, records and returns a lazy
``OperatorStream``; importing this package also enables the fluent shortcuts
(``a.join(b)``). See ``orcapod.operators.base`` for the contract.
"""

from orcapod.operators.batch import Batch
from orcapod.operators.columns import (
    DropPacketColumns,
    DropTagColumns,
    MapPackets,
    MapTags,
    SelectPacketColumns,
    SelectTagColumns,
)
from orcapod.operators.filters import PolarsFilter
from orcapod.operators.fluent import register_fluent_operators
from orcapod.operators.group_by import GroupBy
from orcapod.operators.join import Join
from orcapod.operators.merge_join import MergeJoin
from orcapod.operators.roles import PacketToTags, TagsToPacket
from orcapod.operators.semi_join import SemiJoin

register_fluent_operators()

__all__ = [
    "Batch",
    "DropPacketColumns",
    "DropTagColumns",
    "GroupBy",
    "Join",
    "MapPackets",
    "MapTags",
    "MergeJoin",
    "PacketToTags",
    "PolarsFilter",
    "SelectPacketColumns",
    "SelectTagColumns",
    "SemiJoin",
    "TagsToPacket",
]
