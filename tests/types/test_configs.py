from dataclasses import replace

import pytest

from orcapod.errors import InputValidationError
from orcapod.types import (
    CacheMatch,
    CacheMode,
    ErrorPolicy,
    ExecutorType,
    NodeConfig,
    PipelineConfig,
)
from orcapod.types.configs import enum_member, resolve_concurrency


def test_configs_are_frozen_values_changed_by_replace():
    config = PipelineConfig(executor="async_channels", execution_engine_opts={"num_cpus": 1})
    assert config.executor is ExecutorType.ASYNC_CHANNELS
    with pytest.raises(AttributeError):
        config.channel_buffer_size = 3  # type: ignore[misc]
    assert replace(config, channel_buffer_size=3).channel_buffer_size == 3
    assert hash(config) == hash(PipelineConfig("async_channels", 64, None, {"num_cpus": 1}))


def test_bad_numbers_are_rejected_early():
    with pytest.raises(InputValidationError, match="max_concurrency"):
        NodeConfig(max_concurrency=0)
    with pytest.raises(InputValidationError, match="channel_buffer_size"):
        PipelineConfig(channel_buffer_size=-1)


def test_node_concurrency_overrides_pipeline_default():
    assert resolve_concurrency(NodeConfig(2), PipelineConfig(default_max_concurrency=8)) == 2
    assert resolve_concurrency(NodeConfig(), PipelineConfig(default_max_concurrency=8)) == 8
    assert resolve_concurrency(None, None) is None


def test_enums_serialise_as_their_values():
    assert CacheMode("log") is CacheMode.LOG and str(CacheMatch.CODE) == "code"
    assert ErrorPolicy("fail_fast") is ErrorPolicy.FAIL_FAST


def test_flush_policy_defaults_and_rejects_nonsense() -> None:
    from orcapod.types import FlushPolicy

    assert (FlushPolicy().rows, FlushPolicy().seconds) == (50_000, 1.0)
    assert FlushPolicy(rows=10, seconds=0.5) == FlushPolicy(10, 0.5)
    assert FlushPolicy().bytes == 256 * 2**20
    for bad in (
        {"rows": 0},
        {"rows": True},
        {"rows": 1.5},
        {"seconds": 0},
        {"seconds": "1"},
        {"bytes": 0},
        {"bytes": "1MB"},
    ):
        with pytest.raises(InputValidationError, match="FlushPolicy"):
            FlushPolicy(**bad)  # type: ignore[arg-type]


def test_enum_settings_take_a_member_or_its_value_and_list_the_valid_values() -> None:
    assert enum_member(ErrorPolicy, "fail_fast", "error_policy") is ErrorPolicy.FAIL_FAST
    assert enum_member(ErrorPolicy, ErrorPolicy.CONTINUE, "x") is ErrorPolicy.CONTINUE
    for bad in ("FAIL_FAST", "ignore", 1, None):
        with pytest.raises(
            InputValidationError,
            match=r"error_policy must be one of 'fail_fast', 'continue' \(as strings or as "
            r"ErrorPolicy members, such as ErrorPolicy.FAIL_FAST\), got",
        ):
            enum_member(ErrorPolicy, bad, "error_policy")


def test_pipeline_config_refuses_wrong_types_when_built() -> None:
    with pytest.raises(
        InputValidationError,
        match=r"PipelineConfig.executor must be one of 'synchronous', 'async_channels'",
    ):
        PipelineConfig(executor="bogus")  # type: ignore[arg-type]
    with pytest.raises(InputValidationError, match="execution_engine_opts must be a mapping"):
        PipelineConfig(execution_engine_opts=5)  # type: ignore[arg-type]
    with pytest.raises(InputValidationError, match="option names must be strings"):
        PipelineConfig(execution_engine_opts={1: 2})  # type: ignore[dict-item]
    with pytest.raises(InputValidationError, match="channel_buffer_size"):
        PipelineConfig(channel_buffer_size=None)  # type: ignore[arg-type]
    with pytest.raises(InputValidationError, match="default_max_concurrency"):
        PipelineConfig(default_max_concurrency=True)
    with pytest.raises(InputValidationError, match="max_concurrency"):
        NodeConfig(max_concurrency="2")  # type: ignore[arg-type]
