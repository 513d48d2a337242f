"""Bounded channels that carry items (in a pipeline: Arrow row chunks) between coroutines.

``Channel(capacity, size=None)``: a first-in first-out buffer of at most ``capacity`` units,
where an item weighs ``size(item)`` units (default 1; a streaming pipeline weighs a chunk by
its number of rows, so a channel holds at most ``capacity`` rows).

* ``await send(item)`` waits while the item does not fit (backpressure). An item heavier than
  the whole capacity is accepted into an empty channel, so one oversized chunk never deadlocks.
  ``try_send(item)`` puts the item only if it fits now and says whether it did.
* ``close(error=None)`` ends the channel; it is idempotent (the first close wins). A send
  after close raises ``ChannelClosedError`` (also a send that was waiting for room). Readers
  first receive every item sent before the close.
* ``await receive()`` returns the next item, waiting for one; once the channel is closed and
  drained it raises ``ChannelClosedError`` - or, when it was closed with an error, raises that
  error (the reader learns why its input ended early, every time it asks).
  ``receive_nowait()`` returns the next item or None when none is buffered now.
* ``async for item in channel`` iterates until the close (raising the close's error, if any).
* ``used`` is the units buffered now, ``peak`` the most buffered at once so far.

``BroadcastChannel(capacity, size=None)``: one writer, several readers (``add_reader()``
before the first send), each reader with its own ``Channel`` of ``capacity``. ``send`` puts
the item into every reader that has room at once, then waits only for the readers whose
buffer is full: a slow reader holds back the writer (and with it every other reader) only
once it is ``capacity`` units behind, never sooner. That bound is the price of bounded
memory: an unbounded buffer per reader would let a stalled reader grow memory with the input.

Decisions: channels belong to one event loop and are not thread-safe; code in another thread
uses them through the loop (``asyncio.run_coroutine_threadsafe``). There is no lock: every
check and update happens between two awaits of the one loop thread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from orcapod._lazy import lazy_module
from orcapod.errors import ChannelClosedError, InputValidationError

if TYPE_CHECKING:
    import asyncio
else:
    asyncio = lazy_module("asyncio")

__all__ = ["BroadcastChannel", "Channel"]

T = TypeVar("T")


def _one(_: object) -> int:
    return 1


class Channel(Generic[T]):
    """A bounded FIFO between coroutines (see the module docstring)."""

    def __init__(self, capacity: int = 64, *, size: Callable[[T], int] | None = None) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise InputValidationError(
                f"a channel's capacity must be a positive integer, got {capacity!r}"
            )
        self.capacity = capacity
        self._size: Callable[[T], int] = size if size is not None else _one
        self._items: deque[tuple[T, int]] = deque()
        self._used = 0
        self._peak = 0
        self._closed = False
        self._error: BaseException | None = None
        self._has_items = asyncio.Event()
        self._has_room = asyncio.Event()

    # -- state ------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def used(self) -> int:
        """Units buffered now (rows, for a chunk channel)."""
        return self._used

    @property
    def peak(self) -> int:
        """The most units buffered at once so far (rows in flight on a pipeline edge); at
        most ``capacity``, unless a single item heavier than the capacity was sent."""
        return self._peak

    def __len__(self) -> int:
        """Items buffered now."""
        return len(self._items)

    # -- writing ----------------------------------------------------------------------------
    def _fits(self, weight: int) -> bool:
        return self._used == 0 or self._used + weight <= self.capacity

    def _put(self, item: T, weight: int) -> None:
        self._items.append((item, weight))
        self._used += weight
        self._peak = max(self._peak, self._used)
        self._has_items.set()

    def _check_open(self) -> None:
        if self._closed:
            raise ChannelClosedError(
                "send to a closed channel: the reader is gone or the channel was closed; "
                "stop producing once close() was called"
            )

    def try_send(self, item: T) -> bool:
        """Put ``item`` if it fits now; True when it was put."""
        self._check_open()
        weight = self._size(item)
        if not self._fits(weight):
            return False
        self._put(item, weight)
        return True

    async def send(self, item: T) -> None:
        """Put ``item``, waiting for room (raises ``ChannelClosedError`` once closed)."""
        weight = self._size(item)
        while True:
            self._check_open()
            if self._fits(weight):
                break
            self._has_room.clear()
            await self._has_room.wait()
        self._put(item, weight)

    def close(self, error: BaseException | None = None) -> None:
        """End the channel (idempotent); ``error`` is raised to readers after the last item."""
        if self._closed:
            return
        self._closed = True
        self._error = error
        self._has_items.set()  # wake readers (to see the close) and waiting writers
        self._has_room.set()

    # -- reading ----------------------------------------------------------------------------
    def _take(self) -> T:
        item, weight = self._items.popleft()
        self._used -= weight
        self._has_room.set()
        return item

    def _ended(self) -> BaseException:
        if self._error is not None:
            return self._error
        return ChannelClosedError("receive from a closed channel that has no items left")

    def receive_nowait(self) -> T | None:
        """The next item if one is buffered now, else None (raises once closed and drained)."""
        if self._items:
            return self._take()
        if self._closed:
            raise self._ended()
        return None

    async def receive(self) -> T:
        """The next item, waiting for one (see the module docstring for the end)."""
        while not self._items:
            if self._closed:
                raise self._ended()
            self._has_items.clear()
            await self._has_items.wait()
        return self._take()

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        while True:
            try:
                item = await self.receive()
            except ChannelClosedError:
                if self._error is not None:
                    raise
                return
            yield item

    async def collect(self) -> list[T]:
        """Every remaining item, until the close."""
        return [item async for item in self]


class BroadcastChannel(Generic[T]):
    """One writer, several readers, each with its own bounded buffer (module docstring)."""

    def __init__(self, capacity: int = 64, *, size: Callable[[T], int] | None = None) -> None:
        self._template: Channel[T] = Channel(capacity, size=size)
        self._size = size
        self._readers: list[Channel[T]] = []
        self._started = False

    def add_reader(self) -> Channel[T]:
        """A new reader (a ``Channel`` to receive from); only before the first send."""
        if self._started:
            raise InputValidationError(
                "add_reader after the first send: a late reader would miss items; add every "
                "reader before sending"
            )
        reader: Channel[T] = Channel(self._template.capacity, size=self._size)
        self._readers.append(reader)
        return reader

    @property
    def readers(self) -> tuple[Channel[T], ...]:
        return tuple(self._readers)

    @property
    def closed(self) -> bool:
        return self._template.closed

    async def send(self, item: T) -> None:
        """Deliver ``item`` to every reader: at once where there is room, then wait for the
        full ones (raises ``ChannelClosedError`` once the broadcast is closed)."""
        self._started = True
        self._template._check_open()
        waiting = [r for r in self._readers if not r.closed and not r.try_send(item)]
        for reader in waiting:
            if not reader.closed:
                await reader.send(item)

    def try_send(self, item: T) -> bool:
        """Deliver ``item`` only if every open reader has room now."""
        self._started = True
        self._template._check_open()
        weight = self._template._size(item)
        if not all(r.closed or r._fits(weight) for r in self._readers):
            return False
        for reader in self._readers:
            if not reader.closed:
                reader._put(item, weight)
        return True

    def close(self, error: BaseException | None = None) -> None:
        """Close every reader (idempotent); ``error`` reaches each of them."""
        if self._template.closed:
            return
        self._template.close(error)
        for reader in self._readers:
            reader.close(error)
