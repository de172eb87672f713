"""`vois preprocess`: the short-edge-224 training artifact of one annotation split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vois_cli.cli.app import app
from vois_cli.cli.progress import progress_bar


@app.command()
def preprocess(
    frames: Annotated[Path, typer.Argument(help="Frames folder written by `vois extract`.")],
    ann: Annotated[Path, typer.Option(help="Annotation file (LiveVideos / YouTube-VIS JSON).")],
    out: Annotated[Path, typer.Option(help="Artifact folder (index.json + videos/*.npz).")],
    short_edge: Annotated[int, typer.Option(min=8, help="Short edge of frames and target.")] = 224,
    max_long_edge: Annotated[
        int | None, typer.Option(min=8, help="Cap on the long edge (default: none).")
    ] = None,
    root: Annotated[
        Path | None,
        typer.Option(help="Data root the targets are relative to (default: ANN's grandparent)."),
    ] = None,
    products: Annotated[
        Path | None,
        typer.Option(
            help="Annotations of every placed product of the same videos (e.g. train_all.json),"
            " for the one-to-many mask loss."
        ),
    ] = None,
) -> None:
    """Resize frames, masks and targets (aspect kept) into one .npz per video plus an index."""
    from vois_cli.data.preprocess import preprocess as build_artifact  # torch: only when run

    with progress_bar("preprocess") as report:
        index = build_artifact(frames, ann, out, short_edge, max_long_edge, root, report, products)
    typer.echo(f"{len(index['videos'])} videos -> {out}")
