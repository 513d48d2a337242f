"""Layer 5: streams — immutable, ordered (tag, packet) rows backed by Arrow, and the bounded
channels (``Channel``, ``BroadcastChannel``) a streaming run moves row chunks through."""

from orcapod.streams.arrow_table_stream import ArrowTableStream
from orcapod.streams.base import StreamBase, StreamProtocol
from orcapod.streams.channels import BroadcastChannel, Channel

__all__ = ["ArrowTableStream", "BroadcastChannel", "Channel", "StreamBase", "StreamProtocol"]
