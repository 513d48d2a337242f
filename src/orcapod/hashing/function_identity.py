"""Identity of Python functions: normalised code hash, signature hash, git state.

``function_code_hash(fn)`` (method ``code_v1``) identifies what a function *computes*, so a
result cache can tell when code changed. It hashes, with
``hash_object``, a structure made of:

* the function's **normalised code**: ``inspect.getsource`` parsed with ``ast``, docstrings
  removed (every function/class body), decorators removed (the framework applies them and
  their effect is captured elsewhere, e.g. the output schema in the URI), dumped with
  ``ast.dump(include_attributes=False)``, so comments, blank lines, formatting and docstrings
  do not matter while every semantic edit does. Lambdas are located in their source line when
  that line holds exactly one lambda. When source cannot be read (REPL lambdas, ``exec``'d
  code) or parsed, the **fallback** hashes the code object: ``co_code``, ``co_consts``
  (recursively), ``co_names``, ``co_varnames`` and the argument counts. Bytecode differs
  between Python versions, so fallback hashes are only stable within one Python version.
* its **default values** and **closure cell values**: functions and classes among them are
  followed as code (below); other values are hashed with ``hash_object``; a value it cannot
  hash raises ``HashingError`` (a default or a closure value parameterises the result).
* transitively, with cycle protection, what it **references by global name** (``LOAD_GLOBAL``
  in its code and nested code): user functions and classes contribute their own normalised
  code (and their references, recursively); user modules contribute the attributes the code
  reads from them (``LOAD_ATTR``/``LOAD_METHOD`` names found on the module); other globals are
  *constants* and contribute their value via ``hash_object`` — or, for a value it cannot hash,
  the code of its class when that class is user code, else just its type's qualified name.
  Installed and standard-library modules, functions and classes contribute only their
  qualified name plus the package ``__version__`` when the package has one.

**Paths in code.** Every value above (constants, defaults, closure values, partial
arguments, and paths inside them) is hashed with ``hash_object(..., path_constants=True)``:
a ``pathlib.Path`` naming a regular file is identified by the file's content (a reference
table or a model the function reads: editing it recomputes), while a path naming a directory,
or nothing yet, is identified by its text. A folder named in code is a location (where the
function writes its outputs, scratch space), not an input: files appearing in it, including
the ones the function writes, must not change its identity, and hashing a large output tree
on every code hash would be slow. The cost of the rule: files a function reads from a folder
constant are not tracked (name the file itself, or pass it as a ``Path`` column, which is
hashed by content as every data value is), and an absolute folder path (built from
``__file__``) is part of the identity, so the same code in another checkout location is
computed once there. Path values in data (columns, sources) are always hashed by content.

"User code" is decided by file location: a module whose top-level package is in
``sys.stdlib_module_names``, a frozen module, or a file under the interpreter's stdlib or
site-packages directories (for both ``sys.prefix`` and ``sys.base_prefix``) is *installed*;
orcapod itself counts as installed (it is the framework, not the user's code). Everything else,
including ``__main__`` and source-less code, is user code. A module's name is not part of the
hash (moving a function to another file keeps its hash); the names by which code refers to
things are. The bound instance of a method (``self``) is not part of a code hash.

``function_identity_components(fn)`` explains a code hash: the same walk, cut into named
``IdentityComponent`` s (kind, name, digest, short value summary): the function's own normalised
``code``, each ``default`` and ``closure`` value, each user ``helper`` function and ``class``
(by qualified name), each module ``global`` and each ``attribute`` read from a user module
(with a short value summary), and each ``library`` reference (qualified name and package
version). Names of things in the function's own module are bare (``THRESHOLD``); others carry
their module (``features.normalise``). Two code hashes of one function differ exactly when
some component was added, removed or has a different digest, so comparing the components of
two identities names what changed.

``function_signature_hash(fn)`` (method ``signature_v1``) hashes parameter names, kinds,
annotations (string annotations as written), defaults and the return annotation.

``git_info(fn)`` runs ``git`` in the directory of the function's file and returns
``{"git_commit": <HEAD sha> | None, "git_dirty": <tracked files modified> | None}``; ``None``
values when there is no source file, no git executable, or no repository/commit there.
Untracked files do not make the state dirty. It is provenance only, never part of a key.
``subprocess`` is imported on the first ``git`` call (``orcapod._lazy.lazy_module``): importing
orcapod does not need it.
"""

from __future__ import annotations

