"""A real store made by a real ``orcapod run`` of an imaging pipeline, a real ``orcapod ui``
server over it, and the system's Chromium driven by Playwright.

The imaging pipeline: a CSV manifest of 45 scan files (``scans.csv``: ``scan``, ``image``
path), cached in the store so its rows (the file paths) are kept there; ``segment`` reads
each file and fails for the one that is not an image (``scan07.img``), printing first;
``measure`` joins an exposure per scan and logs a warning. The functions live in
``imaging_steps.py``; when ``ORCAPOD_UI_TRAP`` is set, importing that module writes the file
it names, which is how the tests see that the server never imports the user's code.
A second pipeline (``calibration``) shares the store. ``orcapod run`` runs both files once.

A second store (``odd_project``): a pipeline named ``study.v2`` whose nodes are labelled
``a`` and ``a/b`` (a ``/`` in a label), where ``a/b`` fails for 25 of its 30 rows (more
failures than a node page shows at once).

Screenshots of every page go to ``build/ui-screenshots/`` (ignored by git).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

ORCAPOD = Path(sys.executable).parent / "orcapod"  #: the installed script
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "ui-screenshots"
SCANS = 45
BROKEN = 7

STEPS = """
import logging
import os
from pathlib import Path

from orcapod import function_pod

if os.environ.get("ORCAPOD_UI_TRAP"):
    Path(os.environ["ORCAPOD_UI_TRAP"]).write_text("imaging_steps was imported", "utf-8")

log = logging.getLogger("imaging")


@function_pod("mask_area")
def segment(image: Path) -> int:
    data = image.read_bytes()
    print(f"segmenting {image.name}: {len(data)} bytes")
    if not data.startswith(b"IMG"):
        raise ValueError(f"{image.name} is not an image (header {data[:4]!r})")
    return len(data) * 10 + int(image.stem[4:])


@function_pod("density")
def measure(mask_area: int, exposure: float) -> float:
    log.warning("measuring a mask of %d pixels", mask_area)
    return round(mask_area / exposure, 3)
"""

IMAGING = """
from pathlib import Path

from imaging_steps import measure, segment

from orcapod import Pipeline
from orcapod.databases import DeltaTableDatabase
from orcapod.sources import CachedSource, CSVSource, DictSource

store = DeltaTableDatabase("store")
manifest = CSVSource(
    "scans.csv", tag_columns=["scan"], schema={"image": Path}, record_id_column="scan"
)
scans = CachedSource(manifest, store, label="scans")
exposures = DictSource(
    [{"scan": f"s{i:02d}", "exposure": 0.5 + i / 10} for i in range(1, %(n)d + 1)],
    tag_columns=["scan"],
    source_id="exposures",
    label="exposures",
)
imaging = Pipeline("imaging", store)
with imaging:
    measure.pod(segment.pod(scans).join(exposures))
"""

CALIBRATION = """
from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.sources import DictSource


@function_pod("gain")
def fit_gain(level: float) -> float:
    return round(level * 1.5, 2)


levels = DictSource(
    [{"plate": p, "level": float(p)} for p in range(1, 4)], tag_columns=["plate"],
    source_id="levels", label="levels",
)
calibration = Pipeline("calibration", DeltaTableDatabase("store"))
with calibration:
    fit_gain.pod(levels)
"""


ODD = """
from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.sources import DictSource


@function_pod("y")
def double(x: int) -> int:
    return 2 * x


@function_pod("z")
def picky(x: int) -> int:
    if x >= %(ok)d:
        raise ValueError(f"{x} is too large")
    return x


src = DictSource(
    [{"sid": f"r{i:02d}", "x": i} for i in range(%(rows)d)], tag_columns=["sid"], label="src"
)
odd = Pipeline("study.v2", DeltaTableDatabase("store"))
with odd:
    double.pod(src, label="a")
    picky.pod(src, label="a/b")
