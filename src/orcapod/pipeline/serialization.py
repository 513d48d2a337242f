"""Save a compiled pipeline as versioned JSON and load it back.

Format (``format_version`` 1)::

    {"format_version": 1, "orcapod_version": "...", "name": ["study"],
     "databases": {"pipeline": {"type": "delta", "base_path": "...", "batch_size": N},
                   "result": null},
     "nodes": [{"label", "node_type", "upstreams": [labels], "content_hash",
                "pipeline_hash", "output_schema": {"tag": {...}, "packet": {...}},
                "source" | "function" | "operator": {...}}, ...]}

Nodes are listed in topological order; upstreams are labels.

* **Sources** are snapshotted into the pipeline's own database at
  ``<scope>/_sources/<content hash>`` (rows deduplicated by row hash, with their system tags
  and source info, plus a row index to keep their order). Loading reads the snapshot back as
  a stream with the saved content and pipeline hashes, so downstream nodes keep their
  identities and their stored records. A missing snapshot (an in-memory store that did not
  survive) loads the source ``UNAVAILABLE``; so does a source with no rows (its snapshot is
empty, and the saved schema text is informational only).
* **Function nodes** reference their Python function by ``module`` + ``qualname`` (plus
  ``output_keys``, ``function_name``, ``version``, and ``module_root``: the ``sys.path``
  entry the module was found under). A saved pipeline is code: loading imports those modules,
  so by default only modules under the recorded roots or next to the pipeline file (or
  already imported) are imported, and ``Pipeline.load(path, trusted=True)`` is needed for any
  other (``load_safety``). On load the object found there is used
  as is when it is a decorated function (``.pod``) or a ``FunctionPod``, else wrapped again in
  a ``PythonPacketFunction``. If it cannot be imported, the node loads ``READ_ONLY``, its
  ``load_reason`` saying why and how to import it.
* A function defined in the script being run (module ``__main__``, or ``__orcapod_run__``
  for ``orcapod run``) cannot be imported again by name: ``save`` writes the file all the
  same (its nodes still load read-only, read their stored rows and take store maintenance)
  and issues an ``OrcapodWarning`` at once saying to move the function into a module.
  Decision: the script is not recorded to be run again on load, since running a script runs
  all its top-level code (reading data, building and maybe running pipelines) - a load that
  did that would be neither cheap nor safe to do implicitly.
* **Operator nodes** store their class name (from ``orcapod.operators``), their parameters
  and cache mode; parameters that are not plain JSON make the node ``READ_ONLY`` on load.
* A node whose upstream is not ``FULL`` is ``READ_ONLY`` too. A read-only node keeps its
  label, hashes and schema (``ReadOnlyNode``) but refuses to run, and so does
  ``Pipeline.run`` — with a ``PipelineError`` naming each node and why.
* A read-only **function** node still reads: the file names its tables in the store
  (``function.tables``: its pipeline records and, when results live in the store's shared
  results area, its results; paths relative to the pipeline database), and its ``as_table()``
  reads them as ``StoreView.rows_of`` does — every row recorded under its record path, the
  newest per tag, tag columns then output columns, without importing its function (a file
  saved without ``tables`` loads a node that refuses to read). Other read-only nodes refuse
  to read.
* Databases: each is saved by what names it - a local store's path (relative to the file's
  folder when inside it, so a project folder can be moved), a URI without its secrets - and
  opened again on load; a missing local store is an error, never created
  (``orcapod.pipeline.saved_databases``).

A loaded function whose code changed since saving loads ``FULL`` with a new content hash:
it is a new node over the same tables, so only rows it has not computed are computed.
"""

from __future__ import annotations

import importlib
import json
import warnings
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow as pa

