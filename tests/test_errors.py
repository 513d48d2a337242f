import pytest

from orcapod.errors import (
    ContextResolutionError,
    ExecutorError,
    FieldNotFoundError,
    InputValidationError,
    OrcapodError,
    SchemaError,
)


def test_executor_errors_are_also_type_errors():
    assert issubclass(ExecutorError, TypeError) and issubclass(ExecutorError, OrcapodError)
    with pytest.raises(TypeError, match="incompatible"):
        raise ExecutorError("incompatible executor")


def test_field_not_found_is_a_schema_error_and_a_key_error_with_a_plain_message():
    err = FieldNotFoundError("no field 'q'; use an existing one")
    assert isinstance(err, SchemaError) and isinstance(err, KeyError)
    assert str(err) == "no field 'q'; use an existing one"


def test_context_resolution_errors_are_input_errors():
    assert issubclass(ContextResolutionError, InputValidationError)
    assert issubclass(ContextResolutionError, ValueError)
