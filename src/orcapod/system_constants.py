"""The names of orcapod's hidden columns, as one object: ``constants``.

``constants.META_PREFIX`` (``"__"``), ``constants.SOURCE_PREFIX`` (``"_source_"``),
``constants.SYSTEM_TAG_PREFIX`` (``"_tag_"``), ``constants.CONTEXT_KEY``
(``"_context_key"``), ``constants.INPUT_PACKET_HASH_COL`` (``"__input_packet_hash"``), … are
the exact stored column names and prefixes, read from ``orcapod.types.columns`` (the one place
they are defined). ``SystemConstant(global_prefix)`` gives the same names with a prefix in
front, for callers that namespace orcapod's columns inside a wider table.

The module-level names (``SYSTEM_COLUMN_PREFIX``, ``SOURCE_INFO_PREFIX``, …) are the bare
name parts the full names are built from (``"__"``, ``"source_"``, …). Layer 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from orcapod.types import columns as _c

__all__ = [
    "BLOCK_SEPARATOR",
    "DATAGRAM_PREFIX",
    "DATA_CONTEXT_KEY",
    "ENV_INFO",
    "EXECUTION_ENGINE",
    "FIELD_SEPARATOR",
    "INPUT_PACKET_HASH_COL",
    "NODE_CONTENT_HASH_COL",
    "PACKET_RECORD_ID",
    "PF_EXECUTION_PREFIX",
    "PF_VARIATION_PREFIX",
    "POD_ID_PREFIX",
    "POD_TIMESTAMP",
    "POD_VERSION",
    "SOURCE_INFO_PREFIX",
    "SYSTEM_COLUMN_PREFIX",
    "SYSTEM_TAG_PREFIX_NAME",
    "SYSTEM_TAG_RECORD_ID_FIELD",
    "SYSTEM_TAG_SOURCE_ID_FIELD",
    "SystemConstant",
    "constants",
]


def _bare(full: str, prefix: str) -> str:
    assert full.startswith(prefix), (full, prefix)
    return full[len(prefix) :]


SYSTEM_COLUMN_PREFIX: Final = _c.META_PREFIX
DATAGRAM_PREFIX: Final = _c.DATAGRAM_PREFIX
SOURCE_INFO_PREFIX: Final = _bare(_c.SOURCE_PREFIX, _c.DATAGRAM_PREFIX)
DATA_CONTEXT_KEY: Final = _bare(_c.CONTEXT_KEY, _c.DATAGRAM_PREFIX)
SYSTEM_TAG_PREFIX_NAME: Final = _bare(_c.SYSTEM_TAG_PREFIX, _c.DATAGRAM_PREFIX).rstrip("_")
SYSTEM_TAG_SOURCE_ID_FIELD: Final = _bare(_c.SYSTEM_TAG_SOURCE_ID, _c.SYSTEM_TAG_PREFIX)
SYSTEM_TAG_RECORD_ID_FIELD: Final = _bare(_c.SYSTEM_TAG_RECORD_ID, _c.SYSTEM_TAG_PREFIX)
NODE_CONTENT_HASH_COL: Final = _bare(_c.NODE_CONTENT_HASH, _c.DATAGRAM_PREFIX)
INPUT_PACKET_HASH_COL: Final = _bare(_c.INPUT_PACKET_HASH, _c.META_PREFIX)
PACKET_RECORD_ID: Final = _bare(_c.PACKET_ID, _c.META_PREFIX)
POD_TIMESTAMP: Final = _bare(_c.POD_TS, _c.META_PREFIX)
PF_VARIATION_PREFIX: Final = _bare(_c.PF_VAR_PREFIX, _c.META_PREFIX)
PF_EXECUTION_PREFIX: Final = _bare(_c.PF_EXEC_PREFIX, _c.META_PREFIX)
POD_ID_PREFIX: Final = "pod_id_"
POD_VERSION: Final = "pod_version"
EXECUTION_ENGINE: Final = "execution_engine"
ENV_INFO: Final = "env_info"
FIELD_SEPARATOR: Final = _c.FIELD_SEP
BLOCK_SEPARATOR: Final = _c.BLOCK_SEP


@dataclass(frozen=True)
class SystemConstant:
    """orcapod's hidden column names, each preceded by ``global_prefix`` (default none)."""

    global_prefix: str = ""

    def _meta(self, name: str) -> str:
        return f"{self.global_prefix}{SYSTEM_COLUMN_PREFIX}{name}"

    def _datagram(self, name: str) -> str:
        return f"{self.global_prefix}{DATAGRAM_PREFIX}{name}"

    @property
    def BLOCK_SEPARATOR(self) -> str:
        return BLOCK_SEPARATOR

    @property
    def FIELD_SEPARATOR(self) -> str:
        return FIELD_SEPARATOR

    @property
    def META_PREFIX(self) -> str:
        return self._meta("")

    @property
    def DATAGRAM_PREFIX(self) -> str:
        return self._datagram("")

    @property
    def SOURCE_PREFIX(self) -> str:
        return self._datagram(SOURCE_INFO_PREFIX)

    @property
    def CONTEXT_KEY(self) -> str:
        return self._datagram(DATA_CONTEXT_KEY)

    @property
    def SYSTEM_TAG_PREFIX(self) -> str:
        return self._datagram(SYSTEM_TAG_PREFIX_NAME + "_")

    @property
    def SYSTEM_TAG_SOURCE_ID_PREFIX(self) -> str:
        return self.SYSTEM_TAG_PREFIX + SYSTEM_TAG_SOURCE_ID_FIELD

    @property
    def SYSTEM_TAG_RECORD_ID_PREFIX(self) -> str:
        return self.SYSTEM_TAG_PREFIX + SYSTEM_TAG_RECORD_ID_FIELD

    @property
    def NODE_CONTENT_HASH_COL(self) -> str:
        return self._datagram(NODE_CONTENT_HASH_COL)

    @property
    def INPUT_PACKET_HASH_COL(self) -> str:
        return self._meta(INPUT_PACKET_HASH_COL)

    @property
    def PACKET_RECORD_ID(self) -> str:
        return self._meta(PACKET_RECORD_ID)

    @property
    def POD_TIMESTAMP(self) -> str:
        return self._meta(POD_TIMESTAMP)

    @property
    def PF_VARIATION_PREFIX(self) -> str:
        return self._meta(PF_VARIATION_PREFIX)

    @property
    def PF_EXECUTION_PREFIX(self) -> str:
        return self._meta(PF_EXECUTION_PREFIX)

    @property
    def POD_ID_PREFIX(self) -> str:
        return self._meta(POD_ID_PREFIX)

    @property
    def POD_VERSION(self) -> str:
        return self._meta(POD_VERSION)

    @property
    def EXECUTION_ENGINE(self) -> str:
        return self._meta(EXECUTION_ENGINE)

    @property
    def ENV_INFO(self) -> str:
        return self._meta(ENV_INFO)

    @property
    def COMPUTED(self) -> str:
        return self._meta(_bare(_c.COMPUTED, _c.META_PREFIX))


constants: Final = SystemConstant()
