"""Every error orcapod raises on purpose.

All of them derive from one root, so ``except OrcapodError`` catches exactly what the library
raises deliberately. Each message says what was wrong and how to fix it; a wrapped low-level
error is always chained (``raise ... from err``).

The tree::

    OrcapodError
    ├── InputValidationError      (also ValueError)  bad user input: columns, values, arguments
    │   ├── SchemaError                              schema mismatch / unsupported or mixed types
    │   │   └── FieldNotFoundError  (also KeyError)  a named field is not in the schema
    │   └── ContextResolutionError                   an unknown data context was asked for
    ├── HashingError              (also TypeError)   a value that cannot be identified stably
    ├── UnboundSourceError  (also NotImplementedError) data asked of a SourceProxy not bound
    │                                                to a live source
    ├── DatabaseError                                a store failed or refused a write/read
    │   ├── DuplicateRecordError                     a record id that is already stored
    │   └── FlushError                               pending rows could not be committed
    ├── ExecutionError                               running user code or an executor failed
    │   ├── ExecutorError         (also TypeError)   an executor is missing, misconfigured or
    │   │                                            incompatible with a packet function
    │   └── PacketFunctionError                      a user function returned a bad value
    ├── PipelineError                                compile / run / save / load of a pipeline
    │   ├── NodeNotFoundError                        a store or pipeline has no such node
    │   └── GraphRenderError                         a graph picture cannot be drawn (Graphviz
    │                                                missing)
    └── ChannelClosedError                           a send to, or receive from, a closed channel

Warnings (things a run survived but a user must not miss)::

    OrcapodWarning                (also UserWarning)
    ├── FailedRowsWarning                            rows of a node failed; ``node.failures()``
    └── NothingRecordedWarning                       a ``with pipeline:`` block recorded no call
"""

from __future__ import annotations

__all__ = [
    "ChannelClosedError",
    "ContextResolutionError",
    "DatabaseError",
    "DuplicateRecordError",
    "ExecutionError",
    "ExecutorError",
    "FailedRowsWarning",
    "FieldNotFoundError",
    "FlushError",
    "GraphRenderError",
    "HashingError",
    "InputValidationError",
    "NodeNotFoundError",
    "NothingRecordedWarning",
    "OrcapodError",
    "OrcapodWarning",
    "PacketFunctionError",
    "PipelineError",
    "SchemaError",
    "UnboundSourceError",
]


class OrcapodError(Exception):
    """Root of every error orcapod raises deliberately."""


class InputValidationError(OrcapodError, ValueError):
    """User input (columns, values, arguments) is invalid; the message names the culprit."""


class SchemaError(InputValidationError):
    """A schema does not match, or a value's type is unsupported or mixed within a column."""


class FieldNotFoundError(SchemaError, KeyError):
    """A field named by the caller is not in the schema (also a ``KeyError``, like a mapping)."""

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0]) if self.args else ""


class ContextResolutionError(InputValidationError):
    """A data context name or version is not one this installation knows."""


class HashingError(OrcapodError, TypeError):
    """A value cannot be given a stable identity (e.g. an arbitrary object, a missing file)."""


class UnboundSourceError(OrcapodError, NotImplementedError):
    """A ``SourceProxy`` was asked for rows before a live source was bound to it."""


class DatabaseError(OrcapodError):
    """A database backend failed or refused an operation."""


class DuplicateRecordError(DatabaseError):
    """A record id that is already stored was added again without ``skip_duplicates``."""


class FlushError(DatabaseError):
    """Pending rows could not be committed; they stay pending and the paths are named."""


class ExecutionError(OrcapodError):
    """Running a function or an executor failed (not the user's own exception)."""


class ExecutorError(ExecutionError, TypeError):
    """An executor is unavailable, misconfigured, or incompatible with a packet function.

    Also a ``TypeError``: assigning an executor of the wrong kind to a packet function is a
    type mismatch, and callers commonly catch it as one."""


class PacketFunctionError(ExecutionError):
    """A packet function returned a value that does not match its declared output."""


class PipelineError(OrcapodError):
    """A pipeline could not be compiled, run, saved or loaded."""


class ChannelClosedError(OrcapodError):
    """A ``send`` to a closed channel, or a ``receive`` from a closed and drained one."""


class OrcapodWarning(UserWarning):
    """Root of every warning orcapod issues."""


class FailedRowsWarning(OrcapodWarning):
    """Some rows of a run failed; list them with ``node.failures()``."""


class NothingRecordedWarning(OrcapodWarning):
    """A ``with pipeline:`` block ended without recording any pod or operator call."""


class NodeNotFoundError(PipelineError):
    """A store or pipeline has no node of the given name (or several, in several pipelines)."""


class GraphRenderError(PipelineError):
    """A picture of a pipeline graph cannot be drawn (Graphviz or its ``dot`` is missing)."""
