"""Stage preprocess: the training split's frames and masks at the 224 short edge."""

import sys
from pathlib import Path

from params import PARAMS

from vois_cli.data.preprocess import preprocess

if __name__ == "__main__":
    frames, out = sys.argv[1:3]
    p = PARAMS["preprocess"]
    annotations = Path(PARAMS["data"]["root"]) / "annotations" / "train.json"
    preprocess(frames, annotations, out, p["short_edge"], p["max_long_edge"])