import ast
import dis
import functools
import inspect
import os
import reprlib
import sys
import sysconfig
import textwrap
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orcapod._lazy import lazy_module
from orcapod.errors import HashingError
from orcapod.hashing.object_hashing import hash_object
from orcapod.types import ContentHash

if TYPE_CHECKING:
    import subprocess
else:
    subprocess = lazy_module("subprocess")

__all__ = [
    "CODE_HASH_METHOD",
    "IdentityComponent",
    "SIGNATURE_HASH_METHOD",
    "function_code_hash",
    "function_identity_components",
    "function_signature_hash",
    "git_info",
    "is_user_code",
    "value_summary",
]

CODE_HASH_METHOD = "code_v1"
SIGNATURE_HASH_METHOD = "signature_v1"

_GLOBAL_OPS = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL"})
_ATTR_OPS = frozenset({"LOAD_ATTR", "LOAD_METHOD"})
_FRAMEWORK_PACKAGES = frozenset({"orcapod"})


@dataclass(frozen=True)
class IdentityComponent:
    """One named part of a function's code identity (see the module docstring).

    ``kind``: ``code``, ``default``, ``closure``, ``helper``, ``class``, ``global``,
    ``attribute`` or ``library``; ``digest``: hex digest of the part; ``summary``: a short
    human-readable value (a constant's ``repr``, a library's name and version), or ``""``.
    """

    kind: str
    name: str
    digest: str
    summary: str = ""

    @property
    def key(self) -> str:
        """``"<kind> <name>"``: what identifies the component across two identities."""
        return f"{self.kind} {self.name}"


def function_code_hash(fn: Callable[..., Any]) -> ContentHash:
    """Hash of ``fn``'s normalised code and everything it transitively depends on."""
    structure = _CodeCollector().callable_component(fn)
    return ContentHash(CODE_HASH_METHOD, _hash(structure).digest)


def function_identity_components(
    fn: Callable[..., Any],
) -> tuple[ContentHash, tuple[IdentityComponent, ...]]:
    """``fn``'s code hash (as ``function_code_hash``) and its named components, sorted by key."""
    collector = _CodeCollector(record=True)
    structure = collector.callable_component(fn)
    code_hash = ContentHash(CODE_HASH_METHOD, _hash(structure).digest)
    components = collector.components
    if not any(c.kind == "code" for c in components.values()):  # not a plain function
        components["code"] = IdentityComponent("code", "<callable>", code_hash.to_hex())
    return code_hash, tuple(sorted(components.values(), key=lambda c: c.key))


_SUMMARY = reprlib.Repr()
_SUMMARY.maxstring = 40
_SUMMARY.maxother = 40
_SUMMARY.maxlist = _SUMMARY.maxtuple = _SUMMARY.maxset = _SUMMARY.maxdict = 4


def value_summary(value: Any) -> str:
    """A short ``repr`` of ``value`` (at most 60 characters)."""
    try:
        text = _SUMMARY.repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ of user data must not stop hashing
        text = f"<{type(value).__qualname__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _hash(value: Any) -> ContentHash:
    """``hash_object`` of a value code refers to: a path naming a folder (or nothing yet) is
    its text, a path naming a file its content (see the module docstring)."""
    return hash_object(value, path_constants=True)


def _digest(structure: Any) -> str:
    return _hash(structure).to_hex()


def function_signature_hash(fn: Callable[..., Any]) -> ContentHash:
    """Hash of ``fn``'s parameters (names, kinds, annotations, defaults) and return annotation."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as err:
        raise HashingError(
            f"cannot read the signature of {fn!r} ({err}); pass a Python function"
        ) from err
    params = []
    for p in sig.parameters.values():
        try:
            default = _optional(p.default, p.empty)
            _hash(default)
        except HashingError as err:
            raise HashingError(
                f"cannot hash the default of parameter {p.name!r} of "
                f"{getattr(fn, '__qualname__', fn)!r}: {err}"
            ) from err
        params.append((p.name, p.kind.name, _optional(p.annotation, p.empty), default))
    structure = (tuple(params), _optional(sig.return_annotation, sig.empty))
    return ContentHash(SIGNATURE_HASH_METHOD, _hash(structure).digest)


def _optional(value: Any, empty: Any) -> tuple[bool, Any]:
    return (False, None) if value is empty else (True, value)


def git_info(fn: Callable[..., Any]) -> dict[str, Any]:
    """``{"git_commit": str | None, "git_dirty": bool | None}`` for ``fn``'s source file."""
    unknown: dict[str, Any] = {"git_commit": None, "git_dirty": None}
    try:
        path = inspect.getsourcefile(inspect.unwrap(fn))
    except TypeError:  # builtins and other objects without a source file
        return unknown
    if path is None or not os.path.exists(path):
        return unknown
    directory = os.path.dirname(os.path.abspath(path))
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:  # one git process: the header names HEAD's commit, other lines are changed files
        status = _git(
            ["status", "--porcelain=v2", "--branch", "--untracked-files=no"], directory, env
        )
    except FileNotFoundError:  # no git executable
        return unknown
    except subprocess.CalledProcessError:  # not a repository
        return unknown
    except subprocess.TimeoutExpired:
        return unknown
    lines = status.splitlines()
    commit = next((line.split()[2] for line in lines if line.startswith("# branch.oid ")), None)
    if commit is None or commit == "(initial)":  # no commit yet
        return unknown
    dirty = any(line and not line.startswith("#") for line in lines)
    return {"git_commit": commit, "git_dirty": dirty}


