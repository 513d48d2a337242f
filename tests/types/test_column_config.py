import pytest

from orcapod.errors import InputValidationError
from orcapod.types import ColumnConfig


def test_default_shows_nothing_hidden_and_all_info_shows_everything():
    assert ColumnConfig.handle_config(None) == ColumnConfig()
    every = ColumnConfig.handle_config(None, all_info=True)
    assert every.meta and every.context and every.source and every.system_tags
    assert every.content_hash_column() == "_content_hash"
    assert not every.sort_by_tags


def test_dict_form_is_accepted_and_unknown_keys_rejected():
    assert ColumnConfig.handle_config({"source": True}) == ColumnConfig(source=True)
    with pytest.raises(InputValidationError, match="unknown ColumnConfig keys"):
        ColumnConfig.handle_config({"sauce": True})
    with pytest.raises(InputValidationError):
        ColumnConfig.handle_config(3)  # type: ignore[arg-type]


def test_meta_prefix_selection():
    config = ColumnConfig(meta=["pf_var"])
    assert config.includes_meta("__pf_var_name") and not config.includes_meta("__pod_ts")
    assert ColumnConfig(content_hash="h").content_hash_column() == "h"


def test_all_info_field_turns_every_hidden_column_on():
    config = ColumnConfig(all_info=True)
    assert config.meta and config.context and config.source and config.system_tags
    assert config.content_hash and not config.sort_by_tags
    assert ColumnConfig.handle_config({"all_info": True}).source
