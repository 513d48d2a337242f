"""``orcapod graph`` on a real store, through the installed script (SVG and PNG through a real
Graphviz ``dot``, which ``make test`` installs)."""

import os
import shutil


def test_mermaid_names_every_node_with_its_type_rows_and_trouble(cli):
    out = cli("graph", str(cli.store), "--pipeline", "study").stdout
    assert out.startswith("flowchart LR\n")
    assert '[("patients<br/>source · 3 rows")]' in out
    assert '["compute_bmi<br/>function · 2 rows · failed"]' in out
    assert '["classify<br/>function · 2 rows · partial"]' in out
    assert out.count(" --> ") == 2
    assert "other" not in out


def test_several_pipelines_become_subgraphs(cli):
    out = cli("graph", "--store", str(cli.store)).stdout
    assert out.count("subgraph") == 2 and '["study"]' in out and '["other"]' in out


def test_dot_text_and_a_file_output(cli, tmp_path):
    out = cli("graph", str(cli.store), "--format", "dot", "--pipeline", "study").stdout
    assert out.startswith("digraph orcapod {")
    assert '"study.patients" -> "study.compute_bmi";' in out
    target = tmp_path / "g.dot"
    cli("graph", str(cli.store), "-f", "dot", "--pipeline", "study", "-o", str(target))
    assert target.read_text() == out


def test_svg_and_png_are_drawn_by_graphviz(cli, tmp_path):
    assert shutil.which("dot"), "make test installs Graphviz's dot"
    svg, png = tmp_path / "g.svg", tmp_path / "g.png"
    cli("graph", str(cli.store), "-f", "svg", "-o", str(svg))
    cli("graph", str(cli.store), "-f", "png", "-o", str(png))
    assert "<svg" in svg.read_text() and "compute_bmi" in svg.read_text()
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_without_the_dot_program_the_message_says_what_to_install(cli, tmp_path):
    bin_dir = tmp_path / "bin"  # a PATH without Graphviz (python's own folder only)
    bin_dir.mkdir()
    done = cli(
        "graph",
        str(cli.store),
        "-f",
        "svg",
        "-o",
        str(tmp_path / "g.svg"),
        env={"PATH": str(bin_dir) + os.pathsep + "/nonexistent"},
        check=1,
    )
    assert "dot program" in done.stderr and "install" in done.stderr
    assert "Mermaid" in done.stderr


def test_a_store_without_runs_has_nothing_to_draw(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    done = cli("graph", str(tmp_path / "empty"), check=1)
    assert "run a pipeline first" in done.stderr


def test_an_output_in_a_missing_folder_is_an_error_line(cli, tmp_path):
    done = cli("graph", str(cli.store), "-o", str(tmp_path / "nowhere" / "g.mmd"), check=1)
    said = " ".join(done.stderr.split())
    assert said.startswith(f"error: cannot write --output {tmp_path / 'nowhere' / 'g.mmd'}")
    assert "Traceback" not in done.stderr


def test_a_damaged_store_is_an_error_line_not_a_traceback(cli, tmp_path):
    """An orcapod error no command turned into a message (here a damaged catalog met by
    ``graph`` and ``lineage``) prints as ``error: ...`` with exit status 1."""
    store = tmp_path / "store"
    shutil.copytree(cli.store, store)
    (store / "_catalog" / "_delta_log" / "00000000000000000000.json").write_text("garbage{")
    lineage = ("lineage", "compute_bmi", "--store", str(store), "--where", "patient=p1")
    for args in (("graph", str(store)), lineage):
        done = cli(*args, check=1)
        assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr, done.stderr
        assert "_catalog" in done.stderr
