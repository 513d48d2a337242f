import dataclasses
import datetime as dt
import enum
import json
import os
import re
import subprocess
import sys
import textwrap
import typing
import uuid
from collections import OrderedDict
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from orcapod.errors import HashingError
from orcapod.hashing import hash_object
from orcapod.hashing.object_hashing import OBJECT_HASH_METHOD
from orcapod.types import ContentHash, Schema


def h(obj: object) -> str:
    return hash_object(obj).to_string()


def test_result_is_a_sha256_content_hash():
    result = hash_object(1)
    assert result.method == OBJECT_HASH_METHOD == "object_v1"
    assert len(result.digest) == 32


def test_primitives_are_tagged_by_type():
    values = [None, True, False, 0, 1, -1, 1.0, 0.0, "1", "", b"1", b"", 2**100, -(2**100)]
    assert len({h(v) for v in values}) == len(values)


def test_float_canonicalisation():
    assert h(-0.0) == h(0.0)
    assert h(float("nan")) == h(-float("nan")) == h(np.float64("nan"))
    assert h(1.5) == h(np.float64(1.5)) == h(np.float32(1.5))
    assert h(float("inf")) != h(float("-inf"))


def test_numpy_scalars_are_their_python_values():
    assert h(np.int64(3)) == h(3)
    assert h(np.bool_(True)) == h(True)
    assert h(np.str_("x")) == h("x")


def test_bytes_like_values_are_bytes():
    assert h(bytearray(b"ab")) == h(b"ab") == h(memoryview(b"ab"))


def test_ordered_containers_keep_order_and_tag_their_kind():
    assert h([1, 2]) != h([2, 1])
    assert h([1, 2]) != h((1, 2))
    assert h([[1], 2]) != h([1, [2]])
    assert h(["ab"]) != h(["a", "b"])
    assert h([]) != h(()) != h({})


class Pair(typing.NamedTuple):
    a: int
    b: int


class OtherPair(typing.NamedTuple):
    a: int
    b: int


def test_namedtuples_are_class_and_fields():
    assert h(Pair(1, 2)) == h(Pair(1, 2))
    assert h(Pair(1, 2)) != h(Pair(2, 1))
    assert h(Pair(1, 2)) != h(OtherPair(1, 2))
    assert h(Pair(1, 2)) != h((1, 2))


def test_mappings_and_sets_are_order_free():
    a = {"x": 1, "y": [1, 2], "z": {"n": None}}
    b = {"z": {"n": None}, "y": [1, 2], "x": 1}
    assert h(a) == h(b) == h(OrderedDict(reversed(list(a.items()))))
    assert h(a) != h({"x": 1, "y": [2, 1], "z": {"n": None}})
    assert h({1, 2, 3}) == h({3, 2, 1}) == h(frozenset({2, 1, 3}))
    assert h({1, 2}) != h([1, 2])
    assert h({"a": 1}) != h({"a": 2}) != h({"b": 1})
    # a key/value boundary cannot be shifted
    assert h({"ab": "c"}) != h({"a": "bc"})


def test_types_and_generic_aliases():
    assert h(int) != h(float) != h(str)
    assert h(list[int]) == h(typing.List[int])  # noqa: UP006
    assert h(list[int]) != h(list[str]) != h(list)
    assert h(dict[str, float]) == h(typing.Dict[str, float])  # noqa: UP006
    assert h(dict[str, float]) != h(dict[float, str])
    assert h(int | None) == h(typing.Optional[int]) == h(None | int)  # noqa: UP045
    assert h(int | str) == h(str | int) == h(typing.Union[int, str])  # noqa: UP007
    assert h(int | None) != h(int)
    assert h(tuple[int, ...]) != h(tuple[int])
    assert h(typing.Any) != h(object)
    assert h(typing.Literal["a"]) != h(typing.Literal["b"])
    assert h(Path) != h(str)


def test_schema_includes_fields_types_and_optional_flags():
    s = Schema({"a": int, "b": float | None})
    assert h(s) == h(Schema({"b": float | None, "a": int}))
    assert h(s) != h(Schema({"a": int, "b": float}))
    assert h(s) != h(Schema({"a": int, "b": float | None}, optional_fields=["b"]))
    assert h(s) != h({"a": int, "b": float | None})


def test_content_hash_values():
    c = ContentHash("arrow_v1", b"\x01" * 16)
    assert h(c) == h(ContentHash.from_string(c.to_string()))
    assert h(c) != h(ContentHash("arrow_v2", b"\x01" * 16))
    assert h(c) != h(c.to_string())


