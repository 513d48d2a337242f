"""Every page of the documentation site (docs/) runs as written: its ```python blocks run in
order in a fresh namespace per page, in a temporary working directory, and what an example
shows in ``# `` comments is what it prints (see ``run_markdown_python`` in conftest.py)."""

from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "```python\n" in p.read_text())
#: pages whose examples start a local Ray cluster (the suite's shared one)
RAY_PAGES = {"how-to/ray.md"}


def _param(page: Path) -> object:
    name = page.relative_to(DOCS).as_posix()
    marks = [pytest.mark.ray] if name in RAY_PAGES else []
    return pytest.param(page, id=name, marks=marks)


def test_the_docs_have_examples():
    assert len(PAGES) >= 8, [p.name for p in PAGES]


@pytest.mark.parametrize("page", [_param(p) for p in PAGES])
def test_page_examples_run_and_show_their_results(page, markdown_runner, request):
    if page.relative_to(DOCS).as_posix() in RAY_PAGES:
        request.getfixturevalue("ray_session")
    markdown_runner(page)
