import pytest

from orcapod.errors import HashingError
from orcapod.hashing import hash_file


def test_hash_file_follows_the_content_not_the_name(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("same")
    b.write_text("same")
    assert hash_file(a) == hash_file(str(b))
    assert hash_file(a).method == "file_v1"
    b.write_text("different")
    assert hash_file(a) != hash_file(b)
    with pytest.raises(HashingError):
        hash_file(tmp_path / "missing.txt")
