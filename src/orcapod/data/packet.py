"""``Packet``: the data columns of a row, plus per-column source info (``_source_<col>``)
(see ``orcapod.data.datagram`` for what every row type shares)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import pyarrow as pa

from orcapod.contexts import DataContext
from orcapod.data.datagram import Datagram
from orcapod.errors import InputValidationError
from orcapod.types import ColumnConfig, Schema
from orcapod.types.columns import SOURCE_PREFIX

__all__ = ["Packet"]


class Packet(Datagram):
    """The data columns of a row, plus per-column source info (``_source_<col>``)."""

    __slots__ = ()
    _hidden_prefix = SOURCE_PREFIX

    def __init__(
        self,
        data: Mapping[str, Any] | pa.Table | pa.RecordBatch,
        meta_info: Mapping[str, Any] | None = None,
        source_info: Mapping[str, Any] | None = None,
        python_schema: Mapping[str, Any] | None = None,
        *,
        data_context: str | DataContext | None = None,
    ) -> None:
        super().__init__(
            data, python_schema, meta_info, data_context=data_context, source_info=source_info
        )

    def _init_hidden(self, found: dict[str, Any], explicit: Mapping[str, Any]) -> None:
        info = dict(found)
        info.update(explicit.get("source_info") or {})
        unknown = set(info) - set(self._schema)
        if unknown:
            raise InputValidationError(
                f"source info for {sorted(unknown)}, which are not packet columns"
            )
        self._hidden = info

    def _info(self) -> Mapping[str, Any]:
        info = self._hidden
        if info is None:
            assert self._block is not None
            info = self._hidden = self._block.source_info(self._row)
        return info

    def _extra_hidden(self, config: ColumnConfig) -> dict[str, Any]:
        if not config.source:
            return {}
        info = self._info()
        return {SOURCE_PREFIX + k: info.get(k) for k in self._schema}

    def source_info(self) -> dict[str, Any]:
        """``{column: "<source_id>::<record_id>::<column>" or None}`` for every data column."""
        info = self._info()
        return {k: info.get(k) for k in self._schema}

    def with_source_info(self, **info: Any) -> Packet:
        self._check_known(info, "set source info of")
        return self._copy(_hidden={**self._info(), **info})

    def _derive(
        self,
        data: dict[str, Any],
        schema: Schema,
        renames: Mapping[str, str] | None = None,
        updated: Any = (),
    ) -> Self:
        renames = renames or {}
        info = {renames.get(k, k): v for k, v in self._info().items()}
        info = {k: v for k, v in info.items() if k in schema and k not in updated}
        return self._copy(
            _data=data, _schema=schema, _table=None, _hash=None, _block=None, _hidden=info
        )
