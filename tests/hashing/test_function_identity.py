import functools
import importlib
import json
import linecache
import subprocess
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from orcapod.errors import HashingError
from orcapod.hashing.function_identity import (
    CODE_HASH_METHOD,
    SIGNATURE_HASH_METHOD,
    function_code_hash,
    function_signature_hash,
    git_info,
    is_user_code,
)

Loader = Callable[..., types.ModuleType]


@pytest.fixture
def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Loader]:
    """Write modules into tmp_path and (re-)import ``main`` from them, like a fresh process."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.syspath_prepend(str(tmp_path))
    written: set[str] = set()

    def _load(**files: str) -> types.ModuleType:
        for name, text in files.items():
            (tmp_path / f"{name}.py").write_text(textwrap.dedent(text))
            written.add(name)
        for name in written:
            sys.modules.pop(name, None)
        linecache.clearcache()
        importlib.invalidate_caches()
        return importlib.import_module("main")

    yield _load
    for name in written:
        sys.modules.pop(name, None)


def code(fn: Callable[..., object]) -> str:
    return function_code_hash(fn).to_string()


BASE = '''
def f(x, y=2):
    """Multiply and add."""
    return x * y + 1
'''


def test_method_name():
    assert function_code_hash(len).method == CODE_HASH_METHOD == "code_v1"


def test_cosmetic_edits_keep_the_hash(load: Loader):
    before = code(load(main=BASE).f)
    cosmetic = '''
    # a new comment at the top
    import os


    def f(x,   y = 2):
        """A rewritten, much longer docstring.

        With a second paragraph.
        """

        # an inline comment
        return (x * y
                + 1)  # trailing comment
    '''
    assert code(load(main=cosmetic).f) == before


def test_semantic_edits_change_the_hash(load: Loader):
    before = code(load(main=BASE).f)
    assert code(load(main=BASE.replace("+ 1", "+ 2")).f) != before
    assert code(load(main=BASE.replace("y=2", "y=3")).f) != before
    assert code(load(main=BASE.replace("x * y", "y * x")).f) != before
    assert code(load(main=BASE).f) == before


def test_a_helper_in_the_same_module_is_followed(load: Loader):
    src = """
    def helper(v):
        return v + 1

    def f(x):
        return helper(x) * 2
    """
    before = code(load(main=src).f)
    assert code(load(main=src.replace("v + 1", "v + 10")).f) != before
    assert code(load(main=src.replace("return v + 1", "return v+1  # same")).f) == before


def test_helpers_and_constants_in_other_user_modules_are_followed(load: Loader):
    helpers = """
    FACTOR = 3

    def scale(v):
        return v * FACTOR
    """
    main = """
    import helpers
    from helpers import scale

    def f(x):
        return scale(x) + helpers.FACTOR
    """
    before = code(load(main=main, helpers=helpers).f)
    assert code(load(main=main, helpers=helpers.replace("v * FACTOR", "v - FACTOR")).f) != before
    assert code(load(main=main, helpers=helpers.replace("FACTOR = 3", "FACTOR = 4")).f) != before
    assert code(load(main=main, helpers=helpers + "UNUSED = 1\n").f) == before


def test_constants_read_by_the_function_are_part_of_it(load: Loader):
    src = """
    THRESHOLD = 0.5
    LABELS = {"a": 1}
    UNRELATED = 1

    def f(x):
        return x > THRESHOLD and LABELS
    """
    before = code(load(main=src).f)
    assert code(load(main=src.replace("0.5", "0.6")).f) != before
    assert code(load(main=src.replace('"a": 1', '"a": 2')).f) != before
    assert code(load(main=src.replace("UNRELATED = 1", "UNRELATED = 2")).f) == before


def test_unhashable_constants_contribute_their_class(load: Loader):
    src = """
    import threading

    class Model:
        def predict(self, x):
            return x * 2

    MODEL = Model()
    LOCK = threading.Lock()

    def f(x):
        with LOCK:
            return MODEL.predict(x)
    """
    before = code(load(main=src).f)
    assert code(load(main=src.replace("x * 2", "x * 3")).f) != before


FIGURES = """
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
OUT = HERE / "out"
OUT.mkdir(exist_ok=True)
LOOKUP = HERE / "lookup.txt"

@dataclass
class Settings:
    scratch: Path

