"""PacketFunctionBase: Generic[E] executor-protocol dispatch, executor checks at assignment,
call routing, the active switch, versions and identity; PacketFunctionWrapper delegation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any, Self

import pytest

from orcapod.data import Packet
from orcapod.errors import ExecutorError, InputValidationError
from orcapod.executors import (
    LocalExecutor,
    PacketFunctionExecutorProtocol,
    PythonFunctionExecutorProtocol,
)
from orcapod.functions import PacketFunctionBase, PacketFunctionWrapper, PythonPacketFunction
from orcapod.functions.packet_function import parse_version


def double(x: int) -> int:
    return 2 * x


class BareExecutor:
    """Satisfies PacketFunctionExecutorProtocol but cannot execute Python callables."""

    executor_type_id = "bare"
    supports_concurrent_execution = False

    def supported_function_type_ids(self) -> frozenset[str]:
        return frozenset()

    def supports(self, function_type_id: str) -> bool:
        return True

    def with_options(self, **opts: Any) -> Self:
        return type(self)()

    def get_executor_data(self) -> dict[str, Any]:
        return {"executor_type": "bare", "executor_options": "{}"}


class RecordingExecutor(BareExecutor):
    """A real Python executor that records how it was called (sync or async)."""

    executor_type_id = "recording"

    def __init__(self, only: frozenset[str] = frozenset()) -> None:
        self.only = only
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def supported_function_type_ids(self) -> frozenset[str]:
        return self.only

    def supports(self, function_type_id: str) -> bool:
        return not self.only or function_type_id in self.only

    def execute_callable(
        self,
        fn: Callable[..., Any],
        kwargs: Mapping[str, Any],
        executor_options: Mapping[str, Any] | None = None,
        *,
        logger: Any = None,
    ) -> Any:
        self.calls.append(("sync", dict(kwargs)))
        return LocalExecutor().execute_callable(fn, kwargs)

    async def async_execute_callable(
        self,
        fn: Callable[..., Any],
        kwargs: Mapping[str, Any],
        executor_options: Mapping[str, Any] | None = None,
        *,
        logger: Any = None,
    ) -> Any:
        self.calls.append(("async", dict(kwargs)))
        return await LocalExecutor().async_execute_callable(fn, kwargs)

    def submit_callable(
        self,
        fn: Callable[..., Any],
        kwargs: Mapping[str, Any],
        executor_options: Mapping[str, Any] | None = None,
        *,
        logger: Any = None,
    ) -> Future[Any]:
        return LocalExecutor().submit_callable(fn, kwargs)


def test_python_packet_function_resolves_its_executor_protocol_once_per_class() -> None:
    assert PythonPacketFunction._resolved_executor_protocol is PythonFunctionExecutorProtocol


def test_wrapper_stays_generic_and_resolves_no_protocol() -> None:
    assert PacketFunctionWrapper._resolved_executor_protocol is None


def test_plain_subclass_inherits_the_resolved_protocol() -> None:
    class Sub(PythonPacketFunction):
        pass

    assert Sub._resolved_executor_protocol is PythonFunctionExecutorProtocol


def test_custom_generic_subclass_resolves_its_own_protocol() -> None:
    class Custom(PacketFunctionBase[PacketFunctionExecutorProtocol]):
        pass

    assert Custom._resolved_executor_protocol is PacketFunctionExecutorProtocol


def test_executor_without_python_protocol_is_rejected_at_assignment() -> None:
    pf = PythonPacketFunction(double, "y")
    with pytest.raises(ExecutorError) as info:
        pf.executor = BareExecutor()  # type: ignore[assignment]
    message = str(info.value)
    assert "BareExecutor" in message
    assert "PythonFunctionExecutorProtocol" in message
    assert "double" in message
    assert pf.executor is None


def test_executor_not_supporting_the_type_id_is_rejected_naming_both() -> None:
    pf = PythonPacketFunction(double, "y")
    with pytest.raises(ExecutorError) as info:
        pf.set_executor(RecordingExecutor(only=frozenset({"wasm.function.v0"})))
    message = str(info.value)
    assert "python.function.v0" in message
    assert "wasm.function.v0" in message
    assert "RecordingExecutor" in message


def test_a_non_executor_is_rejected() -> None:
    with pytest.raises(ExecutorError, match="not an executor"):
        PythonPacketFunction(double, "y", executor=object())  # type: ignore[arg-type]


def test_constructor_executor_goes_through_the_same_check() -> None:
    with pytest.raises(ExecutorError):
        PythonPacketFunction(double, "y", executor=BareExecutor())  # type: ignore[arg-type]


def test_none_clears_the_executor() -> None:
    pf = PythonPacketFunction(double, "y", executor=LocalExecutor())
    pf.executor = None
    assert pf.executor is None


def test_call_routes_through_execute_callable_when_an_executor_is_set() -> None:
    executor = RecordingExecutor()
    pf = PythonPacketFunction(double, "y", executor=executor)
    out = pf.call(Packet({"x": 4}))
    assert out is not None and out["y"] == 8
    assert executor.calls == [("sync", {"x": 4})]


def test_async_call_routes_through_async_execute_callable() -> None:
    executor = RecordingExecutor()
    pf = PythonPacketFunction(double, "y", executor=executor)
    out = asyncio.run(pf.async_call(Packet({"x": 5})))
    assert out is not None and out["y"] == 10
    assert executor.calls == [("async", {"x": 5})]


def test_without_executor_the_function_is_called_directly() -> None:
    pf = PythonPacketFunction(double, "y")
    assert pf.call(Packet({"x": 3}))["y"] == 6  # type: ignore[index]
    assert asyncio.run(pf.async_call(Packet({"x": 3})))["y"] == 6  # type: ignore[index]


def test_inactive_function_returns_none_everywhere_and_never_runs(calls: Any) -> None:
    def record(x: int) -> int:
        calls.add(x)
        return x

    executor = RecordingExecutor()
    pf = PythonPacketFunction(record, "y", executor=executor)
    pf.set_active(False)
    packet = Packet({"x": 1})
    assert not pf.is_active()
    assert pf.call(packet) is None
    assert asyncio.run(pf.async_call(packet)) is None
    assert pf.direct_call(packet) is None
    assert asyncio.run(pf.direct_async_call(packet)) is None
    assert pf.submit_call(packet).result() is None
    assert len(calls) == 0 and executor.calls == []
    pf.set_active(True)
    assert pf.call(packet)["y"] == 1  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "major", "minor"),
    [("v0.0", 0, "0"), ("v1.2", 1, "2"), ("v1.3rc", 1, "3rc"), ("2.10", 2, "10")],
)
def test_version_parsing(text: str, major: int, minor: str) -> None:
    assert parse_version(text) == (major, minor)
    pf = PythonPacketFunction(double, "y", version=text)
    assert pf.major_version == major
    assert pf.uri[2] == f"v{major}"


@pytest.mark.parametrize("bad", ["latest", "v1", ""])
def test_bad_version_is_rejected(bad: str) -> None:
    with pytest.raises(InputValidationError, match="major"):
        PythonPacketFunction(double, "y", version=bad)


def test_uri_shape_and_what_it_depends_on() -> None:
    pf = PythonPacketFunction(double, "y", version="v1.4")
    name, schema_hash, major, type_id = pf.uri
    assert (name, major, type_id) == ("double", "v1", "python.function.v0")
    assert schema_hash.startswith("object_v1:")
    # minor versions share a URI; the output schema and the name do not
    assert PythonPacketFunction(double, "y", version="v1.9").uri == pf.uri
    assert PythonPacketFunction(double, "z", version="v1.4").uri != pf.uri
    assert PythonPacketFunction(double, "y", function_name="twice").uri != pf.uri
    other = PythonPacketFunction(double, "y", output_schema={"y": float}, version="v1.4")
    assert other.uri[1] != schema_hash


def test_content_hash_includes_code_pipeline_hash_only_uri() -> None:
    def double(x: int) -> int:  # same name and schema, different code
        return x + x

    original = PythonPacketFunction(globals()["double"], "y")
    edited = PythonPacketFunction(double, "y")
    assert original.uri == edited.uri
    assert original.pipeline_hash() == edited.pipeline_hash()
    assert original.content_hash() != edited.content_hash()
    assert original.content_hash() == PythonPacketFunction(globals()["double"], "y").content_hash()


def test_executor_is_not_part_of_identity() -> None:
    plain = PythonPacketFunction(double, "y")
    local = PythonPacketFunction(double, "y", executor=LocalExecutor(max_workers=3))
    assert plain.content_hash() == local.content_hash()
    assert plain.pipeline_hash() == local.pipeline_hash()


def test_variation_and_execution_data() -> None:
    pf = PythonPacketFunction(double, "y", executor=LocalExecutor(max_workers=2))
    variation = pf.get_function_variation_data()
    assert set(variation) == {
        "function_name",
        "function_signature_hash",
        "function_content_hash",
        "git_hash",
    }
    assert variation["function_name"] == "double"
    assert variation["function_content_hash"] == pf.code_hash
    assert variation["git_hash"] == "unknown" or len(variation["git_hash"]) >= 40
    execution = pf.get_execution_data()
    assert execution["executor_type"] == "local"
    assert '"max_workers": 2' in execution["executor_options"]
    assert execution["python_version"].count(".") == 2
    assert all(isinstance(v, str) for v in [*variation.values(), *execution.values()])
    pf.executor = None
    assert pf.get_execution_data()["executor_type"] == "none"


def test_with_executor_returns_a_copy_and_leaves_the_original_alone() -> None:
    base = LocalExecutor()
    pf = PythonPacketFunction(double, "y", executor=base)
    copy = pf.with_executor(base.with_options(max_workers=4))
    assert copy is not pf
    assert pf.executor is base
    assert copy.executor == LocalExecutor(max_workers=4)
    assert copy.executor is not base
    assert copy.uri == pf.uri


class Wrapper(PacketFunctionWrapper[PythonFunctionExecutorProtocol]):
    pass


def test_wrapper_delegates_identity_schemas_and_calls() -> None:
    inner = PythonPacketFunction(double, "y", version="v2.1", label="dbl")
    wrapper = Wrapper(inner)
    assert wrapper.uri == inner.uri
    assert wrapper.content_hash() == inner.content_hash()
    assert wrapper.pipeline_hash() == inner.pipeline_hash()
    assert wrapper.input_packet_schema == inner.input_packet_schema
    assert wrapper.output_packet_schema == inner.output_packet_schema
    assert wrapper.get_function_variation_data() == inner.get_function_variation_data()
    assert wrapper.computed_label() == "dbl"
    assert wrapper.call(Packet({"x": 2}))["y"] == 4  # type: ignore[index]


def test_wrapper_executor_and_active_state_are_the_wrapped_functions() -> None:
    inner = PythonPacketFunction(double, "y")
    wrapper = Wrapper(inner)
    executor = RecordingExecutor()
    wrapper.executor = executor
    assert inner.executor is executor
    assert wrapper.get_execution_data()["executor_type"] == "bare"
    wrapper.call(Packet({"x": 1}))
    assert executor.calls == [("sync", {"x": 1})]
    wrapper.set_active(False)
    assert not inner.is_active()
    assert wrapper.call(Packet({"x": 1})) is None


def test_wrapper_with_executor_copies_the_wrapped_function() -> None:
    inner = PythonPacketFunction(double, "y")
    wrapper = Wrapper(inner)
    clone = wrapper.with_executor(LocalExecutor())
    assert inner.executor is None
    assert clone.executor == LocalExecutor()
    assert clone.packet_function is not inner


def test_both_shipped_executors_conform_and_are_accepted() -> None:
    from orcapod.executors import RayExecutor

    for executor in (LocalExecutor(), LocalExecutor(max_workers=2), RayExecutor(num_cpus=1)):
        assert isinstance(executor, PythonFunctionExecutorProtocol)
        pf = PythonPacketFunction(double, "y", executor=executor)  # no Ray start needed
        assert pf.executor is executor
        assert pf.supports_concurrent_calls is executor.supports_concurrent_execution
