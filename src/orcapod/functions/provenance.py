"""Deterministic result record ids and the (lazy) source info of computed output packets.

Record id. A result is identified by what determines it: the input packet's content hash,
the function's code hash and the execution data (executor type and options, Python
version)::

    record_id = blake2b(input_hash "\\0" code_hash "\\0" canonical-JSON(execution), 16).hex()

It is the result table's record id, the ``<record_id>`` of every output column's source info
``<uri joined by ':'>::<record_id>::<column>``, and what pipeline records store as
``__packet_id``. No uuids: recomputing the same packet with the same code on the same kind of
executor reproduces the same provenance, and storing that result again is a duplicate id
(skipped), not a second row. The function URI is not part of the id because every result table
is already scoped by the URI (and the URI is the prefix of the source-info token). Git state is
not part of it either: it is recorded with the result, never a key.

Lazy source info. Computing a record id needs the input packet's hash, and hashing one packet
alone means building a one-row Arrow table (tens of microseconds) — far more than the whole
per-packet budget of a function pod. ``LazySourceInfo`` is the ``Mapping`` handed to
``Packet._make`` as source info; it computes the tokens the first time they are read (for
example by ``as_table(columns={"source": True})`` or when a cache stores the result) and by then
the input hash is usually known already (a cache computes it, vectorised, to look the packet up).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod._lazy import pc
from orcapod.data import Packet
from orcapod.data.conversion import rows_to_table
from orcapod.data.row_block import RowBlock
from orcapod.hashing import hash_rows
from orcapod.hashing.arrow_hashing import ROW_HASH_METHOD, digests_to_hex
from orcapod.types import ContentHash, Schema
from orcapod.types.columns import BLOCK_SEP, FIELD_SEP, SOURCE_PREFIX

__all__ = [
    "CODE_HASH_KEY",
    "LazySourceInfo",
    "OwnValues",
    "RecordIdMaker",
    "derivable",
    "execution_digest",
    "output_record_id",
    "packet_hashes",
    "project_packet",
    "prime_source_info",
    "resolve_source_info",
    "result_record_id",
    "result_record_ids",
    "source_columns",
    "source_prefix",
]

#: A computed output given as its values only (see ``ResultCache.own_values``).
OwnValues = dict[str, Any]

#: The variation-data key holding the code hash (column ``__pf_var_function_content_hash``).
CODE_HASH_KEY = "function_content_hash"


def execution_digest(code_hash: str, execution: Mapping[str, Any]) -> bytes:
    """The part of a record id that depends on the function, not on the packet."""
    text = code_hash + "\0" + json.dumps(dict(execution), sort_keys=True, default=str)
    return text.encode()


def result_record_id(input_hash: str | ContentHash, suffix: bytes) -> str:
    """Record id of the result of one input packet (see the module docstring)."""
    text = input_hash.to_string() if isinstance(input_hash, ContentHash) else input_hash
    return hashlib.blake2b(text.encode() + b"\0" + suffix, digest_size=16).hexdigest()


def output_record_id(record_id: str, output_digest: bytes) -> str:
    """Record id of a result whose input already has another output stored under
    ``record_id``: derived from that id and the new output's row hash."""
    return hashlib.blake2b(record_id.encode() + b"\0" + output_digest, digest_size=16).hexdigest()


def result_record_ids(input_hashes: Sequence[str], suffix: bytes) -> list[str]:
    """``result_record_id`` of many input hashes (hash strings) sharing one ``suffix``."""
    ids: list[str] = result_record_id_array(
        pa.array(input_hashes, pa.large_string()), suffix
    ).to_pylist()
    return ids


