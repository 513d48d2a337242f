"""Vectorised per-row hashing kernels behind ``hash_rows`` (method ``arrow_row_v1``).

Input is the canonical column tree (:mod:`orcapod.hashing.canon`, built by
:mod:`orcapod.hashing.arrow_canonical`); output is, per row, two independent 64-bit lanes,
stored lane-major as a ``(2, n)`` uint64 array (so per-lane constants broadcast over long
contiguous rows). No step loops per row: all work is whole-block
numpy operations, and long arrays are processed in cache-sized blocks (a block's temporaries
stay in L2, and no large temporaries are allocated).

The algorithm (every value below is per lane; lane seeds differ):

* ``mix`` is the splitmix64 finaliser: add the golden gamma, then xor-shift-multiply twice and
  a final xor-shift. It is a bijection on 64 bits with full avalanche.
* Every node of a column's type tree has a 128-bit seed ``s`` (two lanes), derived with
  ``xxh3_128`` from its parent's seed and a label (``item``, ``field\\0<name>``, …). The column
  seed comes from the column name and its logical type, so names and types are bound into
  every value hash.
* fixed-width value with 64-bit words ``w0..wk``: ``h = mix(w0 ^ s)``, then ``h = mix(h ^ wj)``.
* sequence of items (string/binary: the bytes as 8-byte little-endian words, the last one
  zero-padded; list: its children's row hashes under the child seed): the item at position
  ``p`` gives the term ``mix(item ^ (p * pos_s + item_s))``; the terms of an element are
  summed mod 2^64 (a running prefix sum; an element's sum is the difference at its
  boundaries, so empty elements sum to 0); the element hash is
  ``mix(sum + length * len_s + s)``, with the length in bytes or items, so trailing zero bytes
  and empty values are distinct. ``pos_s`` and ``len_s`` are odd, so distinct positions and
  lengths stay distinct.
* struct: ``mix((sum over fields of field_hash) ^ s)``, each field under the seed derived from
  its name.
* a null slot, at any depth, is the constant ``mix(s_null)`` of its node, distinct from every
  value hash of that node.
* row: ``mix((sum over columns of column_hash) ^ s_table)``, ``s_table`` binding the sorted
  ``[name, logical type]`` list (done by the caller).

Sums of terms that are already bound to a name or position are order-free by construction;
that is what makes column order irrelevant while order inside values still matters. The
result is a well-mixed 128-bit identity for honest data, not a cryptographic hash.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xxhash
from numpy.typing import NDArray

from orcapod.hashing.canon import Canon

__all__ = ["derive_seed", "lanes", "mix_rows", "node_rows"]

U64 = np.uint64
_GAMMA = U64(0x9E3779B97F4A7C15)
_C1 = U64(0xBF58476D1CE4E5B9)
_C2 = U64(0x94D049BB133111EB)
_BLOCK = 16384  # rows per block: (2, 16384) uint64 = 256 KiB per temporary, stays in L2
_TAIL_MASKS = np.array([(1 << (8 * r)) - 1 for r in range(8)] + [2**64 - 1], dtype=U64)

Hashes = NDArray[np.uint64]
# item_fn(start, stop, first_elem, counts, pos): item values for items start:stop, where
# counts[j] items of the block belong to element first_elem + j and pos is each item's position.
ItemFn = Callable[[int, int, int, NDArray[np.int64], NDArray[np.int64]], Hashes]


def lanes(seed: bytes) -> Hashes:
    """The two 64-bit lanes of a 16-byte seed (little-endian), as a ``(2, 1)`` column."""
    return np.frombuffer(seed, dtype="<u8").astype(U64).reshape(2, 1)


def derive_seed(seed: bytes, label: bytes) -> bytes:
    return xxhash.xxh3_128(seed + label).digest()


def _mix_block(xb: Hashes, tb: Hashes) -> None:
    """splitmix64 finaliser in place on a cache-sized block; ``tb`` is scratch of its shape."""
    xb += _GAMMA
    np.right_shift(xb, U64(30), out=tb)
    xb ^= tb
    xb *= _C1
    np.right_shift(xb, U64(27), out=tb)
    xb ^= tb
    xb *= _C2
    np.right_shift(xb, U64(31), out=tb)
    xb ^= tb


def mix_rows(x: Hashes) -> Hashes:
    """``mix`` in place over a ``(2, m)`` array, block by block; returns ``x``."""
    m = x.shape[1]
    tmp = np.empty((2, min(_BLOCK, m)), dtype=U64)
    for start in range(0, m, _BLOCK):
        xb = x[:, start : start + _BLOCK]
        _mix_block(xb, tmp[:, : xb.shape[1]])
    return x


def _null_hash(seed: bytes) -> Hashes:
    return mix_rows(lanes(derive_seed(seed, b"null")).copy())


def node_rows(c: Canon, seed: bytes) -> Hashes:
    """``(2, n)`` lane hashes of one canonical node under ``seed``."""
    n = c.length
    if c.kind == "fixed":
        out = np.empty((2, n), dtype=U64)
        scratch = np.empty((2, min(_BLOCK, n)), dtype=U64)
        for start in range(0, n, _BLOCK):
            stop = min(start + _BLOCK, n)
            _fixed_block(c, seed, start, stop, out[:, start:stop], scratch[:, : stop - start])
        return out
    if c.kind == "null":
        h = np.empty((2, n), dtype=U64)
    elif c.kind == "bytes":
        h = _bytes_rows(c, seed)
    elif c.kind == "list":
        h = _list_rows(c, seed)
    else:  # struct
        h = np.zeros((2, n), dtype=U64)
        for name, child in c.children:
            h += node_rows(child, derive_seed(seed, b"field\0" + name.encode("utf-8")))
        h ^= lanes(seed)
        mix_rows(h)
    if c.valid is not None:
        h[:, ~c.valid] = _null_hash(seed)
    return h


def _fixed_block(c: Canon, seed: bytes, start: int, stop: int, out: Hashes, tb: Hashes) -> None:
    """Hashes of rows ``start:stop`` of a fixed-width node, written into ``out``."""
    assert c.words is not None
    words = c.words[start:stop]
    np.bitwise_xor(words[:, 0].reshape(1, -1), lanes(seed), out=out)
    _mix_block(out, tb)
    for j in range(1, words.shape[1]):
        out ^= words[:, j].reshape(1, -1)
        _mix_block(out, tb)
    if c.valid is not None:
        out[:, ~c.valid[start:stop]] = _null_hash(seed)


def _list_rows(c: Canon, seed: bytes) -> Hashes:
    assert c.offsets is not None
    child = c.children[0][1]
    child_seed = derive_seed(seed, b"item")
    item_fn: ItemFn
    if child.kind == "fixed":
        # Computed block by block inside the sequence kernel (same values as node_rows).
        def item_fn(start: int, stop: int, *_: object) -> Hashes:
            out = np.empty((2, stop - start), dtype=U64)
            _fixed_block(child, child_seed, start, stop, out, np.empty_like(out))
            return out

    else:
        child_hashes = node_rows(child, child_seed)

        def item_fn(start: int, stop: int, *_: object) -> Hashes:
            return child_hashes[:, start:stop]

    return _sequence_rows(c.offsets, np.diff(c.offsets), item_fn, seed)


def _bytes_rows(c: Canon, seed: bytes) -> Hashes:
    """Strings/binary: each value as 8-byte little-endian words, then ``_sequence_rows``."""
    assert c.offsets is not None and c.data is not None
    lengths = np.diff(c.offsets)
    if len(lengths) and lengths[0] > 0 and np.all(lengths == lengths[0]):
        return _equal_length_rows(c.data, len(lengths), int(lengths[0]), seed)
    return _any_length_rows(c, seed)


def _any_length_rows(c: Canon, seed: bytes) -> Hashes:
    """``_bytes_rows`` of values of any lengths."""
    assert c.offsets is not None and c.data is not None
    offsets = c.offsets
    lengths = np.diff(offsets)
    word_offsets = np.zeros(len(offsets), dtype=np.int64)
    np.cumsum((lengths + 7) // 8, out=word_offsets[1:])
    padded = np.zeros(len(c.data) + 8, dtype=np.uint8)
    padded[: len(c.data)] = c.data
    # Unaligned 8-byte windows starting at every byte: one gather reads each word.
    windows = np.ndarray(shape=(len(c.data) + 1,), dtype="<u8", buffer=padded, strides=(1,))

    def item_fn(
        _s: int, _t: int, first: int, counts: NDArray[np.int64], pos: NDArray[np.int64]
    ) -> Hashes:
        last = first + len(counts)
        byte_pos = np.repeat(offsets[first:last], counts) + 8 * pos
        words: Hashes = windows[byte_pos].astype(U64)
        remaining = np.minimum(np.repeat(offsets[first + 1 : last + 1], counts) - byte_pos, 8)
        words &= _TAIL_MASKS[remaining]
        return words.reshape(1, -1)

    return _sequence_rows(word_offsets, lengths, item_fn, seed)


def _equal_length_rows(data: NDArray[np.uint8], n: int, length: int, seed: bytes) -> Hashes:
    """``_bytes_rows`` of ``n`` values of one byte ``length`` (hashes, ids, constant columns):
    the same sums computed word position by word position over an ``(n, words)`` array,
    without the running prefix sum that variable lengths need."""
    k = (length + 7) // 8
    padded = np.zeros((n, 8 * k), dtype=np.uint8)
    padded[:, :length] = data[: n * length].reshape(n, length)
    words = padded.view("<u8").astype(U64)
    pos_factor = lanes(derive_seed(seed, b"pos")) | U64(1)
    item_seed = lanes(derive_seed(seed, b"item"))
    out = np.zeros((2, n), dtype=U64)
    term = np.empty((2, n), dtype=U64)
    for p in range(k):
        np.bitwise_xor(words[:, p].reshape(1, -1), U64(p) * pos_factor + item_seed, out=term)
        out += mix_rows(term)
    out += U64(length) * (lanes(derive_seed(seed, b"len")) | U64(1))
    out += lanes(seed)
    return mix_rows(out)


def _sequence_rows(
    item_offsets: NDArray[np.int64], lengths: NDArray[np.int64], item_fn: ItemFn, seed: bytes
) -> Hashes:
    """Order-aware hash of variable-length elements; see the module docstring.

    Items are visited in blocks; for each block, ``item_fn`` (see ``ItemFn``) returns the item
    values ``(1, k)`` or ``(2, k)``.
    The running prefix sum of the terms is kept only at element boundaries.
    """
    n = len(item_offsets) - 1
    m = int(item_offsets[-1])
    pos_factor = lanes(derive_seed(seed, b"pos")) | U64(1)
    item_seed = lanes(derive_seed(seed, b"item"))
    bounds = np.zeros((2, n + 1), dtype=U64)  # prefix sum at each element boundary
    carry = np.zeros((2, 1), dtype=U64)
    for start in range(0, m, _BLOCK):
        stop = min(start + _BLOCK, m)
        e_lo = int(np.searchsorted(item_offsets, start, "right")) - 1
        e_hi = int(np.searchsorted(item_offsets, stop, "left"))
        counts = np.minimum(item_offsets[e_lo + 1 : e_hi + 1], stop) - np.maximum(
            item_offsets[e_lo:e_hi], start
        )
        pos = np.arange(start, stop, dtype=np.int64)
        pos -= np.repeat(item_offsets[e_lo:e_hi], counts)
        terms = pos.view(U64).reshape(1, -1) * pos_factor
        terms += item_seed
        terms ^= item_fn(start, stop, e_lo, counts, pos)
        _mix_block(terms, np.empty_like(terms))
        np.cumsum(terms, axis=1, out=terms)
        terms += carry
        j_lo = int(np.searchsorted(item_offsets, start, "right"))
        j_hi = int(np.searchsorted(item_offsets, stop, "right"))
        ends = item_offsets[j_lo:j_hi] - (start + 1)
        for lane in (0, 1):  # two 1-D gathers are much faster than one 2-D fancy index
            np.take(terms[lane], ends, out=bounds[lane, j_lo:j_hi])
        carry = terms[:, -1:].copy()
    len_factor = lanes(derive_seed(seed, b"len")) | U64(1)
    node_seed = lanes(seed)
    out = np.empty((2, n), dtype=U64)
    tmp = np.empty((2, min(_BLOCK, n)), dtype=U64)
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        ob = out[:, start:stop]
        tb = tmp[:, : stop - start]
        np.subtract(bounds[:, start + 1 : stop + 1], bounds[:, start:stop], out=ob)
        np.multiply(lengths[start:stop].view(U64).reshape(1, -1), len_factor, out=tb)
        ob += tb
        ob += node_seed
        _mix_block(ob, tb)
    return out
