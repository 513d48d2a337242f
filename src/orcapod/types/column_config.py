"""``ColumnConfig``: which hidden columns a table or schema view includes.

Hidden columns are the meta columns (``__*``), the data context (``_context_key``), source
info (``_source_<col>``), system tags (``_tag_*``) and an optional per-row content hash.
By default none of them are shown. ``all_info=True`` shows every hidden column; it does not
sort rows (sorting is a view choice, not information), so ``sort_by_tags`` stays as given.
The same holds for the field: ``ColumnConfig(all_info=True)`` turns every hidden column on.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from orcapod.errors import InputValidationError

__all__ = ["ColumnConfig"]


@dataclass(frozen=True, slots=True)
class ColumnConfig:
    meta: bool | Collection[str] = False
    context: bool = False
    source: bool = False
    system_tags: bool = False
    content_hash: bool | str = False
    sort_by_tags: bool = False
    all_info: bool = False

    def __post_init__(self) -> None:
        if self.all_info:
            for name in ("meta", "context", "source", "system_tags", "content_hash"):
                object.__setattr__(self, name, True)

    @classmethod
    def all(cls) -> ColumnConfig:
        """Every hidden column."""
        return cls(meta=True, context=True, source=True, system_tags=True, content_hash=True)

    @classmethod
    def data_only(cls) -> ColumnConfig:
        return cls()

    @classmethod
    def handle_config(
        cls, config: ColumnConfig | Mapping[str, Any] | None = None, all_info: bool = False
    ) -> ColumnConfig:
        """Normalise the ``columns=`` / ``all_info=`` arguments accepted across the API."""
        if config is None:
            result = cls()
        elif isinstance(config, ColumnConfig):
            result = config
        elif isinstance(config, Mapping):
            known = {f.name for f in fields(cls)}
            unknown = set(config) - known
            if unknown:
                raise InputValidationError(
                    f"unknown ColumnConfig keys {sorted(unknown)}; valid keys: {sorted(known)}"
                )
            result = cls(**config)
        else:
            raise InputValidationError(
                f"columns must be a ColumnConfig, a dict or None, not {type(config).__name__}"
            )
        if all_info and not result.all_info:
            result = replace(cls.all(), sort_by_tags=result.sort_by_tags)
        return result

    def content_hash_column(self) -> str | None:
        """Name of the content-hash column to add, or None."""
        if self.content_hash is True:
            return "_content_hash"
        if isinstance(self.content_hash, str) and self.content_hash:
            return self.content_hash
        return None

    def includes_meta(self, name: str) -> bool:
        """Whether meta column ``name`` (with its ``__`` prefix) is shown."""
        if self.meta is True:
            return True
        if self.meta is False:
            return False
        return any(name.startswith(p if p.startswith("__") else "__" + p) for p in self.meta)