def result_record_id_array(input_hashes: pa.Array | pa.ChunkedArray, suffix: bytes) -> pa.Array:
    """``result_record_ids`` of an Arrow array of input hash strings, as a ``large_string``
    array: the digests are taken from the array's bytes and written as hex with numpy, so no
    Python string is made per row."""
    hashes = input_hashes.cast(pa.large_string())
    if isinstance(hashes, pa.ChunkedArray):
        hashes = hashes.combine_chunks()
    n = len(hashes)
    if n == 0:
        return pa.array([], type=pa.large_string())
    offsets = np.frombuffer(hashes.buffers()[1], dtype=np.int64)[hashes.offset :][: n + 1]
    start = int(offsets[0])
    tail = b"\0" + suffix
    width = int(offsets[1]) - start
    if tail[-1] != 0 and width > 0 and int(offsets[-1]) - start == n * width:
        digests = _fixed_width_digests(hashes.buffers()[2], start, n, width, tail)
    else:
        data = hashes.buffers()[2].to_pybytes()[start : int(offsets[-1])]
        bounds = (offsets - start).tolist()
        blake2b = hashlib.blake2b
        digests = b"".join(
            [
                blake2b(data[a:b] + tail, digest_size=16).digest()
                for a, b in itertools.pairwise(bounds)
            ]
        )
    return digests_to_hex(
        pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [None, pa.py_buffer(digests)])
    )


def _fixed_width_digests(data: pa.Buffer, start: int, n: int, width: int, tail: bytes) -> bytes:
    """The record-id digests of ``n`` hash strings of one ``width`` (every hash of one
    algorithm), stored back to back from ``start`` in ``data``: the messages (hash + tail) are
    laid out as the rows of one numpy array and handed to blake2b as bytes objects made in
    one go (numpy's fixed-width bytes strip trailing NULs, so ``tail`` must not end in one)."""
    heads = np.frombuffer(data, dtype=np.uint8)[start : start + n * width].reshape(n, width)
    rows = np.empty((n, width + len(tail)), dtype=np.uint8)
    rows[:, :width] = heads
    rows[:, width:] = np.frombuffer(tail, dtype=np.uint8)
    messages: list[bytes] = rows.view(f"S{width + len(tail)}").ravel().tolist()
    blake2b = hashlib.blake2b
    return b"".join([blake2b(m, digest_size=16).digest() for m in messages])


def source_prefix(uri: tuple[str, ...]) -> str:
    """``<uri joined by ':'>::`` — the start of every output source-info token."""
    return FIELD_SEP.join(uri) + BLOCK_SEP


class RecordIdMaker:
    """Makes record ids and source-info tokens for one (function identity, execution)."""

    __slots__ = ("prefix", "suffix")

    def __init__(self, uri: tuple[str, ...], code_hash: str, execution: Mapping[str, Any]):
        self.prefix = source_prefix(uri)
        self.suffix = execution_digest(code_hash, execution)

    def record_id(self, input_hash: str | ContentHash) -> str:
        return result_record_id(input_hash, self.suffix)

    def source_info(self, keys: tuple[str, ...], record_id: str) -> dict[str, str]:
        head = self.prefix + record_id + BLOCK_SEP
        return {k: head + k for k in keys}


