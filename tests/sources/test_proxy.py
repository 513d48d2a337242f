import pytest

from orcapod.errors import InputValidationError, UnboundSourceError
from orcapod.sources import CachedSource, DictSource, SourceProxy


def _proxy(source, **kwargs):
    tag_schema, packet_schema = source.output_schema()
    return SourceProxy(
        source.source_id,
        source.content_hash().to_string(),
        source.pipeline_hash().to_string(),
        tag_schema,
        packet_schema,
        **kwargs,
    )


def test_a_proxy_has_the_identity_but_not_the_data(source):
    proxy = _proxy(source, expected_class_name="DictSource")
    assert proxy.content_hash() == source.content_hash()
    assert proxy.pipeline_hash() == source.pipeline_hash()
    assert proxy.output_schema() == source.output_schema() and proxy.keys() == source.keys()
    assert not proxy.is_bound and proxy.delegate is None
    with pytest.raises(UnboundSourceError, match="bind"):
        proxy.as_table()
    with pytest.raises(NotImplementedError):
        list(proxy.iter_packets())


def test_binding_the_recorded_source_serves_its_rows(source):
    proxy = _proxy(source)
    proxy.bind(source)
    assert proxy.is_bound and proxy.as_table().equals(source.as_table())
    assert proxy.keys(all_info=True) == source.keys(all_info=True)
    assert proxy.resolve_field("row_0", "weight") == 70.0
    assert proxy.unbind() is source and not proxy.is_bound


def test_a_changed_or_different_source_does_not_bind(source, rows):
    proxy = _proxy(source, expected_class_name="DictSource")
    changed = DictSource(rows[:1], ["subject", "session"], source_id="patients")
    with pytest.raises(InputValidationError, match="content hash"):
        proxy.bind(changed)
    renamed = DictSource(rows, ["subject", "session"], source_id="other")
    with pytest.raises(InputValidationError, match="source_id"):
        proxy.bind(renamed)
    assert not proxy.is_bound


def test_a_cached_unbound_proxy_serves_the_recorded_rows(source):
    from orcapod.databases import InMemoryArrowDatabase

    database = InMemoryArrowDatabase()
    proxy = _proxy(source)
    with pytest.raises(UnboundSourceError, match="nothing is recorded"):
        CachedSource(proxy, database).as_table()
    recorded = CachedSource(source, database).as_table(all_info=True)
    served = CachedSource(proxy, database)
    assert served.as_table().to_pylist() == source.as_table().to_pylist()
    assert served.as_table(all_info=True).num_rows == recorded.num_rows == 3
