from orcapod.system_constants import SystemConstant, constants
from orcapod.types import columns


def test_constants_are_the_stored_column_names():
    assert constants.META_PREFIX == "__"
    assert constants.DATAGRAM_PREFIX == "_"
    assert constants.SOURCE_PREFIX == columns.SOURCE_PREFIX == "_source_"
    assert constants.CONTEXT_KEY == columns.CONTEXT_KEY == "_context_key"
    assert constants.SYSTEM_TAG_PREFIX == "_tag_"
    assert constants.SYSTEM_TAG_SOURCE_ID_PREFIX == columns.SYSTEM_TAG_SOURCE_ID
    assert constants.SYSTEM_TAG_RECORD_ID_PREFIX == columns.SYSTEM_TAG_RECORD_ID
    assert constants.INPUT_PACKET_HASH_COL == columns.INPUT_PACKET_HASH
    assert constants.PACKET_RECORD_ID == columns.PACKET_ID == "__packet_id"
    assert constants.POD_TIMESTAMP == columns.POD_TS
    assert constants.PF_VARIATION_PREFIX == columns.PF_VAR_PREFIX
    assert constants.PF_EXECUTION_PREFIX == columns.PF_EXEC_PREFIX
    assert constants.NODE_CONTENT_HASH_COL == columns.NODE_CONTENT_HASH
    assert constants.COMPUTED == columns.COMPUTED
    assert (constants.FIELD_SEPARATOR, constants.BLOCK_SEPARATOR) == (":", "::")


def test_a_global_prefix_goes_in_front_of_every_name():
    prefixed = SystemConstant("orca")
    assert prefixed.META_PREFIX == "orca__"
    assert prefixed.SOURCE_PREFIX == "orca_source_"
    assert prefixed.SYSTEM_TAG_SOURCE_ID_PREFIX == "orca_tag_source_id"
    assert prefixed.POD_TIMESTAMP == "orca__pod_ts"
