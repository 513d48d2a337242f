"""The canonical column tree (:class:`Canon`): numpy views of a column's logical values.

:mod:`orcapod.hashing.arrow_canonical` builds it from Arrow columns (where every physical
choice is fixed, see its docstring); :mod:`orcapod.hashing.row_kernels` and ``hash_table``
consume it. It lives in its own module so the kernels sit below the canonicalisation, which
uses them to order map entries whose keys Arrow cannot sort.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

__all__ = ["Canon", "Kind"]

Kind = Literal["null", "fixed", "bytes", "list", "struct"]


@dataclass(frozen=True, slots=True, eq=False)
class Canon:
    """Canonical column: numpy views with every physical choice fixed.

    ``kind`` decides which fields are set:

    * ``fixed``: ``words`` (n, k) uint64, logical values in native byte order (the hashers
      serialise them little-endian), zero under nulls;
    * ``bytes``: ``offsets`` (n + 1 int64, from 0, null slots empty) and ``data`` (uint8);
    * ``list``: ``offsets`` and one child; ``struct``: children sorted by name;
    * ``null``: nothing.
    """

    kind: Kind
    length: int
    valid: NDArray[np.bool_] | None
    words: NDArray[np.uint64] | None = None
    offsets: NDArray[np.int64] | None = None
    data: NDArray[np.uint8] | None = None
    children: tuple[tuple[str, Canon], ...] = ()
