"""``orcapod ui`` as a real process: loopback by default, a warning (and an explicit flag) for
any other address, and never an import of the user's code."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect


def test_the_server_never_imports_the_users_code(page: Page, imaging_project, tmp_path):
    trap = tmp_path / "imported.txt"
    server = imaging_project.serve(trap=trap)
    try:
        page.goto(server.url + "/")
        page.locator('svg.graph a.node[data-label="segment"]').click()
        page.locator("#failures a.open").first.click()
        expect(page.locator("#lineage")).to_be_visible()
        page.goto(server.url + "/node/imaging/measure")
        page.locator("table.rows a.open").first.click()
        expect(page.locator("#lineage ol.lineage li")).to_have_count(2)
        page.goto(server.url + "/runs")
        expect(page.locator("article.run").first).to_be_visible()
    finally:
        server.stop()
    # imaging_steps.py is importable in the server's folder and writes `trap` when imported
    assert not trap.exists(), trap.read_text()
    check = subprocess.run(
        [sys.executable, "-c", "import imaging_steps"],
        cwd=imaging_project.folder,
        env={"ORCAPOD_UI_TRAP": str(trap), "PYTHONPATH": str(imaging_project.folder)},
        check=True,
    )
    assert check.returncode == 0 and trap.exists()  # the trap works


def test_it_binds_to_loopback_by_default(server):
    assert server.url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(server.url + "/api/fingerprint", timeout=10) as answer:
        state = json.loads(answer.read())
    assert set(state) == {"fingerprint", "running"} and state["running"] is False


def test_another_address_is_refused_without_the_explicit_flag(imaging_project):
    done = imaging_project.orcapod("ui", str(imaging_project.store), "--host", "0.0.0.0")
    assert done.returncode == 1
    assert "refusing to serve the store on '0.0.0.0'" in done.stderr
    assert "--allow-remote" in done.stderr


def test_another_address_with_the_flag_serves_and_warns(imaging_project):
    server = imaging_project.serve("--host", "0.0.0.0", "--allow-remote")
    try:
        port = server.url.rsplit(":", 1)[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/runs", timeout=10) as answer:
            assert answer.status == 200
    finally:
        err = server.stop()
    assert server.url.startswith("http://0.0.0.0:")
    # the warning came before the address line (read by start_server); the rest is here
    assert "Traceback" not in err


def test_the_warning_names_the_risk(imaging_project):
    orcapod = Path(sys.executable).parent / "orcapod"
    store = str(imaging_project.store)
    process = subprocess.Popen(
        [str(orcapod), "ui", store, "--host", "0.0.0.0", "--allow-remote", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
    finally:
        process.terminate()
        process.communicate(timeout=20)
    assert first.startswith("warning: serving on 0.0.0.0")
    assert "no authentication" in first


def test_a_missing_store_is_a_clear_error(imaging_project, tmp_path):
    done = imaging_project.orcapod("ui", str(tmp_path / "nowhere"))
    assert done.returncode == 1
    assert "no store at" in done.stderr


@pytest.mark.parametrize("module", ["starlette", "uvicorn", "jinja2"])
def test_the_command_line_starts_without_the_web_stack(module):
    probe = f"import sys\nfrom orcapod.cli.main import app\nprint({module!r} in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "False"
