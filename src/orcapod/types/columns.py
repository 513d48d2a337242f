"""The stored column names and prefixes. These exact strings are a compatibility contract:
tables written by one version are read by the next, so never change a value here."""

from __future__ import annotations

from typing import Final

META_PREFIX: Final = "__"
DATAGRAM_PREFIX: Final = "_"
SOURCE_PREFIX: Final = "_source_"
SYSTEM_TAG_PREFIX: Final = "_tag_"
SYSTEM_TAG_SOURCE_ID: Final = "_tag_source_id"
SYSTEM_TAG_RECORD_ID: Final = "_tag_record_id"
CONTEXT_KEY: Final = "_context_key"
CONTENT_HASH: Final = "_content_hash"
BLOCK_SEP: Final = "::"
FIELD_SEP: Final = ":"

INPUT_PACKET_HASH: Final = "__input_packet_hash"
POD_TS: Final = "__pod_ts"
COMPUTED: Final = "__computed"
RECORDED_AT: Final = "__recorded_at"
PACKET_ID: Final = "__packet_id"
PF_VAR_PREFIX: Final = "__pf_var_"
PF_EXEC_PREFIX: Final = "__pf_exec_"
RECORD_ID: Final = "__record_id"
RECORD_HASH: Final = "_record_hash"
NODE_CONTENT_HASH: Final = "_node_content_hash"
SNAPSHOT_ROW: Final = "__snapshot_row"
PIPELINE_ENTRY_ID: Final = "__pipeline_entry_id"
FAILURE_ID: Final = "__failure_id"
ERROR_TYPE: Final = "__error_type"
ERROR_MESSAGE: Final = "__error_message"
ERROR_TRACEBACK: Final = "__traceback"
ERROR_TIME: Final = "__failed_at"

DEFAULT_CONTEXT_KEY: Final = "orcapod:v1"
SCHEMA_HASH_CHARS: Final = 12
SOURCE_ID_HASH_CHARS: Final = 20


def source_column(name: str) -> str:
    return SOURCE_PREFIX + name
