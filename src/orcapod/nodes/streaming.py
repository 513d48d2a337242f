"""Streaming execution of source and operator nodes (``async_execute``), and its helpers.

In a streaming run (``ExecutorType.ASYNC_CHANNELS``) nodes hand rows to each other as Arrow
chunks through bounded channels (``orcapod.streams.channels``); a chunk is a table in the
sending node's full layout (every hidden column), the rows a synchronous run would read from
that node. A node's ``async_execute(inputs, output, ...)`` reads one channel per input (in the
order of its ``upstreams``), writes its rows to ``output`` (None when nothing reads them),
closes nothing (the orchestrator closes ``output``) and returns its ``NodeRunSummary``.

* A source node sends its table in chunks of ``chunk_rows`` rows.
* An operator node (``CacheMode.OFF``) streams when its operator has a streaming form
  (``orcapod.operators.streaming``): each arriving chunk goes through the operator's own
  kernel and what it yields is sent at once. Otherwise - and always with ``CacheMode.LOG`` or
  ``REPLAY``, whose writes and reads are per run - it is a barrier: it waits until every input
  has ended, then runs exactly as a synchronous run does (``run()`` over its upstream nodes,
  whose rows are all stored by then) and sends the result in chunks. The rows and summary are
  the synchronous run's either way.

Blocking work (a node's ``run()``, a function node's whole run) goes to its own thread
(``in_thread``), never to the event loop's small default pool: every node of a pipeline may be
waiting on a channel at once, and a shared pool with fewer threads than nodes would deadlock.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from orcapod._lazy import lazy_module
from orcapod.nodes.summary import NodeRunSummary
from orcapod.operators.layout import FULL_INFO
from orcapod.streams.channels import BroadcastChannel, Channel

if TYPE_CHECKING:
    import asyncio
else:
    asyncio = lazy_module("asyncio")

__all__ = [
    "Output",
    "drain",
    "ReadAhead",
    "in_thread",
    "send_table",
    "stream_operator",
    "stream_source",
]

T = TypeVar("T")

#: where a node writes its rows (None: no node reads them)
Output = Channel[pa.Table] | BroadcastChannel[pa.Table] | None


async def in_thread(
    fn: Callable[[], T], name: str, on_cancel: Callable[[], None] | None = None
) -> T:
    """Run ``fn`` in a new thread of its own; its value or exception, awaited. When the
    awaiting task is cancelled, ``on_cancel`` (e.g. closing the channels the thread waits on)
    runs and the thread is waited for, so nothing it writes is cut off."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    context = contextvars.copy_context()  # e.g. the packet observer of the run

    def target() -> None:
        try:
            value = context.run(fn)
        except BaseException as err:  # noqa: BLE001 - handed to the awaiting coroutine
            loop.call_soon_threadsafe(settle, None, err)
        else:
            loop.call_soon_threadsafe(settle, value, None)

    thread = threading.Thread(target=target, name=f"orcapod-{name}", daemon=True)
    thread.start()
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        # the thread cannot be interrupted; it stops at its next channel operation once
        # ``on_cancel`` closed them - wait for it so its writes are finished
        if on_cancel is not None:
            on_cancel()
        while thread.is_alive():  # a repeated cancellation does not cut the wait short
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.01)
        await asyncio.sleep(0)  # let the thread's outcome land, then mark it seen
        if future.done() and not future.cancelled():
            future.exception()
        raise


async def send_table(table: pa.Table, output: Output, chunk_rows: int) -> None:
    """Send ``table`` to ``output`` in chunks of at most ``chunk_rows`` rows."""
    if output is None:
        return
    for start in range(0, table.num_rows, chunk_rows):
        await output.send(table.slice(start, chunk_rows))


async def drain(reader: Channel[pa.Table]) -> int:
    """Read a channel to its end; the number of rows it carried."""
    rows = 0
    async for chunk in reader:
        rows += chunk.num_rows
    return rows


async def stream_source(node: Any, output: Output, chunk_rows: int) -> NodeRunSummary:
    """A source node: its rows, in chunks (see the module docstring)."""
    table = await asyncio.to_thread(node.stream.as_table, FULL_INFO)
    await send_table(table, output, chunk_rows)
    return NodeRunSummary(node.label, reused=table.num_rows)


async def stream_operator(
    node: Any,
    inputs: Sequence[Channel[pa.Table]],
    output: Output,
    ordered: Sequence[bool],
    chunk_rows: int,
) -> NodeRunSummary:
    """An operator node: streamed when its operator allows, else a barrier (module docstring)."""
    form = node.streaming_form(ordered)
    if form is None:
        await asyncio.gather(*(drain(reader) for reader in inputs))
        summary, table = await in_thread(node.run_rows, node.label)
        await send_table(table, output, chunk_rows)
        summary_out: NodeRunSummary = summary
        return summary_out
    emitted = 0
    lock = asyncio.Lock()  # one chunk at a time through the operator's state

    async def emit(tables: list[pa.Table]) -> None:
        nonlocal emitted
        for table in tables:
            emitted += table.num_rows
            await send_table(table, output, chunk_rows)

    async def pump(side: int, reader: Channel[pa.Table]) -> None:
        async for chunk in reader:
            async with lock:
                await emit(form.push(side, chunk))
        async with lock:
            await emit(form.end(side))

    await asyncio.gather(*(pump(side, reader) for side, reader in enumerate(inputs)))
    return NodeRunSummary(node.label, computed=emitted)


class ReadAhead:
    """Reads a channel ahead of its consumer, up to ``limit`` rows.

    ``take()`` returns every chunk read since the last call as one table (waiting for at least
    one; None once the channel ended), so a consumer whose work has a cost per chunk (a
    function node's look-ups and commits) meets a fast upstream with few, large chunks and a
    slow one with small, early ones. The rows held here are bounded by ``limit``.
    """

    def __init__(self, reader: Channel[pa.Table], limit: int) -> None:
        self._reader = reader
        self._limit = max(1, limit)
        self._parts: list[pa.Table] = []
        self._rows = 0
        self._ended = False
        self._error: BaseException | None = None
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._fill())

    async def _fill(self) -> None:
        try:
            async for chunk in self._reader:
                self._parts.append(chunk)
                self._rows += chunk.num_rows
                self._arrived.set()
                while self._rows >= self._limit:
                    self._room.clear()
                    await self._room.wait()
        except Exception as err:  # noqa: BLE001 - handed to the consumer by take()
            self._error = err
        finally:
            self._ended = True
            self._arrived.set()

    async def take(
        self, min_rows: int = 1, patience: float = 0.0, settle: float = 0.0
    ) -> pa.Table | None:
        """Every chunk read so far, as one table (None once the channel ended). Once a chunk
        is there, waits up to ``patience`` seconds more for ``min_rows`` rows in all, and
        goes on reading while chunks keep arriving less than ``settle`` seconds apart (a
        table sent in channel-sized chunks is then taken whole, not piece by piece)."""
        while not self._parts:
            if self._ended:
                if self._error is not None:
                    raise self._error
                return None
            self._arrived.clear()
            await self._arrived.wait()
        while settle > 0 and not self._ended and self._rows < self._limit:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), settle)
            except TimeoutError:
                break
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while self._rows < min_rows and not self._ended and self._rows < self._limit:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        parts, self._parts, self._rows = self._parts, [], 0
        self._room.set()
        return (
            parts[0] if len(parts) == 1 else pa.concat_tables(parts, promote_options="permissive")
        )

    async def stop(self) -> None:
        """Stop reading (the consumer is done or failed); a waiting ``take`` returns None."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._ended = True
        self._arrived.set()
