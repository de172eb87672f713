"""`vois eval`: score YouTube-VIS predictions against an annotation file.

The metrics: docs/design.md#predictions-and-metrics; exit codes: docs/design.md#command-line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vois_cli.cli.app import app
from vois_cli.cli.progress import progress_bar
from vois_cli.errors import InputError
from vois_cli.evaluation import METRIC_KEYS, score_files


def _check_sources(gt: Path | None, pred: Path | None) -> tuple[Path, Path]:
    """The scoring form needs both files; other input forms are checked here as they arrive."""
    if gt is None or pred is None:
        missing = "--gt" if gt is None else "--pred"
        raise InputError(None, f"{missing} is missing", "pass --gt ANN.json --pred PRED.json")
    return gt, pred


@app.command("eval")
def eval_command(
    out: Annotated[Path, typer.Option("--out", help="Where to write the flat metrics JSON.")],
    gt: Annotated[
        Path | None, typer.Option("--gt", help="Annotation file (YouTube-VIS / LiveVideos).")
    ] = None,
    pred: Annotated[
        Path | None, typer.Option("--pred", help="Prediction file (YouTube-VIS results list).")
    ] = None,
    per_video: Annotated[
        Path | None,
        typer.Option("--per-video", help="Also write a per-video breakdown JSON here."),
    ] = None,
    pr_curve: Annotated[
        Path | None,
        typer.Option("--pr-curve", help="Also write the precision-recall curve JSON here."),
    ] = None,
    min_ap: Annotated[
        float | None,
        typer.Option("--min-ap", help="Exit with code 1 when AP is below this (a CI gate)."),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="A LiveVideos root: predict its --split with --checkpoint first, then score "
            "(predictions go to --pred, default predictions.json beside --out).",
        ),
    ] = None,
    split: Annotated[str, typer.Option("--split", help="Split of --data to score.")] = "test",
    checkpoint: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="Checkpoint for --data (default: as `vois infer`)."),
    ] = None,
    device: Annotated[
        str, typer.Option("--device", help="For --data: auto (CUDA when present), cpu, cuda:N.")
    ] = "auto",
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="For --data: an inference field for this run, as `vois infer --set`.",
        ),
    ] = None,
) -> None:
    """Score predictions with the official YouTube-VIS metric (AP, AR) on one category."""
    if overrides and data is None:
        raise InputError(None, "--set applies to --data only", "pass --data ROOT or drop --set")
    if data is not None:
        if gt is not None:
            raise InputError(None, "--data and --gt both given", "pass one of them")
        gt = data / "annotations" / f"{split}.json"
        from vois_cli.cli.infer import parse_inference
        from vois_cli.infer_files import infer_split  # torch: only when inference runs

        inference = parse_inference(overrides or [])
        pred = pred or out.with_name("predictions.json")
        with progress_bar(f"infer {split}") as report:
            infer_split(data, split, checkpoint, pred, device, report, inference)
    gt, pred = _check_sources(gt, pred)
    with progress_bar("eval") as report:
        result = score_files(gt, pred, out, per_video, pr_curve, progress=report)
    typer.echo(" ".join(f"{k}={result.metrics[k]:.4f}" for k in METRIC_KEYS))
    if min_ap is not None and result.metrics["AP"] < min_ap:
        typer.echo(f"AP {result.metrics['AP']:.4f} is below --min-ap {min_ap}", err=True)
        raise typer.Exit(1)