import orcapod
import orcapod.operators
from orcapod.data.conversion import schema_to_arrow
from orcapod.databases import ArrowDatabase
from orcapod.errors import DatabaseError, InputValidationError, OrcapodWarning, PipelineError
from orcapod.functions.function_pod import FunctionPod
from orcapod.functions.packet_function import PacketFunctionWrapper
from orcapod.functions.python_function import PythonPacketFunction
from orcapod.nodes.source_node import SourceNode
from orcapod.nodes.summary import NodeRunSummary, NodeType
from orcapod.operators.base import Operator
from orcapod.pipeline.load_safety import check_imports, import_hint, module_root
from orcapod.pipeline.saved_databases import database_config, describe_failure, open_database
from orcapod.pipeline.store_view import NodeInfo, StoreView
from orcapod.sources.cached import row_hash_ids
from orcapod.streams import ArrowTableStream
from orcapod.types import CacheMode, ColumnConfig, ContentHash, Schema
from orcapod.types.columns import RECORD_HASH, SNAPSHOT_ROW

__all__ = [
    "FORMAT_VERSION",
    "LoadStatus",
    "ReadOnlyNode",
    "load_pipeline",
    "save_pipeline",
]

FORMAT_VERSION = 1
#: the modules of a script being run: ``python file.py`` and ``orcapod run file.py``
SCRIPT_MODULES = ("__main__", "__orcapod_run__")
_SNAPSHOT_COLUMNS = ColumnConfig(source=True, system_tags=True)


class LoadStatus(StrEnum):
    """How completely a node came back from ``Pipeline.load``."""

    FULL = "full"  #: rebuilt; runs and reads like the original
    READ_ONLY = "read_only"  #: identity and schema only; cannot run (see ``load_reason``)
    UNAVAILABLE = "unavailable"  #: a source whose rows are gone


class ReadOnlyNode:
    """A node that could not be rebuilt: it keeps its identity and schema, never runs."""

    runnable = False

    def __init__(
        self,
        descriptor: Mapping[str, Any],
        status: LoadStatus,
        reason: str,
        reader: Callable[[], pa.Table] | None = None,
    ) -> None:
        self.label: str = descriptor["label"]
        self.node_type = NodeType(descriptor["node_type"])
        self.load_status = status
        self.load_reason = reason
        self.descriptor = dict(descriptor)
        self._content_hash = ContentHash.from_string(descriptor["content_hash"])
        self._pipeline_hash = ContentHash.from_string(descriptor["pipeline_hash"])
        self._reader = reader

    def __repr__(self) -> str:
        return f"ReadOnlyNode({self.label!r}, {self.load_status.value}: {self.load_reason})"

    def content_hash(self) -> ContentHash:
        return self._content_hash

    def pipeline_hash(self) -> ContentHash:
        return self._pipeline_hash

    def _refuse(self) -> PipelineError:
        return PipelineError(
            f"node {self.label!r} was loaded {self.load_status.value}: {self.load_reason}; "
            "fix that and load the pipeline again"
        )

    def refresh(self) -> None:
        """Nothing is kept: a read-only node reads nothing."""

    def run(self, max_concurrency: int | None = None) -> NodeRunSummary:
        raise self._refuse()

    def as_table(self, *args: Any, **kwargs: Any) -> pa.Table:
        """The rows stored for this node (tag and output columns), when its tables are known;
        hidden columns are not available (module docstring)."""
        if self._reader is None:
            raise self._refuse()
        return self._reader()

    def iter_packets(self) -> Any:
        raise self._refuse()

    def flush(self) -> None:
        """Nothing pending: a read-only node never writes."""


# Saving ------------------------------------------------------------------------------------


def _schema_text(schema: Schema) -> dict[str, str]:
    arrow = schema_to_arrow(schema)
    return {field.name: str(field.type) for field in arrow}


