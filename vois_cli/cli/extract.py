"""`vois extract`: annotated 5 fps frames of a LiveVideos root or of one video."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vois_cli.cli.app import app
from vois_cli.cli.progress import progress_bar
from vois_cli.data.extract import extract_root, extract_video
from vois_cli.errors import InputError


@app.command()
def extract(
    source: Annotated[
        Path, typer.Argument(help="A LiveVideos root (with videos/) or one video file.")
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="Frames folder: <out>/<name>/<i:05d>.jpg for a root, <out>/<i:05d>.jpg "
            "for one video."
        ),
    ],
) -> None:
    """Write the annotated frames (source frame round(i * fps / 5)) as JPEGs."""
    if source.is_dir():
        with progress_bar("extract") as report:
            counts = extract_root(source, out, progress=report)
        typer.echo(f"{sum(counts.values())} frames of {len(counts)} videos -> {out}")
    elif source.is_file():
        count = extract_video(source, out)
        typer.echo(f"{count} frames -> {out}")
    else:
        raise InputError(source, "not found", "give a LiveVideos root or a video file")
