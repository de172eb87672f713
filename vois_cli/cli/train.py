"""`vois train`: train on a preprocessed artifact; `torchrun … -m vois_cli train` for DDP."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer
import yaml

from vois_cli.cli.app import app
from vois_cli.cli.progress import progress_bar
from vois_cli.config import PRESETS, preset
from vois_cli.errors import InputError


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Folder written by `vois preprocess`.")],
    out: Annotated[Path, typer.Option(help="Run folder: last.pt and train_log.csv go here.")],
    preset_name: Annotated[
        str, typer.Option("--preset", help=f"Model and schedule preset: {', '.join(PRESETS)}.")
    ] = "paper",
    epochs: Annotated[
        int | None,
        typer.Option(min=1, help="Epochs; the lr drop moves with them (12 of 18 → 8 of 12)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --out from its last.pt.")
    ] = False,
    pretrained_image: Annotated[
        Path | None, typer.Option(help="ImageNet Swin-T weights (.pth) for the image path.")
    ] = None,
    pretrained_video: Annotated[
        Path | None,
        typer.Option(help="ImageNet Swin-T weights (.pth), inflated for the video path."),
    ] = None,
    init: Annotated[
        Path | None,
        typer.Option(
            help="A vois checkpoint of the same architecture (e.g. the pretrain stage's "
            "last.pt) whose weights start this run; its optimizer and schedule are not used."
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Seed (default: the preset's).")] = None,
    accumulate: Annotated[
        int | None, typer.Option(min=1, help="Clips per process and optimizer step.")
    ] = None,
    checkpoint_every: Annotated[
        int, typer.Option(min=0, help="Also write last.pt every this many steps (0: per epoch).")
    ] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Config field override, e.g. train.clips_per_video=2 (repeatable)."
        ),
    ] = None,
) -> None:
    """Train with the paper's schedule; one clip per process and step, DDP under torchrun."""
    if preset_name not in PRESETS:
        raise InputError(
            None, f"unknown preset {preset_name!r}", f"choose one of {', '.join(PRESETS)}"
        )
    fields = parse_overrides(overrides or [])
    fields["train"].update(
        {k: v for k, v in {"seed": seed, "accumulate": accumulate}.items() if v is not None}
    )
    try:
        config = preset(preset_name, **fields)
    except (ValueError, TypeError) as e:
        raise InputError(
            None,
            f"bad --set override ({e})",
            "name fields of ModelConfig/TrainConfig, each with a value of its type",
        ) from e
    from vois_cli.engine import train as train_model  # torch: only when a command runs
    from vois_cli.engine import with_epochs

    if epochs is not None:
        config = with_epochs(config, epochs)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    logging.basicConfig(level=logging.INFO if rank0 else logging.WARNING, format="%(message)s")
    with progress_bar("train") as report:
        summary = train_model(
            data,
            out,
            config,
            resume=resume,
            pretrained_image=pretrained_image,
            pretrained_video=pretrained_video,
            init=init,
            device=device,
            checkpoint_every=checkpoint_every,
            progress=report,
        )
    if rank0:
        typer.echo(
            f"trained {summary['epochs']} epochs, {summary['steps']} steps on "
            f"{summary['world_size']} process(es), last epoch loss {summary['loss']:.4f}: "
            f"{summary['checkpoint']}"
        )


def parse_overrides(items: list[str]) -> dict[str, dict]:
    """`section.field=value` strings -> {"model": {...}, "train": {...}}; values read as YAML."""
    fields: dict[str, dict] = {"model": {}, "train": {}}
    for item in items:
        key, sep, value = item.partition("=")
        section, _, name = key.partition(".")
        if not sep or section not in fields or not name:
            raise InputError(
                None, f"bad --set {item!r}", "write model.FIELD=VALUE or train.FIELD=VALUE"
            )
        fields[section][name] = yaml.safe_load(value)
    return fields
