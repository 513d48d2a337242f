"""The README's tour runs as written, and what it shows in comments is what it prints."""

from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run_and_match_their_shown_results(markdown_runner):
    markdown_runner(README)
