"""How many bytes a run's buffered outputs hold, estimated (the writer's ``FlushPolicy.bytes``
limit): every output's values while fewer than ``SAMPLE_EVERY`` were counted, then every
``SAMPLE_EVERY``-th output's, counted ``SAMPLE_EVERY`` times."""

from __future__ import annotations

import numpy as np

from orcapod.data import Packet
from orcapod.functions.provenance import OwnValues

__all__ = ["SAMPLE_EVERY", "output_bytes", "sampled"]

SAMPLE_EVERY = 64


def output_bytes(output: Packet | OwnValues | None) -> int:
    """A quick estimate of the bytes an output's values hold (strings, bytes and arrays by
    their size, lists by their items, anything else as 8 bytes)."""
    if output is None:
        return 0
    values = output.as_dict() if isinstance(output, Packet) else output
    return sum(_value_bytes(v) for v in values.values())


def _value_bytes(value: object) -> int:
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, list | tuple):
        return 8 + sum(_value_bytes(v) for v in value)
    return 8


def sampled(before: int, start: int, end: int) -> range | list[int]:
    """Positions in ``[start, end)`` of the outputs whose size ``add_computed`` counts, when
    ``before`` outputs came earlier: numbers 1 to ``SAMPLE_EVERY - 1``, then every multiple
    of ``SAMPLE_EVERY``."""
    first = start + max(0, min(end - start, SAMPLE_EVERY - 1 - before))
    number = max(SAMPLE_EVERY, -(-(before + first - start + 1) // SAMPLE_EVERY) * SAMPLE_EVERY)
    every = range(start + number - before - 1, end, SAMPLE_EVERY)
    return [*range(start, first), *every] if first > start else every