"""
ODD_ROWS = 30
ODD_OK = 5


@dataclass(frozen=True)
class Project:
    folder: Path
    scans: int = SCANS  #: rows of the manifest
    broken: int = BROKEN  #: the scan whose file is not an image

    @property
    def store(self) -> Path:
        return self.folder / "store"

    def orcapod(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``orcapod ARGS`` run in the project folder (a real process)."""
        return run_orcapod(self.folder, *args)

    def serve(self, *args: str, trap: Path | None = None) -> Server:
        """A new ``orcapod ui`` server over the store (``start_server``)."""
        return start_server(self.folder, self.store, *args, trap=trap)


def _env(folder: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "COLUMNS": "120",
        **extra,
    }


def run_orcapod(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(ORCAPOD), *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(folder),
        check=False,
    )
    return done


@pytest.fixture(scope="session")
def imaging_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The project folder after one run of each pipeline (module docstring)."""
    folder = tmp_path_factory.mktemp("imaging")
    images = folder / "images"
    images.mkdir()
    lines = ["scan,image"]
    for i in range(1, SCANS + 1):
        header = b"JUNK" if i == BROKEN else b"IMG1"
        (images / f"scan{i:02d}.img").write_bytes(header + bytes(i))
        lines.append(f"s{i:02d},images/scan{i:02d}.img")
    (folder / "scans.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "imaging_steps.py").write_text(STEPS, encoding="utf-8")
    (folder / "imaging.py").write_text(IMAGING % {"n": SCANS}, encoding="utf-8")
    (folder / "calibration.py").write_text(CALIBRATION, encoding="utf-8")
    for name in ("imaging.py", "calibration.py"):
        done = run_orcapod(folder, "run", name)
        assert done.returncode in (0, 1), (done.stdout, done.stderr)
    return Project(folder)


@pytest.fixture(scope="session")
def odd_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A store with a label holding a ``/`` and more failures than a page shows (module
    docstring)."""
    folder = tmp_path_factory.mktemp("odd")
    (folder / "odd.py").write_text(ODD % {"rows": ODD_ROWS, "ok": ODD_OK}, encoding="utf-8")
    done = run_orcapod(folder, "run", "odd.py")
    assert done.returncode in (0, 1), (done.stdout, done.stderr)
    return Project(folder)


@pytest.fixture
def project_in() -> Callable[[Path], Project]:
    """``project_in(folder)``: a project folder of the test's own (run and serve its store)."""
    return Project


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    trap: Path

    def stop(self) -> str:
        """Stop the server (by its process id); its stderr."""
        self.process.send_signal(signal.SIGINT)
        try:
            _, err = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return err


def start_server(folder: Path, store: Path, *args: str, trap: Path | None = None) -> Server:
    """``orcapod ui STORE --port 0 ARGS`` in ``folder`` as a real process, once it serves.

    ``imaging_steps`` is importable there (the folder is the working directory and on
    ``PYTHONPATH``) and armed: importing it writes ``trap``."""
    trap = trap if trap is not None else folder / "imported.txt"
    env = _env(folder, PYTHONPATH=str(store.parent), ORCAPOD_UI_TRAP=str(trap))
    process = subprocess.Popen(
        [str(ORCAPOD), "ui", str(store), "--port", "0", "--poll", "0.5", *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    seen = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        found = re.search(r"(http://\S+?)/?\s", line)
        if found and "orcapod ui" in line:
            return Server(found.group(1), process, trap)
    process.kill()
    raise AssertionError(f"orcapod ui did not start: {''.join(seen)}")


@pytest.fixture(scope="module")
def server(imaging_project: Project) -> Iterator[Server]:
    """``orcapod ui`` over the imaging store, for the tests of one module."""
    started = imaging_project.serve()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def odd_server(odd_project: Project) -> Iterator[Server]:
    """``orcapod ui`` over the ``odd_project`` store, for the tests of one module."""
    started = odd_project.serve()
    yield started
    started.stop()


def chromium_path() -> str:
    found = os.environ.get("ORCAPOD_CHROMIUM") or shutil.which("chromium")
    found = found or shutil.which("chromium-browser")
    assert found, "Chromium is missing: `make pytest` installs it (apt-get install chromium)"
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """The system's Chromium, headless (``--no-sandbox``: the tests may run as root)."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    """``screenshot(page, name)``: keep a screenshot of the whole page as a test artefact."""

    def take(page: Page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
