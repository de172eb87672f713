"""params.yaml, read once per stage script, and the training config it describes."""

import dataclasses
from pathlib import Path

import yaml

from vois_cli.config import Config, TrainConfig, preset

PARAMS = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())


def config_from_params(**train_overrides) -> Config:
    """The preset of params `model` with its field overrides and params `train`'s TrainConfig
    fields, then `train_overrides` (the pretrain stage's seed and clips)."""
    model = dict(PARAMS["model"])
    # not `epochs`: the stages pass it to `with_epochs`, which moves the lr drop with it
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"epochs"}
    run = {k: v for k, v in PARAMS["train"].items() if k in fields}
    return preset(model.pop("preset"), model=model, train={**run, **train_overrides})
