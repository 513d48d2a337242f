"""The public surface: every public package has a sorted ``__all__`` of names it really has,
and no public name is exported from two public packages."""

import importlib

import pytest

PUBLIC_PACKAGES = [
    "orcapod",
    "orcapod.types",
    "orcapod.system_constants",
    "orcapod.errors",
    "orcapod.hashing",
    "orcapod.contexts",
    "orcapod.data",
    "orcapod.databases",
    "orcapod.streams",
    "orcapod.sources",
    "orcapod.executors",
    "orcapod.operators",
    "orcapod.functions",
    "orcapod.nodes",
    "orcapod.pipeline",
    "orcapod.ui",
]


def _existing():
    out = []
    for name in PUBLIC_PACKAGES:
        try:
            out.append(importlib.import_module(name))
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
    return out


@pytest.mark.parametrize("module", _existing(), ids=lambda m: m.__name__)
def test_all_is_sorted_and_resolves(module):
    exported = module.__all__
    assert list(exported) == sorted(exported), f"{module.__name__}.__all__ is not sorted"
    assert len(set(exported)) == len(exported)
    for name in exported:
        assert hasattr(module, name), f"{module.__name__}.__all__ names missing {name}"


def test_no_name_exported_from_two_public_packages():
    owners: dict[int, str] = {}
    for module in _existing():
        if module.__name__ == "orcapod":
            continue  # the top level re-exports a few entry points on purpose (DESIGN §3)
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) or callable(obj):
                key = id(obj)
                assert key not in owners, f"{name} exported by {owners[key]} and {module.__name__}"
                owners[key] = module.__name__


def test_earlier_api_names_are_exported():
    """Names that code written for the earlier orcapod imports."""
    expected = {
        "orcapod.contexts": {"DataContext", "get_available_contexts", "resolve_context"},
        "orcapod.system_constants": {"SystemConstant", "constants"},
        "orcapod.sources": {"GLOBAL_SOURCE_REGISTRY", "CachedSource", "RootSource", "SourceProxy"},
        "orcapod.streams": {"StreamBase"},
        "orcapod.hashing": {"get_default_arrow_hasher", "get_default_semantic_hasher"},
        "orcapod.types": {"SchemaLike", "DataValue", "resolve_concurrency"},
    }
    for package, names in expected.items():
        module = importlib.import_module(package)
        assert names <= set(module.__all__), names - set(module.__all__)


def test_design_table_names_are_exported():
    expected = {
        "orcapod.types": {
            "Schema",
            "ContentHash",
            "ColumnConfig",
            "CacheMode",
            "CacheMatch",
            "ErrorPolicy",
            "ExecutorType",
            "PipelineConfig",
            "NodeConfig",
        },
        "orcapod.hashing": {"hash_table", "hash_rows", "hash_object"},
        "orcapod.data": {"Datagram", "Tag", "Packet"},
        "orcapod.streams": {"ArrowTableStream"},
        "orcapod.databases": {
            "ArrowDatabase",
            "InMemoryArrowDatabase",
            "DeltaTableDatabase",
            "NoOpArrowDatabase",
            "SQLiteDatabase",
            "PostgreSQLDatabase",
        },
        "orcapod.sources": {
            "ArrowTableSource",
            "DictSource",
            "ListSource",
            "DataFrameSource",
            "CSVSource",
            "DeltaTableSource",
            "SQLiteTableSource",
            "PostgreSQLTableSource",
            "DerivedSource",
            "SourceRegistry",
        },
    }
    for package, names in expected.items():
        module = importlib.import_module(package)
        assert names <= set(module.__all__), names - set(module.__all__)
