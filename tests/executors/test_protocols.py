"""Executors as values: protocol conformance, immutability, equality, hashing, provenance data."""

from __future__ import annotations

import json
import pickle
from concurrent.futures import Future
from typing import Any

import pytest

import orcapod.executors as executors
from orcapod.errors import ExecutorError
from orcapod.executors import (
    LocalExecutor,
    PacketFunctionExecutorProtocol,
    PythonFunctionExecutorProtocol,
    RayExecutor,
)


def _double(x: int) -> int:
    return 2 * x


EXECUTORS = [LocalExecutor(), LocalExecutor(max_workers=4), RayExecutor(), RayExecutor(num_cpus=2)]


def test_public_surface_is_exactly_the_four_names_sorted() -> None:
    assert executors.__all__ == [
        "LocalExecutor",
        "PacketFunctionExecutorProtocol",
        "PythonFunctionExecutorProtocol",
        "RayExecutor",
    ]


@pytest.mark.parametrize("executor", EXECUTORS, ids=repr)
def test_executors_satisfy_both_protocols(executor: Any) -> None:
    assert isinstance(executor, PacketFunctionExecutorProtocol)
    assert isinstance(executor, PythonFunctionExecutorProtocol)


class _IdentityOnly:
    """Implements the language-independent protocol but cannot run Python callables."""

    executor_type_id = "custom"
    supports_concurrent_execution = False

    def supported_function_type_ids(self) -> frozenset[str]:
        return frozenset()

    def supports(self, function_type_id: str) -> bool:
        return True

    def with_options(self, **opts: Any) -> _IdentityOnly:
        return _IdentityOnly()

    def get_executor_data(self) -> dict[str, Any]:
        return {"executor_type": "custom"}


def test_an_executor_without_callable_methods_is_not_a_python_executor() -> None:
    executor = _IdentityOnly()
    assert isinstance(executor, PacketFunctionExecutorProtocol)
    assert not isinstance(executor, PythonFunctionExecutorProtocol)


@pytest.mark.parametrize("executor", EXECUTORS, ids=repr)
def test_with_options_always_returns_a_new_equal_instance(executor: Any) -> None:
    copy = executor.with_options()
    assert copy is not executor
    assert copy == executor
    assert hash(copy) == hash(executor)


def test_local_with_options_leaves_the_original_unchanged() -> None:
    original = LocalExecutor()
    changed = original.with_options(max_workers=3)
    assert original.max_workers is None
    assert not original.supports_concurrent_execution
    assert changed.max_workers == 3
    assert changed.supports_concurrent_execution
    assert changed != original


def test_ray_with_options_merges_and_overrides_into_a_new_executor() -> None:
    defaults = RayExecutor(num_cpus=1, max_retries=2, resources={"disk": 1})
    node = defaults.with_options(num_cpus=2, retry_exceptions=True, runtime_env={"env_vars": {}})
    assert node is not defaults
    assert node.task_options() == {
        "num_cpus": 2,
        "resources": {"disk": 1},
        "runtime_env": {"env_vars": {}},
        "max_retries": 2,
        "retry_exceptions": True,
    }
    # the pipeline default is untouched
    assert defaults.task_options() == {"num_cpus": 1, "resources": {"disk": 1}, "max_retries": 2}
    # per-call options are merged last, over both
    assert node.task_options({"num_cpus": 0.5})["num_cpus"] == 0.5


def test_equal_options_give_equal_hashable_executors() -> None:
    a = RayExecutor(num_cpus=1, runtime_env={"pip": ["numpy"]}, max_retries=1, resources={"x": 1})
    b = RayExecutor(resources={"x": 1}, max_retries=1, runtime_env={"pip": ["numpy"]}, num_cpus=1)
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b, RayExecutor(num_cpus=2)}) == 2
    assert len({LocalExecutor(), LocalExecutor(), LocalExecutor(max_workers=2)}) == 2
    assert LocalExecutor() != RayExecutor()


