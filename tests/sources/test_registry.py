import logging

import pytest

from orcapod.errors import InputValidationError
from orcapod.sources import GLOBAL_SOURCE_REGISTRY, DictSource, SourceRegistry


def test_registry_resolves_provenance_tokens(source):
    registry = SourceRegistry()
    registry.register(source)
    _, packet = next(iter(source))
    resolved, record_id, column = registry.resolve(packet.source_info()["weight"])
    assert resolved is source and record_id == "row_0" and column == "weight"
    assert "patients" in registry and registry.list_ids() == ["patients"]


def test_register_takes_an_explicit_id_first(source):
    registry = SourceRegistry()
    assert registry.register("mine", source) is None
    assert registry.get("mine") is source and registry.list_ids() == ["mine"]
    assert list(registry.items()) == [("mine", source)] and list(registry) == ["mine"]


def test_first_registration_of_an_id_wins_with_a_warning(source, rows, caplog):
    registry = SourceRegistry()
    registry.register(source)
    registry.register(source)  # the same object again is fine
    other = DictSource(rows[:1], ["subject"], source_id="patients")
    with caplog.at_level(logging.WARNING, logger="orcapod.sources.registry"):
        registry.register(other)
    assert "already registered" in caplog.text
    assert registry.get("patients") is source
    assert registry.replace(other) is source
    assert registry.get("patients") is other
    assert registry.unregister("patients") is other
    with pytest.raises(KeyError):
        registry.get("patients")
    with pytest.raises(KeyError):
        registry.unregister("patients")
    assert registry.get_optional("patients") is None


def test_registry_rejects_empty_ids_and_missing_sources(source):
    registry = SourceRegistry()
    with pytest.raises(InputValidationError):
        registry.register("", source)
    with pytest.raises(InputValidationError):
        registry.register("x", None)
    registry.register("a", source)
    registry.register("b", source)
    assert len(registry) == 2 and "SourceRegistry(2" in repr(registry)
    registry.clear()
    assert len(registry) == 0 and registry.list_ids() == []


def test_global_registry_is_a_registry_that_orcapod_leaves_empty():
    assert isinstance(GLOBAL_SOURCE_REGISTRY, SourceRegistry)
    DictSource([{"a": 1, "b": 2}], ["a"], source_id="never_registered")
    assert "never_registered" not in GLOBAL_SOURCE_REGISTRY
