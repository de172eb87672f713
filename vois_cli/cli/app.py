"""The Typer application every command module registers itself on."""

from __future__ import annotations

from typing import Annotated

import typer

from vois_cli import __version__

app = typer.Typer(
    name="vois",
    help="Video object of interest segmentation: find, track and segment a product in video.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"vois {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """vois command line."""
