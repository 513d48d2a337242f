from __future__ import annotations

import asyncio

import pytest

from orcapod.errors import ChannelClosedError, InputValidationError
from orcapod.streams.channels import BroadcastChannel, Channel


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_items_arrive_in_order_and_iteration_ends_at_close() -> None:
    async def main() -> list[int]:
        channel: Channel[int] = Channel(4)

        async def produce() -> None:
            for i in range(10):
                await channel.send(i)
            channel.close()

        task = asyncio.create_task(produce())
        got = [i async for i in channel]
        await task
        return got

    assert run(main()) == list(range(10))


def test_send_waits_while_full_and_resumes_when_read() -> None:
    async def main() -> tuple[bool, int]:
        channel: Channel[int] = Channel(2)
        await channel.send(1)
        await channel.send(2)
        blocked = asyncio.create_task(channel.send(3))
        await asyncio.sleep(0.01)
        waited = not blocked.done()
        assert await channel.receive() == 1
        await asyncio.wait_for(blocked, 1)
        return waited, len(channel)

    assert run(main()) == (True, 2)


def test_capacity_counts_units_and_an_oversized_item_enters_an_empty_channel() -> None:
    async def main() -> list[int]:
        channel: Channel[list[int]] = Channel(5, size=len)
        assert channel.try_send([1, 2, 3])
        assert not channel.try_send([4, 5, 6])  # 6 units > 5
        assert channel.used == 3
        await channel.receive()
        assert channel.try_send(list(range(9)))  # empty: accepted whole
        return [channel.used, len(channel)]

    assert run(main()) == [9, 1]


def test_a_channel_closed_with_an_error_delivers_it_after_the_items() -> None:
    async def main() -> list[int]:
        channel: Channel[int] = Channel(4)
        await channel.send(1)
        channel.close(ValueError("upstream broke"))
        channel.close()  # idempotent: the first close wins
        got = []
        with pytest.raises(ValueError, match="upstream broke"):
            async for item in channel:
                got.append(item)
        with pytest.raises(ValueError, match="upstream broke"):
            await channel.receive()
        return got

    assert run(main()) == [1]


def test_closed_channel_refuses_sends_and_ends_receives() -> None:
    async def main() -> None:
        channel: Channel[int] = Channel(1)
        await channel.send(1)
        waiting = asyncio.create_task(channel.send(2))
        await asyncio.sleep(0.01)
        channel.close()
        with pytest.raises(ChannelClosedError):
            await waiting
        with pytest.raises(ChannelClosedError):
            await channel.send(3)
        assert channel.receive_nowait() == 1
        with pytest.raises(ChannelClosedError):
            channel.receive_nowait()
        assert await channel.collect() == []

    run(main())


def test_receive_nowait_returns_none_on_an_open_empty_channel() -> None:
    async def main() -> int | None:
        channel: Channel[int] = Channel(1)
        return channel.receive_nowait()

    assert run(main()) is None


def test_capacity_must_be_positive() -> None:
    with pytest.raises(InputValidationError, match="capacity"):
        Channel(0)


def test_broadcast_gives_every_reader_every_item() -> None:
    async def main() -> tuple[list[int], list[int]]:
        broadcast: BroadcastChannel[int] = BroadcastChannel(3)
        a, b = broadcast.add_reader(), broadcast.add_reader()

        async def produce() -> None:
            for i in range(20):
                await broadcast.send(i)
            broadcast.close()

        task = asyncio.create_task(produce())
        got = await asyncio.gather(a.collect(), b.collect())
        await task
        return got[0], got[1]

    first, second = run(main())
    assert first == second == list(range(20))


def test_a_slow_reader_holds_back_the_writer_only_once_its_buffer_is_full() -> None:
    async def main() -> tuple[list[int], int]:
        broadcast: BroadcastChannel[int] = BroadcastChannel(3)
        fast, slow = broadcast.add_reader(), broadcast.add_reader()
        seen: list[int] = []

        async def produce() -> None:
            for i in range(10):
                await broadcast.send(i)
            broadcast.close()

        async def read_fast() -> None:
            async for item in fast:
                seen.append(item)

        producer = asyncio.create_task(produce())
        reader = asyncio.create_task(read_fast())
        await asyncio.sleep(0.05)  # the slow reader has read nothing yet
        progress = len(seen)
        held = slow.used
        assert await slow.collect() == list(range(10))
        await producer
        await reader
        return seen, progress * 100 + held

    seen, state = run(main())
    assert seen == list(range(10))
    # the fast reader got the 3 items the slow one buffered, plus the one the writer was
    # sending when it had to wait, no more
    assert state == 4 * 100 + 3


def test_broadcast_close_with_error_reaches_every_reader_and_late_readers_are_refused() -> None:
    async def main() -> None:
        broadcast: BroadcastChannel[int] = BroadcastChannel(2)
        a, b = broadcast.add_reader(), broadcast.add_reader()
        await broadcast.send(1)
        with pytest.raises(InputValidationError, match="add_reader"):
            broadcast.add_reader()
        broadcast.close(RuntimeError("stop"))
        for reader in (a, b):
            assert await reader.receive() == 1
            with pytest.raises(RuntimeError, match="stop"):
                await reader.receive()
        with pytest.raises(ChannelClosedError):
            await broadcast.send(2)

    run(main())


def test_peak_is_the_most_units_held_at_once() -> None:
    async def main() -> tuple[int, int]:
        channel: Channel[list[int]] = Channel(10, size=len)
        await channel.send([1, 2, 3])
        await channel.send([4, 5])
        await channel.receive()
        await channel.send([6])
        return channel.used, channel.peak

    assert run(main()) == (3, 5)
