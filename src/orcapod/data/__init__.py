"""Layer 3: Python <-> Arrow conversion and the row types ``Datagram``, ``Tag``, ``Packet``."""

from orcapod.data.datagram import Datagram, Packet, Tag

__all__ = ["Datagram", "Packet", "Tag"]