SETTINGS = {"figures": OUT, "nested": Settings(HERE / "scratch")}

def plot(x, where=OUT):
    target = OUT / f"fig{x}.txt"
    target.write_text(f"figure {x} {LOOKUP.read_text()}")
    return target, SETTINGS, where
"""


def test_a_folder_the_function_writes_into_is_identified_by_its_location(
    load: Loader, tmp_path: Path
):
    """A function that saves its outputs into a folder named by a constant keeps its code
    hash when files appear in that folder, so its results are reused on the next run."""
    (tmp_path / "lookup.txt").write_text("v1")
    mod = load(main=FIGURES)
    before = code(mod.plot)
    mod.plot(1)
    (tmp_path / "out" / "someone_elses.png").write_bytes(b"\x89PNG")
    (tmp_path / "scratch").mkdir()
    (tmp_path / "scratch" / "tmp.bin").write_bytes(b"\0")
    assert code(mod.plot) == code(load(main=FIGURES).plot) == before
    assert function_signature_hash(mod.plot) == function_signature_hash(load(main=FIGURES).plot)
    # another folder is another location
    assert code(load(main=FIGURES.replace('HERE / "out"', 'HERE / "out2"')).plot) != before
    # a file the function reads is still identified by its content
    (tmp_path / "lookup.txt").write_text("v2")
    assert code(load(main=FIGURES).plot) != before
    (tmp_path / "lookup.txt").write_text("v1")
    assert code(load(main=FIGURES).plot) == before


def test_a_path_not_created_yet_is_identified_by_its_text(load: Loader):
    src = """
    from pathlib import Path

    TARGET = Path("results/not-yet")

    def f(x, into=Path("also/not-yet")):
        return TARGET / str(x)
    """
    before = code(load(main=src).f)  # a default naming no file is no error
    assert code(load(main=src.replace("results/not-yet", "results/elsewhere")).f) != before
    assert code(load(main=src.replace("also/not-yet", "also/elsewhere")).f) != before


def test_closures_defaults_and_partials(load: Loader):
    src = """
    import functools

    def make(k):
        def inner(x):
            return x + k
        return inner

    def base(a, b):
        return a - b
    """
    mod = load(main=src)
    assert code(mod.make(1)) == code(mod.make(1))
    assert code(mod.make(1)) != code(mod.make(2))
    assert code(functools.partial(mod.base, 1)) != code(functools.partial(mod.base, 2))
    assert code(functools.partial(mod.base, b=1)) != code(functools.partial(mod.base, 1))


def test_unhashable_default_is_an_error(load: Loader):
    mod = load(
        main="""
    class Opaque:
        pass

    def f(x, y=Opaque()):
        return x
    """
    )
    with pytest.raises(HashingError, match="default"):
        function_code_hash(mod.f)


def test_recursion_terminates_and_is_followed(load: Loader):
    src = """
    def is_even(n):
        return True if n == 0 else is_odd(n - 1)

    def is_odd(n):
        return False if n == 0 else is_even(n - 1)
    """
    before = code(load(main=src).is_even)
    assert code(load(main=src.replace("return False", "return None")).is_even) != before


def test_classes_used_by_the_function_are_followed(load: Loader):
    src = """
    class Scaler:
        factor = 2

        def apply(self, x):
            return x * self.factor

    def f(x):
        return Scaler().apply(x)
    """
    before = code(load(main=src).f)
    assert code(load(main=src.replace("factor = 2", "factor = 5")).f) != before
    assert code(load(main=src.replace("x * self", "x + self")).f) != before


def test_bound_methods_and_wrapped_functions(load: Loader):
    src = """
    import functools

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args):
            return fn(*args)
        return wrapper

    @deco
    def f(x):
        return x + 1

    def plain(x):
        return x + 1

    class C:
        def m(self, x):
            return x + 1
    """
    mod = load(main=src)
    assert code(mod.f) == code(mod.f.__wrapped__)
    assert code(mod.C().m) == code(mod.C.m)
    undecorated = load(main=src.replace("@deco\n    ", ""))
    assert code(undecorated.f) == code(mod.f), "decorators are not part of the code hash"


def test_installed_code_contributes_only_its_name(load: Loader):
    mod = load(
        main="""
    import json
    import numpy as np
    from os.path import join

    def f(x):
        return np.sum(x) + len(json.dumps(x)) + len(join("a", "b"))
    """
    )
    assert code(mod.f) == code(mod.f)
    assert not is_user_code("numpy", np.__file__)
    assert not is_user_code("json", json.__file__)
    assert not is_user_code("os", "<frozen os>")
    assert not is_user_code("orcapod.hashing", None)
    assert is_user_code("main", mod.__file__)
    assert is_user_code("__main__", "<stdin>")


def test_lambdas_with_source(load: Loader):
    src = """
    g = lambda x: x + 1
    """
    before = code(load(main=src).g)
    assert code(load(main=src.replace("x + 1", "x + 2")).g) != before
    assert code(load(main="\n# moved\ng = lambda x:   x + 1\n").g) == before


def test_source_less_functions_fall_back_to_bytecode():
    def compiled(text: str) -> Callable[..., object]:
        namespace: dict[str, object] = {}
        exec(compile(text, "<generated>", "exec"), namespace)
        fn = namespace["f"]
        assert callable(fn)
        return fn

    a = compiled("def f(x):\n    return x + 1\n")
    assert code(a) == code(compiled("def f(x):\n    return x + 1\n"))
    assert code(a) != code(compiled("def f(x):\n    return x + 2\n"))
    assert code(a) != code(compiled("def f(x):\n    return x - 1\n"))


def test_builtins_are_named():
    assert code(len) == code(len)
    assert code(len) != code(abs)


def test_signature_hash():
    def a(x: int, y: float = 1.0, *, z: str = "z") -> int:
        return x

    def body_differs(x: int, y: float = 1.0, *, z: str = "z") -> int:
        return x * 100

    def renamed(x: int, w: float = 1.0, *, z: str = "z") -> int:
        return x

    def other_default(x: int, y: float = 2.0, *, z: str = "z") -> int:
        return x

    def other_annotation(x: str, y: float = 1.0, *, z: str = "z") -> int:
        return 0

    def other_kind(x: int, y: float = 1.0, z: str = "z") -> int:
        return x

    def other_return(x: int, y: float = 1.0, *, z: str = "z") -> str:
        return ""

    sig = function_signature_hash(a)
    assert sig.method == SIGNATURE_HASH_METHOD
    assert function_signature_hash(body_differs) == sig
    for other in (renamed, other_default, other_annotation, other_kind, other_return):
        assert function_signature_hash(other) != sig, other.__name__


def test_signature_hash_rejects_unhashable_defaults():
    class Opaque:
        pass

    def f(x=Opaque()):  # noqa: B008
        return x

    with pytest.raises(HashingError, match="'x'"):
        function_signature_hash(f)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=t@example.org", "-c", "user.name=t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.mark.slow
def test_git_info(load: Loader, tmp_path: Path):
    mod = load(main=BASE)
    assert git_info(mod.f) == {"git_commit": None, "git_dirty": None}  # not a repository yet
    _git(tmp_path, "init", "-q")
    assert git_info(mod.f) == {"git_commit": None, "git_dirty": None}  # no commit yet
    _git(tmp_path, "add", "main.py")
    _git(tmp_path, "commit", "-q", "-m", "init")
    head = _git(tmp_path, "rev-parse", "HEAD")
    assert git_info(mod.f) == {"git_commit": head, "git_dirty": False}
    (tmp_path / "untracked.txt").write_text("x")
    assert git_info(mod.f)["git_dirty"] is False
    (tmp_path / "main.py").write_text(BASE + "\n# edited\n")
    assert git_info(mod.f) == {"git_commit": head, "git_dirty": True}
    assert git_info(len) == {"git_commit": None, "git_dirty": None}


def test_a_helper_read_through_a_module_attribute_is_followed(load: Loader):
    helpers = """
    def scale(v):
        return v * 3

    def unused(v):
        return v
    """
    main = """
    import helpers

    def f(x):
        return helpers.scale(x) + 1
    """
    before = code(load(main=main, helpers=helpers).f)
    assert code(load(main=main, helpers=helpers.replace("v * 3", "v * 4")).f) != before
    assert code(load(main=main, helpers=helpers.replace("return v\n", "return -v\n")).f) == before
    assert code(load(main=main, helpers=helpers.replace("v * 3", "v  *  3  # same")).f) == before
