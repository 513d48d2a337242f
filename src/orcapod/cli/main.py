"""The ``orcapod`` command line (typer): ``--version`` and ``demo`` so far."""

from __future__ import annotations

import pyarrow as pa
import typer
from rich.console import Console
from rich.table import Table

import orcapod
from orcapod.sources import DictSource

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="orcapod: reproducible pipelines"
)
console = Console()


def _version(value: bool) -> None:
    if value:
        console.print(f"orcapod {orcapod.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """orcapod: reproducible, incremental scientific data pipelines."""


def _show(title: str, table: pa.Table) -> None:
    view = Table(title=title, show_lines=False)
    for name in table.column_names:
        view.add_column(name, overflow="fold")
    for row in table.to_pylist():
        view.add_row(*(str(v) for v in row.values()))
    console.print(view)


@app.command()
def demo() -> None:
    """Build a small source and show its schema, rows, hidden columns and hashes."""
    source = DictSource(
        [
            {"subject": "s1", "session": 1, "weight": 70.0, "height": 1.75},
            {"subject": "s2", "session": 1, "weight": 82.5, "height": 1.80},
            {"subject": "s2", "session": 2, "weight": 81.0, "height": 1.80},
        ],
        tag_columns=["subject", "session"],
        source_id="patients",
    )
    tag_schema, packet_schema = source.output_schema()
    console.print(f"[bold]tag schema[/]    {tag_schema!r}")
    console.print(f"[bold]packet schema[/] {packet_schema!r}")
    _show("rows", source.as_table())
    _show(
        "system columns (all_info=True)",
        source.as_table(all_info=True).drop(list(source.as_table().column_names)),
    )
    console.print(f"[bold]content hash[/]  {source.content_hash().to_string()}")
    console.print(f"[bold]pipeline hash[/] {source.pipeline_hash().to_string()}")


if __name__ == "__main__":
    app()
