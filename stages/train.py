"""Stage train: the model of params `model` with the schedule of params `train`, starting
from the pretrain stage's weights."""

import logging
import sys

from params import PARAMS, config_from_params

from vois_cli.engine import train, with_epochs

if __name__ == "__main__":
    data, out, init = sys.argv[1:4]
    run = PARAMS["train"]
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = with_epochs(config_from_params(), run["epochs"])
    train(data, out, config, init=init, device=run["device"])
