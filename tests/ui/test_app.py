"""The web view in a real browser: graph -> node -> row -> lineage, failures, paging and
sorting, runs, live refresh, over a real store made by real runs (``conftest.py``); and its
pages read over plain HTTP (addresses, failures paging, 404s)."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, expect


def fetch(url: str) -> tuple[int, str]:
    """The status and body of a GET of ``url`` (a 404 included)."""
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read().decode("utf-8")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8")


def failure_tags(body: str) -> list[str]:
    """The row tags of the failures listed on a node page."""
    article = r'<article class="failure[^"]*">\s*<header>\s*<span class="tags">.*?"v">(r\d+)<'
    return re.findall(article, body, flags=re.S)


def test_graph_page_draws_every_pipeline_with_node_types_status_and_counts(
    page: Page, server, imaging_project, screenshot
):
    page.goto(server.url + "/")
    graph = page.locator("#pipeline-imaging svg.graph")
    expect(graph).to_be_visible()
    segment = graph.locator('a.node[data-label="segment"]')
    expect(segment).to_have_class(re.compile(r"node-function status-failed"))
    expect(segment).to_contain_text(f"{imaging_project.scans - 1} computed · 0 reused")
    expect(segment).to_contain_text("0 filtered · 1 failed")
    expect(graph.locator('a.node[data-label="scans"]')).to_have_class(re.compile("node-source"))
    expect(graph.locator('a.node[data-label="Join"]')).to_have_class(
        re.compile("node-operator status-partial")
    )
    expect(page.locator("#pipeline-calibration svg.graph")).to_be_visible()
    expect(page.locator("nav.pipelines")).to_contain_text("calibration")
    screenshot(page, "graph")
    page.locator("nav.pipelines a", has_text="calibration").click()
    expect(page.locator("#pipeline-calibration")).to_be_visible()
    expect(page.locator("#pipeline-imaging")).to_have_count(0)


def test_three_clicks_from_the_graph_say_why_a_row_failed_and_which_file_it_read(
    page: Page, server, imaging_project, screenshot
):
    page.goto(server.url + "/")
    page.locator('svg.graph a.node[data-label="segment"]').click()  # 1
    failure = page.locator("#failures article.failure")
    expect(failure).to_have_count(1)
    expect(failure).to_contain_text(f"scan{imaging_project.broken:02d}.img is not an image")
    expect(failure.locator("pre.traceback").first).to_contain_text("raise ValueError")
    expect(failure.locator("pre.out")).to_contain_text(
        f"segmenting scan{imaging_project.broken:02d}.img"
    )
    expect(failure.locator("ul.sources")).to_contain_text(
        f"images/scan{imaging_project.broken:02d}.img"
    )
    screenshot(page, "node-failed")
    failure.locator("a.open").click()  # 2
    expect(page.locator("h1")).to_contain_text(f"s{imaging_project.broken:02d}")
    expect(page.locator("#failure")).to_contain_text("ValueError")
    expect(page.locator("#lineage ul.sources")).to_contain_text(
        f"scan=s{imaging_project.broken:02d}"
    )
    expect(page.locator("#lineage ul.sources")).to_contain_text(
        f"scan{imaging_project.broken:02d}.img"
    )
    expect(page.locator("#logs")).to_contain_text("segmenting")
    screenshot(page, "row-failed")


def test_node_row_lineage_walks_back_through_functions_to_source_files(
    page: Page, server, imaging_project, screenshot
):
    page.goto(server.url + "/")
    page.locator('svg.graph a.node[data-label="measure"]').click()
    expect(page.locator("h1")).to_contain_text("measure")
    header = page.locator("table.rows thead th")
    expect(header).to_have_text(["scan", "density", ""])
    expect(page.locator("table.rows thead th.tag")).to_have_text(["scan"])
    page.locator("table.rows tbody tr").first.locator("a.open").click()
    expect(page.locator("h1")).to_contain_text("s01")
    steps = page.locator("#lineage ol.lineage li")
    expect(steps).to_have_count(2)
    expect(steps.nth(0)).to_contain_text("measure")
    expect(steps.nth(1)).to_contain_text("segment")
    sources = page.locator("#lineage ul.sources")
    expect(sources).to_contain_text("exposures")
    expect(sources).to_contain_text("images/scan01.img")
    expect(page.locator("#logs pre.out")).to_contain_text("measuring a mask of")
    expect(page.locator("#outputs")).to_contain_text("density")
    screenshot(page, "row-lineage")
    steps.nth(1).locator("a").click()
    expect(page.locator("h1")).to_contain_text("segment")


def test_rows_are_paged_and_sorted_in_the_browser(page: Page, server, imaging_project, screenshot):
    page.goto(server.url + "/node/imaging/segment?size=20")
    rows = page.locator("table.rows tbody tr")
    expect(rows).to_have_count(20)
    expect(page.locator(".pager .where")).to_contain_text(
        f"page 1 of 3 · rows 1\u201320 of {imaging_project.scans - 1}"
    )
    page.locator(".pager a[rel=next]").click()
    expect(page.locator(".pager .where")).to_contain_text("page 2 of 3")
    page.locator("table.rows thead th a", has_text="scan").click()  # sort by scan, ascending
    expect(rows.first.locator("td").first).to_have_text("s01")
    page.locator("table.rows thead th a", has_text="scan").click()  # again: descending
    expect(rows.first.locator("td").first).to_have_text(f"s{imaging_project.scans:02d}")
    page.locator("table.rows thead th a", has_text="mask_area").click()
    values = [int(v) for v in rows.locator("td:nth-child(2)").all_inner_texts()]
    assert values == sorted(values) and len(values) == 20
    screenshot(page, "node-rows-sorted")


def test_node_page_shows_schema_code_identity_and_runs(page: Page, server):
    page.goto(server.url + "/node/imaging/segment")
    expect(page.locator("#schema")).to_contain_text("mask_area")
    expect(page.locator("#schema td.tag")).to_have_text(["scan"])
    expect(page.locator("#code")).to_contain_text("code_v1:")
    expect(page.locator("#code table.identity")).to_contain_text("segment")
    expect(page.locator("#code pre.source")).to_contain_text("def segment(image: Path) -> int:")
    expect(page.locator("#runs table.runs tbody tr")).to_have_count(1)
    expect(page.locator("#why")).to_contain_text("1 failed")


def test_runs_page_lists_runs_with_per_node_counts_and_times(
    page: Page, server, imaging_project, screenshot
):
    page.goto(server.url + "/runs")
    runs = page.locator("article.run")
    expect(runs).to_have_count(2)
    imaging = runs.filter(has_text="imaging")
    expect(imaging.locator(".badge").first).to_have_text("failed")
    segment = imaging.locator("table.run-nodes tr", has_text="segment")
    expect(segment.locator("td.num")).to_have_text(
        [str(imaging_project.scans - 1), "0", "0", "1", re.compile(r"\d+ ms|\d+\.\d s")]
    )
    screenshot(page, "runs")


def test_pages_refresh_themselves_when_a_run_lands(page: Page, imaging_project, server):
    page.goto(server.url + "/runs")
    expect(page.locator("article.run")).to_have_count(2)
    done = imaging_project.orcapod("run", "calibration.py")
    assert done.returncode == 0, done.stderr
    expect(page.locator("article.run")).to_have_count(3, timeout=20_000)


def test_an_unknown_node_is_a_clear_404(page: Page, server):
    response = page.goto(server.url + "/node/imaging/nope")
    assert response is not None and response.status == 404
    expect(page.locator(".error-message")).to_contain_text("no node 'nope'")


SLOW = """
import os
import time

