"""Stage pretrain: the model of params `model` trained on the pretrain data; `train` starts
from its weights (the paper starts from ImageNet Swin-T and COCO DETR, which cannot be
downloaded here)."""

import logging
import sys

from params import PARAMS, config_from_params

from vois_cli.engine import train, with_epochs

if __name__ == "__main__":
    data, out = sys.argv[1:3]
    p = PARAMS["pretrain"]
    config = config_from_params(pretrain=True)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    train(data, out, with_epochs(config, p["epochs"]), device=PARAMS["train"]["device"])
