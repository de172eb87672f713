"""Stage train: the model of params `model` with the schedule of params `train`."""

import dataclasses
import logging
import sys

from params import PARAMS

from vois_cli.config import TrainConfig, preset
from vois_cli.engine import train, with_epochs

if __name__ == "__main__":
    data, out = sys.argv[1:3]
    model = dict(PARAMS["model"])
    run = dict(PARAMS["train"])
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = preset(
        model.pop("preset"), model=model, train={k: v for k, v in run.items() if k in fields}
    )
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    train(data, out, with_epochs(config, run["epochs"]), device=run["device"])
