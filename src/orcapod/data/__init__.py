"""Layer 3: Python <-> Arrow conversion and the row types ``Datagram``, ``Tag``, ``Packet``."""

from orcapod.data.datagram import Datagram
from orcapod.data.packet import Packet
from orcapod.data.tag import Tag

__all__ = ["Datagram", "Packet", "Tag"]
