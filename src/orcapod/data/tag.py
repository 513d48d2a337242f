"""``Tag``: the key columns of a row, plus the system tags that trace it to its source rows
(see ``orcapod.data.datagram`` for what every row type shares)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from orcapod.contexts import DataContext
from orcapod.data.datagram import Datagram
from orcapod.data.row_block import RowBlock
from orcapod.types import ColumnConfig
from orcapod.types.columns import SYSTEM_TAG_PREFIX

__all__ = ["Tag"]


class Tag(Datagram):
    """The key columns of a row, plus system tags (``_tag_*``) tracing it to source rows."""

    __slots__ = ()
    _hidden_prefix = SYSTEM_TAG_PREFIX

    def __init__(
        self,
        data: Mapping[str, Any] | pa.Table | pa.RecordBatch,
        system_tags: Mapping[str, Any] | None = None,
        meta_info: Mapping[str, Any] | None = None,
        python_schema: Mapping[str, Any] | None = None,
        *,
        data_context: str | DataContext | None = None,
    ) -> None:
        super().__init__(
            data, python_schema, meta_info, data_context=data_context, system_tags=system_tags
        )

    def _init_hidden(self, found: dict[str, Any], explicit: Mapping[str, Any]) -> None:
        tags: dict[str, Any] = {SYSTEM_TAG_PREFIX + k: v for k, v in found.items()}
        given = explicit.get("system_tags") or {}
        tags.update(
            {
                k if k.startswith(SYSTEM_TAG_PREFIX) else SYSTEM_TAG_PREFIX + k: v
                for k, v in given.items()
            }
        )
        self._hidden = tags

    def _tags(self) -> Mapping[str, Any]:
        tags = self._hidden
        if tags is None:  # read from the block each time: None marks an untouched block row
            assert self._block is not None
            return self._block.system_tags(self._row)
        return tags

    def _block_row(self) -> RowBlock | None:
        """The block this tag can be rebuilt from with ``_make_row`` (same schema and context
        key), or None when it holds anything the block does not (system tags, meta)."""
        if self._hidden is None and not self._meta:
            return self._block
        return None

    def _detached(self) -> dict[str, Any]:
        return {"_hidden": self._tags()}

    def _extra_hidden(self, config: ColumnConfig) -> dict[str, Any]:
        return dict(self._tags()) if config.system_tags else {}

    def system_tags(self) -> dict[str, Any]:
        """System-tag columns by full name (``_tag_source_id::…`` etc.)."""
        return dict(self._tags())

    def with_system_tags(self, **tags: Any) -> Tag:
        return self._copy(_hidden={**self._tags(), **tags})

    def as_datagram(
        self, columns: ColumnConfig | Mapping[str, Any] | None = None, all_info: bool = False
    ) -> Datagram:
        """This tag as a plain ``Datagram``; system tags become data columns only when
        ``columns``/``all_info`` ask for them (as in ``as_dict``)."""
        config = ColumnConfig.handle_config(columns, all_info)
        if not config.system_tags:
            return Datagram._make(self._dict(), self._schema, self._meta, self._context_key)
        tags = self._tags()
        data = {**self._dict(), **tags}
        schema = self._schema.with_values(
            {k: type(v) if v is not None else str | None for k, v in tags.items()}
        )
        return Datagram._make(data, schema, self._meta, self._context_key)
