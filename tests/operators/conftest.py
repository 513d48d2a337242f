import pyarrow as pa
import pytest

from orcapod.sources import DictSource
from orcapod.streams import ArrowTableStream
from orcapod.types import ColumnConfig

# Views under which an operator's predicted schema must equal the computed one.
CONFIGS = [
    ColumnConfig(),
    ColumnConfig(system_tags=True),
    ColumnConfig(source=True),
    ColumnConfig(meta=True),
    ColumnConfig(context=True),
    ColumnConfig(content_hash=True),
    ColumnConfig.all(),
]


def _assert_prediction_matches(stream):
    """Predicted keys and schemas equal the computed stream's, under every view."""
    assert not stream.is_computed
    predicted = [(stream.keys(c), stream.output_schema(c)) for c in CONFIGS]
    assert not stream.is_computed, "predicting a schema must not compute"
    computed = stream.computed()
    for config, (keys, schemas) in zip(CONFIGS, predicted, strict=True):
        assert keys == computed.keys(config), config
        assert schemas == computed.output_schema(config), config
        table = computed.as_table(config)
        assert tuple(table.column_names) == keys[0] + keys[1], config


def _sorted_rows(table: pa.Table, by=None) -> list[dict]:
    """Rows as dicts, sorted (for order-insensitive comparisons)."""
    rows = table.to_pylist()
    return sorted(rows, key=lambda r: repr([r[k] for k in (by or sorted(r))]))


@pytest.fixture
def assert_prediction_matches():
    return _assert_prediction_matches


@pytest.fixture
def sorted_rows():
    return _sorted_rows


@pytest.fixture
def subjects():
    return DictSource(
        [
            {"subject": "s1", "age": 30},
            {"subject": "s2", "age": 41},
            {"subject": "s3", "age": 25},
        ],
        tag_columns=["subject"],
        source_id="subjects",
    )


@pytest.fixture
def sessions():
    return DictSource(
        [
            {"subject": "s2", "session": 1, "weight": 82.5},
            {"subject": "s1", "session": 1, "weight": 70.0},
            {"subject": "s2", "session": 2, "weight": 81.0},
            {"subject": "s4", "session": 1, "weight": 60.0},
        ],
        tag_columns=["subject", "session"],
        source_id="sessions",
    )


@pytest.fixture
def with_meta():
    """A stream with meta and context columns and no source info."""
    table = pa.table(
        {
            "subject": ["s1", "s2"],
            "score": [1.5, 2.5],
            "__computed": [True, False],
            "_context_key": ["orcapod:v1", "orcapod:v1"],
        }
    )
    return ArrowTableStream(table, ["subject"])