class LazySourceInfo(Mapping[str, Any]):
    """Source info of a computed packet, resolved on first read (see the module docstring).

    It keeps what hashing the input needs — the input packet's value dict and schema, and its
    hash when already known — not the input packet itself (fewer live objects per cached row).
    ``function.record_id_maker_for(executor)`` gives the ``RecordIdMaker`` of the call that
    produced the packet (the executor used by that call: a function may get another one later).
    """

    __slots__ = (
        "_block",
        "_data",
        "_executor",
        "_function",
        "_hash",
        "_keys",
        "_row",
        "_schema",
        "_values",
    )

    def __init__(
        self, keys: tuple[str, ...], input_packet: Packet, function: Any, executor: Any
    ) -> None:
        self._keys = keys
        known = input_packet._hash  # trusted fast paths of the data layer: no copies
        self._hash: ContentHash | None = known
        # the input is kept only to hash it later: not when the hash is known already. A
        # block-backed input (``orcapod.data.row_block``) is kept as (block, row): no per-row
        # dict stays alive, and its hash comes from one vectorised hash of the block.
        block = input_packet._block if known is None else None
        self._block: RowBlock | None = block
        self._row = input_packet._row
        self._data: dict[str, Any] | None = (
            input_packet._dict() if known is None and block is None else None
        )
        self._schema: Schema | None = input_packet._schema if known is None else None
        self._function = function
        self._executor = executor
        self._values: dict[str, str] | None = None

    @property
    def resolved(self) -> bool:
        return self._values is not None

    def _input_hash(self) -> ContentHash:
        if self._hash is not None:
            return self._hash
        assert self._schema is not None
        if self._block is not None:  # the block's vectorised hash, else the row's own
            return Packet._make_row(self._block, self._row, self._schema).content_hash()
        assert self._data is not None
        return Packet._make(self._data, self._schema).content_hash()

    def _resolve(self, input_hash: ContentHash | None = None) -> dict[str, str]:
        values = self._values
        if values is None:
            if input_hash is None:
                input_hash = self._input_hash()
            maker: RecordIdMaker = self._function.record_id_maker_for(self._executor)
            values = maker.source_info(self._keys, maker.record_id(input_hash))
            self._values = values
            self._data = self._schema = self._hash = self._block = None  # input not needed
            self._function = self._executor = None
        return values

    def resolve_with(self, input_hash: ContentHash) -> None:
        """Resolve using a known hash of the input packet (e.g. from a vectorised hash)."""
        self._resolve(input_hash)

    def __getitem__(self, key: str) -> str:
        return self._resolve()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __repr__(self) -> str:
        state = "unresolved" if self._values is None else repr(self._values)
        return f"LazySourceInfo({state})"


def project_packet(packet: Packet, parameters: Schema) -> Packet:
    """``packet`` reduced to the columns a function with ``parameters`` reads: the packet a
    cached function hashes (its cache key) and calls. The packet itself when it has no other
    columns, or none of the parameters (a function without parameters reads it whole)."""
    schema = packet._schema  # the data layer's schema slot: no values are built for the check
    if len(schema) <= len(parameters) and all(k in parameters for k in schema):
        return packet
    names = [k for k in schema if k in parameters]
    return packet.select(*names) if names else packet


def packet_hashes(packets: Sequence[Packet]) -> list[ContentHash]:
    """Content hashes of packets, vectorised (one ``hash_rows``) when they share a schema.

    Equal to ``packet.content_hash()`` of each: row ``i`` of ``hash_rows(t)`` is the hash of
    ``t.slice(i, 1)``, and a packet hashes the one-row table of its own values and schema.
    """
    if not packets:
        return []
    if all(p._hash_ready() for p in packets):  # stream rows: their blocks hash vectorised
        return [p.content_hash() for p in packets]
    schema = packets[0].schema()
    if len(packets) > 1 and all(p.schema() == schema for p in packets):
        table = rows_to_table([p.as_dict() for p in packets], schema)
        return [ContentHash(ROW_HASH_METHOD, d) for d in hash_rows(table).to_pylist()]
    return [p.content_hash() for p in packets]


def _lazy_info(packet: Packet) -> LazySourceInfo | None:
    info = getattr(packet, "_hidden", None)  # the data layer's private slot (source info)
    return info if isinstance(info, LazySourceInfo) and not info.resolved else None


def prime_source_info(packet: Packet, input_hash: ContentHash) -> None:
    """Give ``packet``'s lazy source info its input's hash (known to the caller), if unresolved."""
    info = _lazy_info(packet)
    if info is not None:
        info.resolve_with(input_hash)


