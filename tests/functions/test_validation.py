"""Output-name checks of function pods against their input's tags and reserved names."""

import pytest

from orcapod.errors import InputValidationError
from orcapod.functions.validation import check_output_names


def test_outputs_may_not_shadow_tag_columns():
    check_output_names("f", ["area", "mean"], ["subject", "image"])
    with pytest.raises(InputValidationError, match=r"'f' outputs \['image'\].*map_tags"):
        check_output_names("f", ["area", "image"], ["subject", "image"])


def test_outputs_may_not_use_reserved_names():
    with pytest.raises(InputValidationError, match="reserved"):
        check_output_names("f", ["_tag_source_id"], [])
    with pytest.raises(InputValidationError, match="reserved"):
        check_output_names("f", ["__computed"], ["subject"])