def _json_or_none(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return None
    return value


def _python_function(pod: Any) -> PythonPacketFunction | None:
    function = getattr(pod, "packet_function", None)
    while isinstance(function, PacketFunctionWrapper):
        function = function.packet_function
    return function if isinstance(function, PythonPacketFunction) else None


def _function_descriptor(pod: Any) -> dict[str, Any]:
    function = _python_function(pod)
    if function is None:
        return {"module": None, "qualname": None, "reason": f"{type(pod).__name__} pod"}
    fn = function.function
    return {
        "module": getattr(fn, "__module__", None),
        "module_root": module_root(getattr(fn, "__module__", None)),
        "qualname": getattr(fn, "__qualname__", None),
        "output_keys": list(function.output_keys),
        "function_name": function.canonical_function_name,
        "version": function.version,
        "pod_label": getattr(pod, "label", None),
        "uri": list(pod.uri),
    }


def _function_tables(pipeline: Any, node: Any) -> dict[str, list[str]]:
    """Where a function node's rows are, relative to the pipeline database."""
    records = [*pipeline.name_parts, *node.record_path]
    tables = {"records": records}
    if pipeline.result_database is None:  # the store's shared results area
        tables["results"] = ["_result", *node.packet_function.uri]
    return tables


def _stored_rows_reader(
    entry: Mapping[str, Any], database: ArrowDatabase, pipeline_name: str
) -> Callable[[], pa.Table] | None:
    """Reads a read-only function node's stored rows (module docstring), if the file says
    where they are."""
    tables = entry.get("function", {}).get("tables")
    if not tables:
        return None
    schema = entry.get("output_schema", {})
    info = NodeInfo(
        pipeline=pipeline_name,
        label=entry["label"],
        node_type=NodeType.FUNCTION.value,
        tables={kind: tuple(path) for kind, path in tables.items()},
        tag_schema=dict(schema.get("tag", {})),
        packet_schema=dict(schema.get("packet", {})),
        upstreams=tuple(entry.get("upstreams", ())),
        last_run=None,
        updated_at=None,
        rows=None,
    )
    return lambda: StoreView(database).rows_of(info)


def _snapshot_source(node: Any, database: ArrowDatabase) -> dict[str, Any]:
    table = node.as_table(_SNAPSHOT_COLUMNS)
    path = ("_sources", node.content_hash().to_hex())
    if table.num_rows:
        table = table.append_column(SNAPSHOT_ROW, pa.array(range(table.num_rows), type=pa.int64()))
        table = table.append_column(RECORD_HASH, row_hash_ids(table))
        database.add_records(path, table, record_id_column=RECORD_HASH, skip_duplicates=True)
    return {"path": list(path), "tag_columns": list(node.keys()[0]), "rows": table.num_rows}


def _warn_script_functions(in_script: list[str], path: Path) -> None:
    """Warn (once per save) of the function nodes whose function lives in the script being
    run (``in_script``: their labels)."""
    if in_script:
        warnings.warn(
            f"{str(path)!r} was saved, but the functions of the nodes {', '.join(in_script)} "
            "are defined in the script being run, which cannot be imported again: "
            "Pipeline.load will load those nodes read-only (their stored rows can be read and "
            "forgotten, not computed). Move the functions into a module (a .py file next to "
            "the script) and import them from there, then save again",
            OrcapodWarning,
            stacklevel=4,
        )


def save_pipeline(pipeline: Any, path: Path) -> Path:
    """Write ``pipeline`` (compiled) to ``path`` as JSON; return the path."""
    graph = pipeline.graph_state
    database = pipeline.scoped_database
    nodes: list[dict[str, Any]] = []
    in_script: list[str] = []
    for label, node_type, node in graph.ordered():
        if isinstance(node, ReadOnlyNode):
            nodes.append({**node.descriptor, "upstreams": list(graph.upstream_labels(label))})
            continue
        tag_schema, packet_schema = node.output_schema()
        entry: dict[str, Any] = {
            "label": label,
            "node_type": node_type.value,
            "upstreams": list(graph.upstream_labels(label)),
            "content_hash": node.content_hash().to_string(),
            "pipeline_hash": node.pipeline_hash().to_string(),
            "output_schema": {
                "tag": _schema_text(tag_schema),
                "packet": _schema_text(packet_schema),
            },
        }
        if node_type is NodeType.SOURCE:
            entry["source"] = _snapshot_source(node, database)
        elif node_type is NodeType.FUNCTION:
            entry["function"] = _function_descriptor(pipeline.function_pod_of(label))
            entry["function"]["tables"] = _function_tables(pipeline, node)
            if entry["function"]["module"] in SCRIPT_MODULES:
                qualname = entry["function"]["qualname"]
                in_script.append(label if qualname == label else f"{label} ({qualname})")
        else:
            operator = node.operator
            entry["operator"] = {
                "class_name": type(operator).__name__,
                "parameters": _json_or_none(operator.parameters()),
                "cache_mode": node.cache_mode.value,
            }
        nodes.append(entry)
    database.flush()
    _warn_script_functions(in_script, path)
    document = {
        "format_version": FORMAT_VERSION,
        "orcapod_version": orcapod.__version__,
        "name": list(pipeline.name_parts),
        "databases": {
            "pipeline": database_config(pipeline.pipeline_database, path.parent),
            "result": database_config(pipeline.result_database, path.parent),
        },
        "nodes": nodes,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


# Loading -----------------------------------------------------------------------------------


def _read_document(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise PipelineError(f"no saved pipeline at {str(path)!r}") from err
    except json.JSONDecodeError as err:
        raise PipelineError(f"{str(path)!r} is not a saved pipeline (invalid JSON: {err})") from err
    if not isinstance(document, dict) or "format_version" not in document:
        raise PipelineError(f"{str(path)!r} is not a saved orcapod pipeline (no format_version)")
    version = document["format_version"]
    if version != FORMAT_VERSION:
        raise PipelineError(
            f"{str(path)!r} has format_version {version!r}; this orcapod reads version "
            f"{FORMAT_VERSION} — load it with the orcapod version that saved it"
        )
    return document


def _load_source(entry: Mapping[str, Any], database: ArrowDatabase) -> tuple[Any, LoadStatus, str]:
    spec = entry["source"]
    stored = database.get_all_records(tuple(spec["path"]))
    if stored is None or stored.num_rows != spec["rows"]:
        if not spec["rows"]:
            reason = "it had no rows when the pipeline was saved"
        else:
            reason = (
                f"the snapshot of its rows saved in the store holds "
                f"{0 if stored is None else stored.num_rows} of its {spec['rows']} rows (at "
                f"{'/'.join(spec['path'])})"
            )
        return ReadOnlyNode(entry, LoadStatus.UNAVAILABLE, reason), LoadStatus.UNAVAILABLE, reason
    table = stored.sort_by(SNAPSHOT_ROW).drop_columns([SNAPSHOT_ROW])
    stream = ArrowTableStream(
        table,
        spec["tag_columns"],
        identity=ContentHash.from_string(entry["content_hash"]),
        pipeline_identity=ContentHash.from_string(entry["pipeline_hash"]),
        label=entry["label"],
    )
    return SourceNode(stream, label=entry["label"]), LoadStatus.FULL, ""


def _import_object(module_name: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _load_pod(spec: Mapping[str, Any], folder: Path) -> tuple[Any | None, str]:
    """The pod a saved function entry names, or None and why not (saying how to import it);
    ``folder``: the pipeline file's."""
    module_name, qualname = spec.get("module"), spec.get("qualname")
    if module_name in SCRIPT_MODULES:
        return None, (
            f"its function {qualname} was defined in the script that saved the pipeline "
            f"(module {module_name}), which cannot be imported again: move it into a module, "
            "import it from there in the script, and run and save the pipeline again"
        )
    if not module_name or not qualname or "<locals>" in qualname:
        where = f"{module_name}.{qualname}" if module_name else spec.get("reason", "?")
        return None, (
            f"its function {where} cannot be imported by name: define it at the top level of "
            "a module, and save the pipeline again"
        )
    try:
        obj = _import_object(module_name, qualname)
    except ImportError as err:
        hint = import_hint(spec, folder) or (
            "make its module importable (install it, or add its folder to sys.path)"
        )
        return None, f"its function {module_name}.{qualname} cannot be imported ({err}); {hint}"
    except AttributeError as err:
        return None, (
            f"its function {module_name}.{qualname} cannot be imported ({err}); it was renamed "
            "or removed: restore it under that name"
        )
    pod = getattr(obj, "pod", None)
    if isinstance(pod, FunctionPod):
        return pod, ""
    if isinstance(obj, FunctionPod):
        return obj, ""
    if not callable(obj):
        return None, f"{module_name}.{qualname} is not a function"
    try:
        function = PythonPacketFunction(
            obj,
            spec["output_keys"],
            function_name=spec.get("function_name"),
            version=spec.get("version", "v0.0"),
        )
    except InputValidationError as err:
        return None, f"{module_name}.{qualname} no longer fits its saved signature ({err})"
    return FunctionPod(function, label=spec.get("pod_label")), ""


def _load_operator(spec: Mapping[str, Any]) -> tuple[Operator | None, str]:
    name = spec["class_name"]
    cls = getattr(orcapod.operators, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Operator)):
        return None, f"operator {name!r} is not in orcapod.operators"
    if spec.get("parameters") is None:
        return None, f"the parameters of {name} could not be saved as JSON"
    try:
        return cls.from_config({"config": spec["parameters"]}), ""
    except (TypeError, ValueError) as err:
        return None, f"{name} could not be rebuilt from its parameters ({err})"


def _open(config: Mapping[str, Any] | None, what: str, path: Path) -> ArrowDatabase | None:
    try:
        return open_database(config, what, path)
    except DatabaseError as err:
        raise PipelineError(describe_failure(config, what, path, err)) from err


def load_pipeline(
    cls: Any,
    path: Path,
    pipeline_database: ArrowDatabase | None = None,
    result_database: ArrowDatabase | None = None,
    trusted: bool = False,
) -> Any:
    """Rebuild the pipeline saved at ``path`` as an instance of ``cls`` (``Pipeline``);
    ``trusted``: import the functions' modules wherever they are (``load_safety``)."""
    document = _read_document(path)
    databases = document.get("databases", {})
    if pipeline_database is None:
        pipeline_database = _open(databases.get("pipeline"), "pipeline", path)
    if result_database is None:
        result_database = _open(databases.get("result"), "result", path)
    check_imports(document, trusted, path)  # after: importing a module may create a store
    pipeline = cls(tuple(document["name"]), pipeline_database, result_database, auto_compile=False)
    try:
        _restore_nodes(pipeline, document, pipeline_database, path.parent)
    except DatabaseError as err:
        said = describe_failure(databases.get("pipeline"), "pipeline", path, err)
        raise PipelineError(said) from err
    return pipeline


def _restore_nodes(
    pipeline: Any, document: Mapping[str, Any], database: ArrowDatabase | None, folder: Path
) -> None:
    """Rebuild the saved nodes into ``pipeline``, in the file's (topological) order."""
    scoped = pipeline.scoped_database
    statuses: dict[str, LoadStatus] = {}
    causes: dict[str, str] = {}  #: label of a node not FULL -> the first cause: "'x': why"
    nodes: dict[str, Any] = {}
    for entry in document["nodes"]:
        label = entry["label"]
        upstreams = list(entry["upstreams"])
        node_type = NodeType(entry["node_type"])
        blocked = [u for u in upstreams if statuses[u] is not LoadStatus.FULL]
        pod = None
        node: Any = None
        reason = ""
        if node_type is NodeType.SOURCE:
            node, status, reason = _load_source(entry, scoped)
        elif blocked:
            reason = f"its upstream {blocked[0]!r} is {statuses[blocked[0]].value}"
            reason += f" ({causes[blocked[0]]})"
        elif node_type is NodeType.FUNCTION:
            pod, reason = _load_pod(entry["function"], folder)
            if pod is not None:
                node = pipeline.new_function_node(pod, nodes[upstreams[0]], label)
        else:
            operator, reason = _load_operator(entry["operator"])
            if operator is not None:
                node = pipeline.new_operator_node(
                    operator,
                    [nodes[u] for u in upstreams],
                    label,
                    CacheMode(entry["operator"].get("cache_mode", CacheMode.OFF)),
                )
        if node is None:
            status = LoadStatus.READ_ONLY
            reader = None
            if node_type is NodeType.FUNCTION and database is not None:
                reader = _stored_rows_reader(entry, database, pipeline.name)
            node = ReadOnlyNode(entry, status, reason, reader)
        elif node_type is not NodeType.SOURCE:
            status = LoadStatus.FULL
        if status is not LoadStatus.FULL:
            causes[label] = causes[blocked[0]] if blocked else f"{label!r}: {reason}"
        statuses[label] = status
        nodes[label] = node
        pipeline.restore_node(label, node, upstreams, status, pod=pod)
