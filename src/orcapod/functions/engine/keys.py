"""128-bit identity keys as numpy arrays: dedupe and matching of ids at array speed.

Every id a ``FunctionNode`` matches - pipeline entry ids, input packet hashes, result record
ids - is a 16-byte digest, stored as a string ending in its 32 hex digits
(``"arrow_row_v1:<hex>"`` or ``"<hex>"``). Hashing a million 45-byte strings into an Arrow hash
table (``is_in`` / ``index_in`` / ``dictionary_encode``) costs ~0.3-1 s; the same work on the
digests as two ``uint64`` lanes is a numpy sort plus ``searchsorted``.

* ``digest_keys`` views fixed-size binary digests as ``(n, 2)`` uint64 (no copy);
  ``string_keys`` decodes the trailing 32 hex digits of id strings to the same keys
  (vectorised when all strings have one length, which ids written by orcapod do).
* ``unique_keys`` / ``match_keys`` sort on lane 0 and confirm lane 1. When two different keys
  share lane 0 (probability ~n²/2⁶⁵, i.e. never in practice) they fall back to an exact Arrow
  computation on the full 16 bytes, so the result is always exact.
* ``SeenHashes`` keeps hash strings by the first lane of their keys (spilling to disk), for
  a run asking whether it computed an input hash already.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from orcapod._arrow_without_pandas import column_numpy
from orcapod._lazy import pc
from orcapod.databases.id_index import IdHashIndex, fixed_hex_tail
from orcapod.errors import DatabaseError

__all__ = [
    "SeenHashes",
    "digest_keys",
    "keys_to_binary",
    "match_keys",
    "string_keys",
    "unique_keys",
    "unique_keys_ordered",
]

_HEX_DIGITS = 32
_INVALID = 256


def digest_keys(digests: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """``(n, 2)`` uint64 view of 16-byte digests."""
    if isinstance(digests, pa.ChunkedArray):
        digests = digests.combine_chunks()
    n = len(digests)
    if n == 0:
        return np.empty((0, 2), dtype="<u8")
    raw = np.frombuffer(digests.buffers()[1], dtype=np.uint8)
    raw = raw[digests.offset * 16 : (digests.offset + n) * 16]
    return raw.view("<u8").reshape(n, 2)


def keys_to_binary(keys: np.ndarray) -> pa.Array:
    """The 16-byte digests of ``keys`` (inverse of ``digest_keys``)."""
    data = np.ascontiguousarray(keys, dtype="<u8")
    return pa.Array.from_buffers(pa.binary(16), len(keys), [None, pa.py_buffer(data)])


def string_keys(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Keys of id strings (their last 32 characters are the digest in hex)."""
    if isinstance(ids, pa.ChunkedArray):  # chunk by chunk: no copy of the strings
        parts = [string_keys(chunk) for chunk in ids.chunks]
        return np.concatenate(parts) if parts else np.empty((0, 2), dtype="<u8")
    n = len(ids)
    if n == 0:
        return np.empty((0, 2), dtype="<u8")
    if ids.null_count:
        raise DatabaseError(
            f"{ids.null_count} stored id(s) are null; the table was not written by orcapod "
            "or is damaged"
        )
    values = fixed_hex_tail(ids, _HEX_DIGITS)  # (n, 16): one byte per hex pair
    if values is not None and int(values.max()) < _INVALID:
        return values.astype(np.uint8).view("<u8").reshape(n, 2)
    try:
        raw = b"".join(bytes.fromhex(s[-_HEX_DIGITS:]) for s in ids.cast(pa.string()).to_pylist())
    except (ValueError, pa.ArrowInvalid) as err:
        raise DatabaseError(
            f"stored ids are not orcapod digests (expected strings ending in {_HEX_DIGITS} hex "
            f"digits): {err}"
        ) from err
    if len(raw) != 16 * n:
        raise DatabaseError(
            f"stored ids are not orcapod digests (expected strings ending in {_HEX_DIGITS} hex "
            "digits)"
        )
    return np.frombuffer(raw, dtype="<u8").reshape(n, 2)


def unique_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, first)``: per key the index of its distinct value, and per distinct value
    the first row holding it (distinct values ordered by first appearance)."""
    codes, first, _ = unique_keys_ordered(keys)
    return codes, first


def unique_keys_ordered(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``unique_keys``, and, when every key is distinct, the order that sorts the keys on
    their first lane (what a caller matching them against sorted keys needs: it is
    computed on the way); None otherwise."""
    n = len(keys)
    if n == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy()
    order = np.argsort(keys[:, 0])
    lane0 = keys[order, 0]
    new = np.r_[True, lane0[1:] != lane0[:-1]]
    if new.all():  # every key distinct (the common case): each row is its own first row
        every = np.arange(n, dtype=np.int64)
        return every, every.copy(), order
    first = np.minimum.reduceat(order, np.flatnonzero(new))
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    if not np.array_equal(keys[first[inverse], 1], keys[:, 1]):  # a lane-0 collision
        encoded = pc.dictionary_encode(keys_to_binary(keys))
        inverse = column_numpy(encoded.indices).astype(np.int64)
        first = np.full(len(encoded.dictionary), n, dtype=np.int64)
        np.minimum.at(first, inverse, np.arange(n, dtype=np.int64))
    # renumber distinct values in order of first appearance
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse].astype(np.int64), first[order].astype(np.int64), None


def match_keys(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per query key: the index of the equal key in ``reference``, or -1.

    ``reference`` holds distinct keys (for repeated ones, any of their indices is returned).
    """
    out = np.full(len(query), -1, dtype=np.int64)
    if len(query) == 0 or len(reference) == 0:
        return out
    order = np.argsort(reference[:, 0])
    lane0 = reference[order, 0]
    if len(lane0) > 1 and not np.all(lane0[1:] != lane0[:-1]):
        exact = pc.index_in(keys_to_binary(query), value_set=keys_to_binary(reference))
        return column_numpy(exact.fill_null(-1)).astype(np.int64)
    query_order = np.argsort(query[:, 0])  # sorted probes: searchsorted stays in cache
    probes = query[query_order]
    at = np.minimum(np.searchsorted(lane0, probes[:, 0]), len(lane0) - 1)
    candidate = order[at]
    hit = (lane0[at] == probes[:, 0]) & (reference[candidate, 1] == probes[:, 1])
    out[query_order[hit]] = candidate[hit]
    return out


class SeenHashes:
    """A set of hash strings (ids ending in their digest's hex), kept as the first 64 bits of
    their keys: a run asks whether it computed an input hash before. A 64-bit coincidence
    counts as seen. Runs of ``spill_rows`` keys move to a temporary file, with no filter
    (``IdHashIndex``): a few kilobytes per million hashes stay in memory."""

    def __init__(self, spill_rows: int) -> None:
        self._keys = IdHashIndex(spill_rows=spill_rows, bloom_bits=0)

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, hashes: pa.Array) -> None:
        if len(hashes):
            self._keys.add(string_keys(hashes)[:, 0].copy())

    def contains(self, hashes: pa.Array) -> np.ndarray:
        """Per hash: was it added?"""
        if not len(self._keys):
            return np.zeros(len(hashes), dtype=bool)
        return self._keys.maybe_contains(string_keys(hashes)[:, 0].copy())
