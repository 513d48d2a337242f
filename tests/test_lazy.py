"""``orcapod._lazy.lazy_module``: a module imported on its first attribute read."""

import subprocess
import sys

PROBE = """
import sys
from orcapod._lazy import lazy_module

colorsys = lazy_module("colorsys")
assert "colorsys" not in sys.modules, "imported before use"
assert colorsys.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
assert "colorsys" in sys.modules
assert colorsys.rgb_to_hsv is sys.modules["colorsys"].rgb_to_hsv
assert "hls_to_rgb" in dir(colorsys)
assert "hls_to_rgb" in vars(colorsys)  # copied in at the first read: later reads are plain
try:
    colorsys.no_such_name
except AttributeError:
    pass
else:
    raise AssertionError("a missing name must raise AttributeError")
print("ok")
"""


def test_a_lazy_module_is_imported_on_first_use_and_reads_the_real_one():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], check=True, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "ok"
