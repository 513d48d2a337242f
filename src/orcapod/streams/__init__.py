"""Layer 5: streams — immutable, ordered (tag, packet) rows backed by Arrow."""

from orcapod.streams.arrow_table_stream import ArrowTableStream
from orcapod.streams.base import StreamBase, StreamProtocol

__all__ = ["ArrowTableStream", "StreamBase", "StreamProtocol"]
