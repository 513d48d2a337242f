"""Layer 1 value types: schemas, hashes, column views, enums and run configuration."""

from orcapod.types.aliases import (
    DataType,
    DataValue,
    PacketLike,
    PathLike,
    PathSet,
    SchemaLike,
    TagValue,
)
from orcapod.types.arrays import ArrayType, Shape
from orcapod.types.column_config import ColumnConfig
from orcapod.types.configs import (
    FlushPolicy,
    NodeConfig,
    PipelineConfig,
    WorkClaims,
    resolve_concurrency,
)
from orcapod.types.content_hash import ContentHash
from orcapod.types.enums import CacheMatch, CacheMode, ErrorPolicy, ExecutorType
from orcapod.types.schema import Schema

__all__ = [
    "ArrayType",
    "CacheMatch",
    "CacheMode",
    "ColumnConfig",
    "ContentHash",
    "DataType",
    "DataValue",
    "ErrorPolicy",
    "ExecutorType",
    "FlushPolicy",
    "NodeConfig",
    "PacketLike",
    "PathLike",
    "PathSet",
    "PipelineConfig",
    "Schema",
    "SchemaLike",
    "Shape",
    "TagValue",
    "WorkClaims",
    "resolve_concurrency",
]
