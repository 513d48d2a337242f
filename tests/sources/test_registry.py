import pytest

from orcapod.errors import InputValidationError
from orcapod.sources import DictSource, SourceRegistry


def test_registry_resolves_provenance_tokens(source):
    registry = SourceRegistry()
    registry.register(source)
    _, packet = next(iter(source))
    resolved, record_id, column = registry.resolve(packet.source_info()["weight"])
    assert resolved is source and record_id == "row_0" and column == "weight"
    assert "patients" in registry and registry.list_ids() == ["patients"]


def test_registry_refuses_a_second_source_under_a_taken_id(source, rows):
    registry = SourceRegistry()
    registry.register(source)
    registry.register(source)  # the same object again is fine
    other = DictSource(rows[:1], ["subject"], source_id="patients")
    with pytest.raises(InputValidationError, match="already registered"):
        registry.register(other)
    registry.replace(other)
    assert registry.get("patients") is other
    registry.unregister("patients")
    with pytest.raises(KeyError):
        registry.get("patients")