from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.sources import DictSource


@function_pod("y")
def wait(x: int) -> int:
    time.sleep(float(os.environ.get("PAUSE", "0")))
    return x + 1


items = DictSource(
    [{"k": k, "x": k} for k in range(int(os.environ.get("ROWS", "1")))],
    tag_columns=["k"], source_id="items", label="items",
)
slow = Pipeline("slow", DeltaTableDatabase("store"))
with slow:
    wait.pod(items)
"""


def test_a_page_follows_a_run_while_it_goes_on(page: Page, tmp_path, project_in):
    (tmp_path / "slow.py").write_text(SLOW, encoding="utf-8")
    project = project_in(tmp_path)
    assert project.orcapod("run", "slow.py").returncode == 0  # one row: the store exists
    server = project.serve()
    node = page.locator('svg.graph a.node[data-label="wait"]')
    try:
        page.goto(server.url + "/")
        expect(node).to_have_class(re.compile("status-ok"))
        env = {**os.environ, "ROWS": "8", "PAUSE": "0.5", "HOME": str(tmp_path)}
        running = subprocess.Popen(
            [str(Path(sys.executable).parent / "orcapod"), "run", "slow.py"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        expect(node).to_have_class(re.compile("status-running"), timeout=30_000)
        expect(page.locator("#live")).to_contain_text("a run is going on")
        assert running.wait(timeout=300) == 0
        expect(node).to_have_class(re.compile("status-ok"), timeout=30_000)
        expect(node).to_contain_text("7 computed · 1 reused")
    finally:
        server.stop()


# -- over plain HTTP ----------------------------------------------------------------------------


def test_a_node_page_counts_every_failure_and_pages_through_the_rest(odd_server):
    node = odd_server.url + "/node/study.v2/a%2Fb"
    status, first = fetch(node)
    assert status == 200
    assert "Failures (25)" in first
    assert "failures 1\u201320 of 25, newest first \u00b7 page 1 of 2" in first
    assert len(failure_tags(first)) == 20
    older = re.search(r'href="\?([^"]*failures=2[^"]*)" rel="next"', first)
    assert older is not None
    status, second = fetch(node + "?" + html.unescape(older.group(1)))
    assert status == 200
    assert "failures 21\u201325 of 25" in second
    shown = failure_tags(first) + failure_tags(second)
    assert sorted(shown) == [f"r{i:02d}" for i in range(5, 30)]


def test_a_label_with_a_slash_opens_its_node_and_its_rows(odd_server):
    status, graph = fetch(odd_server.url + "/")
    assert status == 200 and 'href="/node/study.v2/a%2Fb"' in graph
    for address in ("/node/study.v2/a%2Fb", "/node/study.v2/a/b"):  # linked, typed
        status, page = fetch(odd_server.url + address)
        assert status == 200, page
        assert re.search(r"<h1>.*\ba/b\b", page, flags=re.S), address
        assert "Failures (25)" in page
    row = re.search(r'href="(/node/study\.v2/a%2Fb/row/[^"#?]+)"', page)
    assert row is not None
    status, detail = fetch(odd_server.url + row.group(1))
    assert status == 200 and "is too large" in detail
    typed = row.group(1).replace("a%2Fb", "a/b")
    assert fetch(odd_server.url + typed)[0] == 200
    status, other = fetch(odd_server.url + "/node/study.v2/a")  # the node labelled `a`
    assert status == 200 and "Failures" not in other


def test_an_unknown_pipeline_is_a_404_naming_the_pipelines(odd_server):
    for address in ("/?pipeline=nope", "/runs?pipeline=nope"):
        status, page = fetch(odd_server.url + address)
        assert status == 404, address
        assert "no pipeline &#39;nope&#39; in this store" in page
        assert "its pipelines: &#39;study.v2&#39;" in page
    assert fetch(odd_server.url + "/?pipeline=study.v2")[0] == 200
    assert fetch(odd_server.url + "/runs?pipeline=study.v2")[0] == 200


def test_a_negative_poll_is_refused_before_serving(odd_project):
    done = odd_project.orcapod("ui", str(odd_project.store), "--poll", "-1")
    assert done.returncode == 1
    assert "poll_seconds must be 0 or more, got -1.0" in done.stderr


def test_poll_0_pages_never_check_the_store(page: Page, odd_project):
    server = odd_project.serve("--poll", "0")
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    try:
        page.goto(server.url + "/")
        expect(page.locator("#live")).to_have_text("static")
    finally:
        server.stop()
    assert not [url for url in asked if "/api/fingerprint" in url]