def _git(args: list[str], directory: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        ["git", "-C", directory, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        env=env,
    )
    return result.stdout


# --- user code vs installed code ---------------------------------------------------------------


@functools.cache
def _installed_roots() -> tuple[str, ...]:
    roots: set[str] = set()
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        paths = sysconfig.get_paths(vars={"base": prefix, "platbase": prefix})
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            if key in paths:
                roots.add(os.path.realpath(paths[key]))
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        roots.add(os.path.realpath(sysconfig.get_paths()[key]))
    return tuple(sorted(roots))


def is_user_code(module_name: str | None, filename: str | None) -> bool:
    """True when code from ``module_name`` / ``filename`` is the user's (see module docstring)."""
    top = (module_name or "").partition(".")[0]
    if top in sys.stdlib_module_names or top in _FRAMEWORK_PACKAGES or top == "builtins":
        return False
    if filename is None or filename.startswith("<"):
        return not (filename or "").startswith("<frozen")
    real = os.path.realpath(filename)
    return not any(real.startswith(root + os.sep) for root in _installed_roots())


def _module_version(module_name: str) -> str | None:
    top = sys.modules.get(module_name.partition(".")[0])
    version = getattr(top, "__version__", None)
    return version if isinstance(version, str) else None


def _library_ref(obj: Any) -> tuple[str, str, str | None]:
    module = getattr(obj, "__module__", None) or "builtins"
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or ""
    return ("lib", f"{module}.{name}", _module_version(module))


# --- normalised source ---------------------------------------------------------------------


class _StripDocstrings(ast.NodeTransformer):
    def _strip(self, node: Any) -> Any:
        self.generic_visit(node)
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
        if hasattr(node, "decorator_list"):
            node.decorator_list = []
        return node

    visit_FunctionDef = _strip
    visit_AsyncFunctionDef = _strip
    visit_ClassDef = _strip


def _normalised_source(obj: Any) -> str | None:
    """``ast.dump`` of ``obj``'s source without docstrings/decorators, or None if unavailable."""
    node = _normalised_node(obj)
    if node is None:
        return None
    return ast.dump(node, annotate_fields=True, include_attributes=False)


def _source_without_defaults(fn: types.FunctionType) -> str | None:
    """``_normalised_source`` with the default expressions left out (they are components of
    their own), so a changed default is not also reported as changed code."""
    node = _normalised_node(fn)
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        return None
    node.args.defaults = []
    node.args.kw_defaults = [None for _ in node.args.kw_defaults]
    return ast.dump(node, annotate_fields=True, include_attributes=False)


def _normalised_node(obj: Any) -> ast.AST | None:
    try:
        source = inspect.getsource(obj)
    except (OSError, TypeError):
        return None
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:  # e.g. a lambda inside a multi-line expression
        return None
    name = getattr(obj, "__name__", None)
    node: ast.AST | None = None
    if name == "<lambda>":
        lambdas = [n for n in ast.walk(tree) if isinstance(n, ast.Lambda)]
        node = lambdas[0] if len(lambdas) == 1 else None
    else:
        kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        node = next(
            (n for n in ast.walk(tree) if isinstance(n, kinds) and n.name == name),
            None,
        )
    if node is None:
        return None
    stripped: ast.AST = _StripDocstrings().visit(node)
    return stripped


def _code_structure(code: types.CodeType) -> tuple[Any, ...]:
    consts = tuple(
        _code_structure(c) if isinstance(c, types.CodeType) else _const_value(c)
        for c in code.co_consts
    )
    return (
        "bytecode",
        code.co_code,
        consts,
        code.co_names,
        code.co_varnames,
        code.co_argcount,
        code.co_kwonlyargcount,
    )


def _const_value(value: Any) -> Any:
    try:
        _hash(value)
    except HashingError:
        return ("type", f"{type(value).__module__}.{type(value).__qualname__}")
    return value


def _referenced_names(code: types.CodeType) -> tuple[set[str], set[str]]:
    """Global names and attribute names used by ``code`` and its nested code objects."""
    global_names: set[str] = set()
    attr_names: set[str] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        for instr in dis.get_instructions(current):
            if instr.opname in _GLOBAL_OPS:
                global_names.add(instr.argval)
            elif instr.opname in _ATTR_OPS:
                attr_names.add(instr.argval)
        stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    return global_names, attr_names


# --- the transitive walk ---------------------------------------------------------------------


class _CodeCollector:
    """Builds the hashed structure; ``_seen`` breaks cycles and shares repeated references."""

    def __init__(self, record: bool = False) -> None:
        self._seen: set[int] = set()
        self._record = record
        #: named components by key (only when ``record``; see ``function_identity_components``)
        self.components: dict[str, IdentityComponent] = {}
        self._root_module: str | None = None

    def _scoped(self, module: str | None, name: str) -> str:
        return name if module is None or module == self._root_module else f"{module}.{name}"

    def _note(self, kind: str, name: str, structure: Any, summary: str = "") -> None:
        if self._record:
            component = IdentityComponent(kind, name, _digest(structure), summary)
            self.components.setdefault(component.key, component)

    def _note_reference(self, name: str, value: Any, ref: Any, kind: str) -> None:
        """Record a referenced global / module attribute (user code records itself)."""
        if not self._record or not isinstance(ref, tuple) or not ref:
            return
        tag = ref[0]
        if tag in ("function", "class", "user_module", "ref", "partial", "callable"):
            return
        if tag in {"module", "lib"}:
            self._note("library", name, ref, f"{ref[1]} {ref[2] or ''}".strip())
        else:
            self._note(kind, name, ref, value_summary(value))

    def callable_component(self, fn: Any) -> Any:
        if isinstance(fn, functools.partial):
            return (
                "partial",
                self.callable_component(fn.func),
                tuple(self._value(a, "a partial argument") for a in fn.args),
                {k: self._value(v, f"partial keyword {k!r}") for k, v in fn.keywords.items()},
            )
        if isinstance(fn, types.MethodType):
            return self.callable_component(fn.__func__)
        try:
            fn = inspect.unwrap(fn)
        except ValueError as err:
            raise HashingError(f"cannot unwrap {fn!r}: {err}") from err
        if isinstance(fn, types.FunctionType):
            return self._function(fn)
        if isinstance(fn, type):
            return self._reference(fn, set())
        if callable(fn) and not isinstance(fn, types.BuiltinFunctionType):
            return ("callable", self._reference(type(fn), set()), self._value(fn, "the callable"))
        return _library_ref(fn)

    def _function(self, fn: types.FunctionType) -> Any:
        key = id(fn)
        if key in self._seen:
            return ("ref", fn.__qualname__)
        self._seen.add(key)
        is_root = self._root_module is None
        if is_root:
            self._root_module = fn.__module__ or ""
        code = _normalised_source(fn)
        code_part: Any = ("source", code) if code is not None else _code_structure(fn.__code__)
        defaults = tuple(self._value(v, "a default value") for v in fn.__defaults__ or ())
        kwdefaults = {
            k: self._value(v, f"the default of {k!r}") for k, v in (fn.__kwdefaults__ or {}).items()
        }
        closure: dict[str, Any] = {}
        closure_values: dict[str, Any] = {}
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False):
            try:
                contents = cell.cell_contents
            except ValueError:  # an empty cell (variable not yet assigned)
                closure[name] = ("empty",)
                continue
            closure[name] = self._value(contents, f"closure variable {name!r}")
            closure_values[name] = contents
        if self._record:
            self._note_function(fn, is_root, code_part, defaults, kwdefaults, closure)
            if is_root:  # a helper's closure is part of the helper's digest
                for name, value in closure_values.items():
                    self._note("closure", name, closure[name], value_summary(value))
        return ("function", code_part, defaults, kwdefaults, closure, self._globals(fn))

    def _note_function(
        self,
        fn: types.FunctionType,
        is_root: bool,
        code_part: Any,
        defaults: tuple[Any, ...],
        kwdefaults: dict[str, Any],
        closure: dict[str, Any],
    ) -> None:
        if not is_root:
            name = self._scoped(fn.__module__, fn.__qualname__)
            self._note("helper", name, (code_part, defaults, kwdefaults, closure))
            return
        bare = _source_without_defaults(fn) if code_part[0] == "source" else None
        self._note("code", fn.__qualname__, code_part if bare is None else ("source", bare))
        code = fn.__code__
        positional = code.co_varnames[: code.co_argcount]
        values = fn.__defaults__ or ()
        for param, value, part in zip(
            positional[len(positional) - len(values) :], values, defaults, strict=True
        ):
            self._note("default", param, part, value_summary(value))
        for param, value in (fn.__kwdefaults__ or {}).items():
            self._note("default", param, kwdefaults[param], value_summary(value))

    def _globals(self, fn: types.FunctionType) -> dict[str, Any]:
        global_names, attr_names = _referenced_names(fn.__code__)
        namespace = fn.__globals__
        out: dict[str, Any] = {}
        for name in sorted(global_names):
            if name in namespace:
                out[name] = ref = self._reference(namespace[name], attr_names)
                scoped = self._scoped(fn.__module__, name)
                self._note_reference(scoped, namespace[name], ref, "global")
        return out

    def _reference(self, value: Any, attr_names: set[str]) -> Any:
        """A global referenced by code: code for user code, a name for installed code."""
        if isinstance(value, types.ModuleType):
            if not is_user_code(value.__name__, getattr(value, "__file__", None)):
                return ("module", value.__name__, _module_version(value.__name__))
            key = id(value)
            if key in self._seen:
                return ("ref", value.__name__)
            self._seen.add(key)
            members: dict[str, Any] = {}
            for attr in sorted(attr_names):
                if attr in vars(value):
                    members[attr] = ref = self._reference(getattr(value, attr), attr_names)
                    name = f"{value.__name__}.{attr}"
                    self._note_reference(name, getattr(value, attr), ref, "attribute")
            return ("user_module", members)
        if isinstance(value, types.FunctionType):
            if is_user_code(value.__module__, value.__code__.co_filename):
                return self._function(value)
            return _library_ref(value)
        if isinstance(value, type):
            if _is_user_class(value):
                return self._class(value)
            return _library_ref(value)
        if isinstance(value, types.BuiltinFunctionType | types.MethodType | functools.partial):
            return self.callable_component(value)
        return self._constant(value)

    def _class(self, cls: type) -> Any:
        key = id(cls)
        if key in self._seen:
            return ("ref", cls.__qualname__)
        self._seen.add(key)
        source = _normalised_source(cls)
        bases = tuple(self._reference(b, set()) for b in cls.__bases__ if b is not object)
        self._note("class", self._scoped(cls.__module__, cls.__qualname__), (source, bases))
        members: dict[str, Any] = {}
        for name, member in sorted(vars(cls).items()):
            func = member.__func__ if isinstance(member, staticmethod | classmethod) else member
            if isinstance(func, property):
                accessors = (func.fget, func.fset, func.fdel)
                members[name] = tuple(
                    self._function(f) for f in accessors if isinstance(f, types.FunctionType)
                )
            elif isinstance(func, types.FunctionType):
                members[name] = self._function(func)
        return ("class", cls.__qualname__ if source is None else source, bases, members)

    def _constant(self, value: Any) -> Any:
        try:
            return ("value", _hash(value).to_string())
        except HashingError:
            cls = type(value)
            if _is_user_class(cls):
                return ("instance_of", self._class(cls))
            return ("instance_of", _library_ref(cls))

    def _value(self, value: Any, what: str) -> Any:
        """A default, closure or partial value: code when callable, else its hash (required)."""
        if isinstance(value, types.FunctionType | type | types.ModuleType | functools.partial):
            return self._reference(value, set())
        if isinstance(value, types.MethodType | types.BuiltinFunctionType):
            return self.callable_component(value)
        try:
            return ("value", _hash(value).to_string())
        except HashingError as err:
            raise HashingError(
                f"cannot identify {what} of type {type(value).__qualname__}: {err} A function's "
                "defaults and closure values are part of its identity; use a supported value or "
                "implement identity_structure() on its class."
            ) from err


def _is_user_class(cls: type) -> bool:
    module = sys.modules.get(cls.__module__)
    filename = getattr(module, "__file__", None)
    if filename is None:
        for member in vars(cls).values():
            if isinstance(member, types.FunctionType):
                filename = member.__code__.co_filename
                break
    return is_user_code(cls.__module__, filename)
