"""`vois infer`: one video (JSON, overlay mp4, mask PNGs) or a whole split (predictions.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vois_cli.cli.app import app
from vois_cli.cli.progress import progress_bar
from vois_cli.cli.train import parse_overrides
from vois_cli.data.video import ANNOTATION_FPS
from vois_cli.errors import InputError
from vois_cli.overlay import SHOW_THRESHOLD


@app.command()
def infer(
    video: Annotated[
        Path | None,
        typer.Argument(help="A video ffmpeg reads (mp4, mov, webm, …) or a folder of frames."),
    ] = None,
    target: Annotated[
        Path | None, typer.Option(help="The product image (jpg or png) to look for.")
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="A vois checkpoint (default: $VOIS_CHECKPOINT, else runs/train/last.pt, "
            "which `dvc repro` trains)."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="YouTube-VIS results JSON (default: <video name>.pred.json; required with --data)."
        ),
    ] = None,
    overlay: Annotated[
        Path | None,
        typer.Option(help="Also write an mp4 with each object's mask, id and score drawn."),
    ] = None,
    masks: Annotated[
        Path | None,
        typer.Option(help="Also write <i:05d>.png per frame: 16-bit object ids, 0 = background."),
    ] = None,
    fps: Annotated[
        int,
        typer.Option(min=1, help="Frames per second taken from the video (the annotations' rate)."),
    ] = ANNOTATION_FPS,
    threshold: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Objects scoring below this stay out of overlay/PNGs."),
    ] = SHOW_THRESHOLD,
    data: Annotated[
        Path | None, typer.Option(help="A LiveVideos root: predict a whole split instead.")
    ] = None,
    split: Annotated[
        str, typer.Option(help="Split of --data (annotations/<split>.json).")
    ] = "test",
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cpu, cuda or cuda:N.")] = (
        "auto"
    ),
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="An inference field for this run, e.g. model.mask_guide=0 (repeatable; "
            "the fields training never reads, docs/design.md).",
        ),
    ] = None,
) -> None:
    """Find, track and segment the target product in a video (or in every video of a split)."""
    from vois_cli.infer_files import infer_split, infer_video  # torch: only when a command runs

    inference = parse_inference(overrides or [])

    if data is not None:
        if video is not None or target is not None or overlay or masks:
            raise typer.BadParameter("--data takes no VIDEO, --target, --overlay or --masks")
        if out is None:
            raise typer.BadParameter("--data needs --out predictions.json")
        with progress_bar(f"infer {split}") as report:
            predictions = infer_split(data, split, checkpoint, out, device, report, inference)
        typer.echo(f"{len(predictions)} objects -> {out}")
        return
    if video is None or target is None:
        raise typer.BadParameter("give VIDEO and --target IMAGE, or --data ROOT")
    out = out or Path(f"{video.stem}.pred.json")
    with progress_bar("infer") as report:
        result = infer_video(
            video,
            target,
            out,
            checkpoint,
            device,
            overlay,
            masks,
            fps,
            threshold,
            report,
            inference,
        )
    typer.echo(f"{len(result.objects)} objects in {result.num_frames} frames -> {out}")


def parse_inference(items: list[str]) -> dict:
    """`model.field=value` strings -> {field: value}; `train.*` is not for inference."""
    fields = parse_overrides(items)
    if fields["train"]:
        raise InputError(None, "--set train.* does not apply to inference", "set model.FIELD=VALUE")
    return fields["model"]
