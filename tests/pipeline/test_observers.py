"""Run observers: which packet hooks the engine calls for them."""

from __future__ import annotations

from orcapod.functions.engine.events import PacketRun
from orcapod.pipeline import CompositeObserver, NoOpObserver, StatusObserver


class Starter(NoOpObserver):
    def __init__(self) -> None:
        self.keys: list[int] = []

    def on_packet_start(self, run: PacketRun, key: int) -> None:
        self.keys.append(key)


def test_only_observers_with_their_own_packet_start_hear_each_call_start():
    assert not NoOpObserver().hears_packet_start
    assert not StatusObserver().hears_packet_start
    assert Starter().hears_packet_start


def test_a_composite_hears_call_starts_when_one_of_its_observers_does():
    assert not CompositeObserver(NoOpObserver(), StatusObserver()).hears_packet_start
    starter = Starter()
    composite = CompositeObserver(StatusObserver(), starter)
    assert composite.hears_packet_start
    composite.on_packet_start(None, 7)  # type: ignore[arg-type]
    assert starter.keys == [7]