def resolve_source_info(packets: Iterable[Packet]) -> None:
    """Resolve the lazy source info of many packets with one vectorised hash per input schema
    (inputs backed by a row block use the block's own vectorised hash)."""
    pending: dict[int, tuple[Schema, list[LazySourceInfo]]] = {}
    for packet in packets:
        info = _lazy_info(packet)
        if info is None:
            continue
        if info._hash is not None or info._block is not None:
            info._resolve()
            continue
        assert info._schema is not None
        group = pending.setdefault(id(info._schema), (info._schema, []))
        group[1].append(info)
    for schema, infos in pending.values():
        table = rows_to_table([info._data or {} for info in infos], schema)
        digests = hash_rows(table).to_pylist()
        for info, digest in zip(infos, digests, strict=True):
            info.resolve_with(ContentHash(ROW_HASH_METHOD, digest))


def source_columns(
    prefix: str,
    packets: Sequence[Packet | OwnValues | None],
    id_array: pa.Array,
    keys: tuple[str, ...],
    suffix: bytes,
) -> dict[str, pa.Array]:
    """``_source_<k>`` columns: null for a filtered row, else the packet's source info.

    A packet whose source info is still unresolved and would resolve to a result cache's own
    tokens (source ``prefix``, record-id ``suffix``; the input hash is the stored one, as
    ``prime_source_info`` gives it) gets ``<prefix><record id>::<k>`` built with Arrow
    string kernels from the record ids - the same strings, without resolving per row. Any
    other packet's source info is read per row; a missing value becomes the same token.
    """
    derived = derivable(prefix, packets, suffix)
    # other lazy source info: resolved with one vectorised hash, not one per packet
    resolve_source_info(
        p for p, d in zip(packets, derived, strict=True) if not d and isinstance(p, Packet)
    )
    explicit: list[dict[str, Any] | None] = [None] * len(packets)
    any_explicit = False
    for i, (packet, derive) in enumerate(zip(packets, derived, strict=True)):
        if packet is None or derive or type(packet) is dict:
            continue
        assert isinstance(packet, Packet)
        any_explicit = True
        info = packet.source_info()
        if any(v is None for v in info.values()):
            head = prefix + id_array[i].as_py() + BLOCK_SEP
            info.update({k: head + k for k, v in info.items() if v is None})
        explicit[i] = info
    large = pa.large_string()
    n_derived = sum(derived)
    mask = pa.array(derived, type=pa.bool_())
    columns: dict[str, pa.Array] = {}
    for k in keys:
        if any_explicit:
            given = pa.array([None if s is None else s.get(k) for s in explicit], type=large)
        else:
            given = pa.nulls(len(packets), type=large)
        if n_derived == 0:
            column = given
        else:
            tokens = pc.binary_join_element_wise(
                pa.scalar(prefix, type=large),
                id_array,
                pa.scalar(BLOCK_SEP + k, type=large),
                pa.scalar("", type=large),
            )
            column = tokens if n_derived == len(packets) else pc.if_else(mask, tokens, given)
        columns[SOURCE_PREFIX + k] = column
    return columns


def derivable(
    prefix: str, packets: Sequence[Packet | OwnValues | None], suffix: bytes
) -> list[bool]:
    """Per output: a value dict, or a packet whose source info is unresolved
    ``LazySourceInfo`` that would give the tokens of a result cache with source ``prefix``
    and record-id ``suffix``?"""
    out: list[bool] = []
    append = out.append
    last: tuple[Any, Any] | None = None  # (function, executor) of the last check
    ok = False
    for packet in packets:
        if type(packet) is dict:
            append(True)
            continue
        info = getattr(packet, "_hidden", None)  # the data layer's private slot (source info)
        if type(info) is not LazySourceInfo or info._values is not None:
            append(False)
            continue
        function, executor = info._function, info._executor
        if last is None or function is not last[0] or executor is not last[1]:
            maker = function.record_id_maker_for(executor)
            ok = maker.prefix == prefix and maker.suffix == suffix
            last = (function, executor)
        append(ok)
    return out
