"""Look up: the engine's second phase - which input hashes the result cache already answers.

``lookup(cache, hashes, constraints)`` asks the cache ONE question for a whole batch of input
packet hashes (an Arrow string array) and answers with Arrow arrays aligned with them, never a
Python object per row: ``record_ids`` (the stored result's id, null for a miss or a filtered
result), ``hit`` (a stored output) and ``filtered`` (a stored "the function returned None").
Only the columns that decide this are read (input hash, record id, ``__pod_ts``, the
outputs' ``_source_*`` columns); several matches of one hash resolve to the newest
``__pod_ts`` (``ResultCache.lookup_table``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod._arrow_without_pandas import column_numpy
from orcapod._lazy import pc
from orcapod.functions.result_cache import ResultCache
from orcapod.types.columns import INPUT_PACKET_HASH, RECORD_ID, source_column

__all__ = ["Answers", "lookup"]


@dataclass(frozen=True)
class Answers:
    """The cache's answers for a batch of input hashes (aligned with them)."""

    record_ids: pa.Array  #: large_string; null where there is no stored output
    hit: np.ndarray  #: bool: a stored output
    filtered: np.ndarray  #: bool: a stored filtered result

    @property
    def miss(self) -> np.ndarray:
        return ~(self.hit | self.filtered)


def lookup(cache: ResultCache, hashes: pa.Array, constraints: Mapping[str, Any]) -> Answers:
    """One look-up of ``hashes`` (distinct input hash strings); see the module docstring."""
    n = len(hashes)
    outputs = tuple(cache.output_schema or ())
    sources = [source_column(k) for k in outputs]
    found = cache.lookup_table(hashes, constraints, columns=sources) if n else None
    if found is None:
        none = np.zeros(n, dtype=bool)
        return Answers(pa.nulls(n, pa.large_string()), none, none.copy())
    at = pc.index_in(hashes, value_set=found.column(INPUT_PACKET_HASH).combine_chunks())
    known = column_numpy(pc.is_valid(at))
    # a filtered result is a stored row whose every output source column is null
    if sources:
        stored = pc.is_valid(found.column(sources[0]))
        for name in sources[1:]:
            stored = pc.or_(stored, pc.is_valid(found.column(name)))
    else:
        stored = pa.array(np.zeros(found.num_rows, dtype=bool))
    is_output = column_numpy(pc.fill_null(pc.take(stored, at), False))
    ids = pc.take(found.column(RECORD_ID), at).combine_chunks().cast(pa.large_string())
    ids = pc.if_else(pa.array(is_output), ids, pa.scalar(None, pa.large_string()))
    return Answers(ids, is_output, known & ~is_output)
