"""params.yaml, read once per stage script, and the training config it describes."""

import dataclasses
from pathlib import Path

import yaml

from vois_cli.config import Config, TrainConfig, preset

PARAMS = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())


# params `train` keys that are the fine-tuning's own: pretraining takes its seed and clips
# from params `pretrain`, and the preset's rates and schedule
FINE_TUNING_ONLY = ("seed", "clips_per_video", "lr", "lr_backbone", "lr_schedule")


def config_from_params(*, pretrain: bool = False) -> Config:
    """The preset of params `model` with its field overrides, then params `train`'s
    TrainConfig fields: all of them for the train stage, those not in `FINE_TUNING_ONLY` and
    params `pretrain`'s seed and clips for the pretrain stage."""
    model = dict(PARAMS["model"])
    # not `epochs`: the stages pass it to `with_epochs`, which moves the lr drop with it
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"epochs"}
    run = {k: v for k, v in PARAMS["train"].items() if k in fields}
    if pretrain:
        p = PARAMS["pretrain"]
        run = {k: v for k, v in run.items() if k not in FINE_TUNING_ONLY}
        run.update(seed=p["seed"], clips_per_video=p["clips_per_video"])
    return preset(model.pop("preset"), model=model, train=run)
