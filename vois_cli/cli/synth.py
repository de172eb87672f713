"""`vois synth`: write a SynthLive benchmark in the LiveVideos layout, optionally previewed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vois_cli.cli.app import app
from vois_cli.cli.progress import progress_bar


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Benchmark folder to create (new or empty).")],
    preset: Annotated[
        str, typer.Option(help="Benchmark size: tiny, default, pretrain or full.")
    ] = "default",
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 0,
    workers: Annotated[
        int, typer.Option(min=1, help="Processes rendering clips (output is identical).")
    ] = 1,
    look_alikes: Annotated[
        str,
        typer.Option(
            help="Attributes a look-alike may differ in, comma-separated: shape, pattern, colour."
        ),
    ] = "shape,pattern,colour",
    extra_train: Annotated[
        int,
        typer.Option(
            min=0,
            help="More training clips, from a random stream of their own (the test split stays "
            "the preset's).",
        ),
    ] = 0,
    preview: Annotated[
        Path | None,
        typer.Option(
            help="Also write a contact sheet PNG of the first clip (target, frames, masks)."
        ),
    ] = None,
) -> None:
    """Generate SynthLive: procedural products among look-alikes, with exact masks."""
    from vois_cli.data.synth import synth_preset, write_benchmark  # scipy: only when run

    spec = synth_preset(preset)
    attributes = tuple(a.strip() for a in look_alikes.split(","))
    with progress_bar(f"synth {spec.name}") as report:
        splits = write_benchmark(
            out,
            spec.name,
            seed,
            workers=workers,
            progress=report,
            look_alikes=attributes,
            extra_train=extra_train,
        )["splits"]
    if preview is not None:
        from vois_cli.data.contact_sheet import write_contact_sheet  # scipy: only when asked

        write_contact_sheet(preview, out)
    train, test = len(splits["train"]), len(splits["test"])
    typer.echo(f"wrote {train + test} clips ({train} train, {test} test) to {out}")
