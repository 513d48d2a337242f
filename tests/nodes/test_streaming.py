"""ReadAhead: what a function node's look-ups take from its input channel at a time."""

from __future__ import annotations

import asyncio

import pyarrow as pa

from orcapod.nodes.streaming import ReadAhead, send_table
from orcapod.streams.channels import Channel


def _rows(table: pa.Table) -> int:
    return table.num_rows


def test_a_table_sent_in_channel_sized_pieces_is_taken_whole() -> None:
    async def main() -> list[int]:
        channel: Channel[pa.Table] = Channel(64, size=_rows)
        ahead = ReadAhead(channel, 10_000)
        ahead.start()

        async def produce() -> None:
            await send_table(pa.table({"x": list(range(1000))}), channel, 64)
            channel.close()

        producer = asyncio.create_task(produce())
        taken = []
        while (table := await ahead.take(settle=0.5)) is not None:
            taken.append(table.num_rows)
        await producer
        return taken

    assert asyncio.run(main()) == [1000]


def test_a_take_returns_what_arrived_once_the_input_pauses() -> None:
    async def main() -> list[int]:
        channel: Channel[pa.Table] = Channel(64, size=_rows)
        ahead = ReadAhead(channel, 10_000)
        ahead.start()
        taken = asyncio.Event()

        async def produce() -> None:
            await channel.send(pa.table({"x": list(range(10))}))
            await taken.wait()  # the rest only after the first take returned
            await send_table(pa.table({"x": list(range(100))}), channel, 64)
            channel.close()

        producer = asyncio.create_task(produce())
        sizes = []
        while (table := await ahead.take(settle=0.01)) is not None:
            sizes.append(table.num_rows)
            taken.set()
        await producer
        return sizes

    sizes = asyncio.run(main())
    assert sizes[0] == 10 and sum(sizes) == 110
