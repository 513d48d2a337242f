"""``SourceRegistry``: resolve a ``source_id`` (as found in provenance columns) to its source.

A registry is an explicit object, not process-global state: a pipeline or an application owns
one. Registering a different source under an id that is taken is an error (silently keeping
one of two sources would make provenance lie).
"""

from __future__ import annotations

from collections.abc import Iterator

from orcapod.errors import InputValidationError
from orcapod.sources.base import RootSource

__all__ = ["SourceRegistry"]


class SourceRegistry:
    def __init__(self) -> None:
        self._sources: dict[str, RootSource] = {}

    def register(self, source: RootSource, source_id: str | None = None) -> str:
        """Register ``source`` under its id (or ``source_id``); returns the id."""
        key = source_id if source_id is not None else source.source_id
        existing = self._sources.get(key)
        if existing is not None and existing is not source:
            raise InputValidationError(
                f"source id {key!r} is already registered to another source; unregister it "
                "first or use replace()"
            )
        self._sources[key] = source
        return key

    def replace(self, source: RootSource, source_id: str | None = None) -> str:
        key = source_id if source_id is not None else source.source_id
        self._sources[key] = source
        return key

    def unregister(self, source_id: str) -> None:
        try:
            del self._sources[source_id]
        except KeyError as err:
            raise KeyError(f"no source registered under {source_id!r}") from err

    def get(self, source_id: str) -> RootSource:
        try:
            return self._sources[source_id]
        except KeyError as err:
            raise KeyError(
                f"no source registered under {source_id!r}; registered: {sorted(self._sources)}"
            ) from err

    def get_optional(self, source_id: str) -> RootSource | None:
        return self._sources.get(source_id)

    def resolve(self, provenance: str) -> tuple[RootSource, str, str | None]:
        """Resolve a source-info token ``<source_id>::<record_id>[::<column>]``."""
        parts = provenance.split("::")
        if len(parts) < 2:
            raise InputValidationError(
                f"{provenance!r} is not a provenance token '<source_id>::<record_id>::<column>'"
            )
        return self.get(parts[0]), parts[1], parts[2] if len(parts) > 2 else None

    def list_ids(self) -> list[str]:
        return sorted(self._sources)

    def __contains__(self, source_id: object) -> bool:
        return source_id in self._sources

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._sources))

    def __len__(self) -> int:
        return len(self._sources)