def test_paths_are_identified_by_content(tmp_path: Path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    a.write_text("same")
    b.write_text("same")
    c.write_text("other")
    assert h(a) == h(b) != h(c)
    assert h(a) != h(str(a))


def test_missing_path_names_the_path(tmp_path: Path):
    with pytest.raises(HashingError, match=r"ghost\.txt.*does not exist"):
        hash_object(tmp_path / "ghost.txt")


def test_directory_hash_is_its_tree(tmp_path: Path):
    def make(root: Path, files: dict[str, str]) -> Path:
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        return root

    one = make(tmp_path / "one", {"x.txt": "1", "sub/y.txt": "2"})
    two = make(tmp_path / "two", {"sub/y.txt": "2", "x.txt": "1"})
    assert h(one) == h(two)
    assert h(one) != h(make(tmp_path / "renamed", {"x.txt": "1", "sub/z.txt": "2"}))
    assert h(one) != h(make(tmp_path / "edited", {"x.txt": "1", "sub/y.txt": "3"}))
    (two / "empty").mkdir()
    assert h(one) != h(two)


def test_path_constants_mode_names_folders_by_location_and_files_by_content(tmp_path: Path):
    folder, file = tmp_path / "out", tmp_path / "ref.txt"
    folder.mkdir()
    file.write_text("v1")
    value = {"out": folder, "ref": file, "later": tmp_path / "missing"}
    before = hash_object(value, path_constants=True)
    (folder / "new.txt").write_text("written by the function")
    assert hash_object(value, path_constants=True) == before
    file.write_text("v2")
    assert hash_object(value, path_constants=True) != before
    assert hash_object(tmp_path / "a", path_constants=True) != hash_object(
        tmp_path / "b", path_constants=True
    )
    # data values keep content identity, also after a path_constants hash on this thread
    content = h(folder)
    (folder / "more.txt").write_text("x")
    assert h(folder) != content


def test_dates_times_decimals_uuids():
    when = dt.datetime(2024, 5, 6, 7, 8, 9, 10)
    assert h(when) != h(when.date()) != h(when.time())
    assert h(when) != h(when.replace(tzinfo=dt.UTC))
    assert h(dt.timedelta(days=1)) == h(dt.timedelta(hours=24))
    assert h(Decimal("1.5")) != h(Decimal("1.50")) != h(1.5)
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert h(u) == h(uuid.UUID(str(u))) != h(str(u))


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Level(enum.IntEnum):
    LOW = 1


def test_enums_are_class_and_value():
    assert h(Color.RED) != h(Color.BLUE)
    assert h(Color.RED) != h(1)
    assert h(Level.LOW) != h(1)
    assert h(Level.LOW) != h(Color.RED)


@dataclasses.dataclass
class Point:
    x: int
    y: float


@dataclasses.dataclass
class OtherPoint:
    x: int
    y: float


def test_dataclasses_are_class_and_fields():
    assert h(Point(1, 2.0)) == h(Point(1, 2.0))
    assert h(Point(1, 2.0)) != h(Point(2, 1.0))
    assert h(Point(1, 2.0)) != h(OtherPoint(1, 2.0))


def test_arrow_tables_hash_logically():
    t = pa.table({"a": [1, 2], "b": ["x", "y"]})
    assert h(t) == h(t.select(["b", "a"])) == h(t.to_batches()[0])
    assert h(t) != h(t.slice(0, 1))


def test_numpy_arrays_and_regexes():
    a = np.array([[1.0, -0.0], [np.nan, 2.0]])
    assert h(a) == h(np.array([[1.0, 0.0], [np.nan, 2.0]]))
    assert h(a) != h(a.T) != h(a.reshape(4))
    assert h(np.array([1, 2], np.int32)) != h(np.array([1, 2], np.int64))
    assert h(np.array(["a", None], dtype=object)) == h(np.array(["a", None], dtype=object))
    assert h(re.compile("a+")) != h(re.compile("a+", re.I))


class WithIdentity:
    def __init__(self, name: str, params: dict[str, int]) -> None:
        self.name = name
        self.params = params

    def identity_structure(self) -> object:
        return (self.name, self.params)

    def content_hash(self) -> ContentHash:
        return hash_object(self)


class OtherWithIdentity(WithIdentity):
    pass


class OnlyContentHash:
    def __init__(self, digest: bytes) -> None:
        self.digest = digest

    def content_hash(self) -> ContentHash:
        return ContentHash("custom_v1", self.digest)


class BadContentHash:
    def content_hash(self) -> str:
        return "nope"


def test_identity_structure_objects():
    a = WithIdentity("n", {"k": 1})
    assert h(a) == h(WithIdentity("n", {"k": 1}))
    assert h(a) != h(WithIdentity("n", {"k": 2}))
    assert h(a) != h(OtherWithIdentity("n", {"k": 1})), "the class name is part of the hash"
    assert a.content_hash() == hash_object(a)  # content_hash via hash_object(self) terminates
    assert h([a]) == h([WithIdentity("n", {"k": 1})])


def test_content_hash_objects():
    assert h(OnlyContentHash(b"\1")) == h(ContentHash("custom_v1", b"\1"))
    assert h(OnlyContentHash(b"\1")) != h(OnlyContentHash(b"\2"))
    with pytest.raises(HashingError, match="content_hash"):
        hash_object(BadContentHash())


def test_unsupported_values_raise_with_a_fix():
    class Opaque:
        pass

    with pytest.raises(HashingError, match=r"Opaque.*identity_structure\(\)"):
        hash_object(Opaque())
    with pytest.raises(HashingError, match="Opaque"):
        hash_object({"nested": [Opaque()]})
    with pytest.raises(HashingError, match="function"):
        hash_object(lambda x: x)
    with pytest.raises(HashingError):
        hash_object(object())


def test_cycles_raise():
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(HashingError, match="cyclic"):
        hash_object(loop)
    # shared (non-cyclic) references are fine
    shared = [1, 2]
    assert h([shared, shared]) == h([[1, 2], [1, 2]])


# --- golden digests ----------------------------------------------------------------------------
# These pin object_v1. If a change to the encoder makes them fail, it alters every stored hash:
# bump OBJECT_HASH_METHOD to a new version on purpose instead of editing the expected values.

GOLDEN_VALUE: dict[str, object] = {
    "none": None,
    "ints": [0, -1, 2**70],
    "floats": (1.5, -0.0, float("nan")),
    "text": "héllo",
    "bytes": b"\x00\xff",
    "set": frozenset({"b", "a"}),
    "types": [int, list[str], int | None],
    "schema": Schema({"x": int, "y": str}, optional_fields=["y"]),
    "when": dt.datetime(2024, 1, 2, 3, 4, 5),
    "decimal": Decimal("3.14"),
}
GOLDEN = "object_v1:a00622465e8b1807cb02fb94df5fa03cd280dd0c5cbf5bfc951f8660e9f6597a"


def test_golden_digest():
    assert h(GOLDEN_VALUE) == GOLDEN


# --- independence from the process -------------------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import pyarrow as pa
    from orcapod.hashing import hash_object, hash_rows, hash_table
    from orcapod.hashing.function_identity import function_code_hash
    from orcapod.types import Schema

    sys.path.insert(0, sys.argv[1])
    import seedmod

    value = {
        "set": {"alpha", "beta", "gamma", "delta"},
        "frozen": frozenset({("a", 1), ("b", 2)}),
        "dict": {f"k{i}": i for i in range(20)},
        "schema": Schema({"a": int, "b": str | None}),
        "types": {int, str, float},
    }
    table = pa.table({"s": ["x", "y", None], "i": [1, 2, 3], "l": [[1], [], None]})
    print(json.dumps({
        "object": hash_object(value).to_string(),
        "table": hash_table(table).to_string(),
        "rows": [d.hex() for d in hash_rows(table).to_pylist()],
        "code": function_code_hash(seedmod.f).to_string(),
    }))
    """
)


@pytest.mark.slow
def test_hashes_do_not_depend_on_pythonhashseed(tmp_path: Path):
    (tmp_path / "seedmod.py").write_text(
        "NAMES = {'a', 'b', 'c'}\n\ndef helper(x):\n    return x in NAMES\n\n"
        "def f(x):\n    return {'y': helper(x), 'z': sorted(NAMES)}\n"
    )
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    outputs = []
    for seed in ("0", "1", "random", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONDONTWRITEBYTECODE": "1"}
        result = subprocess.run(
            [sys.executable, str(script), str(tmp_path)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            timeout=120,
        )
        outputs.append(json.loads(result.stdout))
    assert all(out == outputs[0] for out in outputs[1:])