def test_caller_mutation_after_construction_does_not_change_the_executor() -> None:
    env = {"pip": ["numpy"]}
    executor = RayExecutor(runtime_env=env)
    before = hash(executor)
    env["pip"].append("pandas")
    assert executor.runtime_env == {"pip": ["numpy"]}
    assert hash(executor) == before
    with pytest.raises(TypeError):
        executor.remote_options["max_retries"] = 3  # type: ignore[index]


@pytest.mark.parametrize("executor", EXECUTORS, ids=repr)
def test_executors_are_frozen(executor: Any) -> None:
    with pytest.raises(AttributeError):
        executor.num_cpus = 8


@pytest.mark.parametrize("executor", EXECUTORS, ids=repr)
def test_executors_are_not_content_identifiable(executor: Any) -> None:
    # executors are provenance, never part of a content or pipeline hash
    assert not hasattr(executor, "identity_structure")
    assert not hasattr(executor, "content_hash")


@pytest.mark.parametrize("executor", EXECUTORS, ids=repr)
def test_executor_data_is_json_able_and_names_type_and_options(executor: Any) -> None:
    data = executor.get_executor_data()
    assert set(data) == {"executor_type", "executor_options"}
    assert data["executor_type"] == executor.executor_type_id
    assert all(isinstance(v, str) for v in data.values())
    json.loads(data["executor_options"])


def test_executor_data_reflects_options_deterministically() -> None:
    a = RayExecutor(num_cpus=2, max_retries=3)
    b = RayExecutor(max_retries=3, num_cpus=2)
    assert a.get_executor_data() == b.get_executor_data()
    options = json.loads(a.get_executor_data()["executor_options"])
    assert options == {"address": "auto", "max_retries": 3, "num_cpus": 2}
    assert RayExecutor(num_cpus=1).get_executor_data() != a.get_executor_data()
    assert json.loads(LocalExecutor(max_workers=2).get_executor_data()["executor_options"]) == {
        "max_workers": 2
    }


def test_ray_executor_data_does_not_store_runtime_env_contents() -> None:
    secret_env = {"env_vars": {"API_TOKEN": "s3cr3t"}}
    data = RayExecutor(runtime_env=secret_env).get_executor_data()
    assert "s3cr3t" not in json.dumps(data)
    assert json.loads(data["executor_options"])["runtime_env"] is True


def test_supported_function_types() -> None:
    assert LocalExecutor().supported_function_type_ids() == frozenset()
    assert LocalExecutor().supports("anything.v9")
    ray_executor = RayExecutor()
    assert ray_executor.supports("python.function.v0")
    assert not ray_executor.supports("sql.query.v0")


def test_concurrency_flags() -> None:
    assert not LocalExecutor().supports_concurrent_execution
    assert not LocalExecutor(max_workers=1).supports_concurrent_execution
    assert LocalExecutor(max_workers=2).supports_concurrent_execution
    assert RayExecutor().supports_concurrent_execution


def test_local_rejects_unknown_or_invalid_options() -> None:
    with pytest.raises(ExecutorError, match="num_cpus"):
        LocalExecutor().with_options(num_cpus=2)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ExecutorError, match="max_workers"):
            LocalExecutor(max_workers=bad)  # type: ignore[arg-type]
    with pytest.raises(ExecutorError, match="per-call"):
        LocalExecutor().execute_callable(_double, {"x": 1}, {"num_cpus": 1})


def test_ray_rejects_invalid_constructor_values() -> None:
    with pytest.raises(ExecutorError, match="address"):
        RayExecutor(address=6379)  # type: ignore[arg-type]
    with pytest.raises(ExecutorError, match="num_gpus"):
        RayExecutor(num_gpus=-1)


@pytest.mark.parametrize("executor", EXECUTORS, ids=repr)
def test_executors_pickle_as_values(executor: Any) -> None:
    if isinstance(executor, LocalExecutor):
        # a used pool is runtime state and must not break pickling
        executor.submit_callable(_double, {"x": 1}).result()
    restored = pickle.loads(pickle.dumps(executor))
    assert restored == executor
    assert hash(restored) == hash(executor)


def test_submit_returns_a_concurrent_future() -> None:
    future = LocalExecutor().submit_callable(_double, {"x": 3})
    assert isinstance(future, Future)
    assert future.done()
    assert future.result() == 6
