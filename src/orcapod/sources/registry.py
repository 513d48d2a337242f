"""``SourceRegistry``: resolve a ``source_id`` (as found in provenance columns) to its source.

``registry.register(source_id, source)`` (or ``registry.register(source)``, which uses the
source's own ``source_id``) records a source; ``get`` / ``get_optional`` / ``resolve`` look
it up, ``replace`` overwrites, ``unregister`` removes and returns it. Iteration, ``list_ids``
and ``items`` follow registration order.

Registering the same object again is a no-op. Registering a *different* source under a taken
id keeps the existing registration and logs a warning: the first registration wins, so a
provenance token never silently starts pointing at other data; use ``replace()`` to
overwrite on purpose.

``GLOBAL_SOURCE_REGISTRY`` is one shared registry for applications that want one. orcapod
itself never registers anything in it: registries are filled explicitly by their owners.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from orcapod.errors import InputValidationError
from orcapod.streams.base import StreamBase

__all__ = ["GLOBAL_SOURCE_REGISTRY", "SourceRegistry"]

_log = logging.getLogger(__name__)


def _key(source_id: Any) -> str:
    if not isinstance(source_id, str) or not source_id:
        raise InputValidationError(
            f"a source id must be a non-empty string, got {source_id!r}; pass the source's "
            "source_id"
        )
    return source_id


def _arguments(first: Any, second: Any) -> tuple[str, StreamBase]:
    """``(source_id, source)`` from ``(source_id, source)`` or ``(source[, None])``."""
    source_id: Any
    if isinstance(first, str):
        source_id, source = first, second
    else:
        source = first
        source_id = second if second is not None else getattr(first, "source_id", None)
    if source is None:
        raise InputValidationError("source cannot be None; pass the source to register")
    return _key(source_id), source


class SourceRegistry:
    """A mapping ``source_id -> source`` filled explicitly by its owner."""

    def __init__(self) -> None:
        self._sources: dict[str, StreamBase] = {}

    def register(self, source_id: str | StreamBase, source: StreamBase | None = None) -> None:
        """Register ``source`` under ``source_id`` (``register(source)`` uses its own id).

        The first registration of an id wins: a different source under a taken id is not
        registered, and a warning is logged (use ``replace`` to overwrite)."""
        key, src = _arguments(source_id, source)
        existing = self._sources.get(key)
        if existing is None:
            self._sources[key] = src
        elif existing is not src:
            _log.warning(
                "source id %r is already registered to another %s; keeping the existing "
                "registration (use replace() to overwrite it)",
                key,
                type(existing).__name__,
            )

    def replace(
        self, source_id: str | StreamBase, source: StreamBase | None = None
    ) -> StreamBase | None:
        """Register ``source`` under ``source_id`` whatever was there; returns the previous
        source, or None."""
        key, src = _arguments(source_id, source)
        previous = self._sources.get(key)
        self._sources[key] = src
        return previous

    def unregister(self, source_id: str) -> StreamBase:
        """Remove and return the source registered under ``source_id`` (``KeyError`` if none)."""
        try:
            return self._sources.pop(source_id)
        except KeyError as err:
            raise KeyError(f"no source registered under {source_id!r}") from err

    def get(self, source_id: str) -> StreamBase:
        try:
            return self._sources[source_id]
        except KeyError as err:
            raise KeyError(
                f"no source registered under {source_id!r}; registered: {list(self._sources)}"
            ) from err

    def get_optional(self, source_id: str) -> StreamBase | None:
        return self._sources.get(source_id)

    def resolve(self, provenance: str) -> tuple[StreamBase, str, str | None]:
        """Resolve a source-info token ``<source_id>::<record_id>[::<column>]`` to
        ``(source, record_id, column or None)``."""
        parts = provenance.split("::")
        if len(parts) < 2:
            raise InputValidationError(
                f"{provenance!r} is not a provenance token '<source_id>::<record_id>::<column>'"
            )
        return self.get(parts[0]), parts[1], parts[2] if len(parts) > 2 else None

    def list_ids(self) -> list[str]:
        """Registered ids, in registration order."""
        return list(self._sources)

    def items(self) -> Iterator[tuple[str, StreamBase]]:
        return iter(list(self._sources.items()))

    def clear(self) -> None:
        self._sources.clear()

    def __contains__(self, source_id: object) -> bool:
        return source_id in self._sources

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._sources))

    def __len__(self) -> int:
        return len(self._sources)

    def __repr__(self) -> str:
        return f"SourceRegistry({len(self._sources)} source(s): {list(self._sources)})"


GLOBAL_SOURCE_REGISTRY = SourceRegistry()
