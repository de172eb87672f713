"""Stage preprocess: the training split's frames and masks at the 224 short edge, with every
placed product's masks for the one-to-many mask loss where the data root has them
(SynthLive's train_all.json; LiveVideos has only the targets)."""

import sys
from pathlib import Path

from params import PARAMS

from vois_cli.data.preprocess import preprocess

if __name__ == "__main__":
    frames, out = sys.argv[1:3]
    p = PARAMS["preprocess"]
    annotations = Path(PARAMS["data"]["root"]) / "annotations"
    products = annotations / "train_all.json"
    preprocess(
        frames,
        annotations / "train.json",
        out,
        p["short_edge"],
        p["max_long_edge"],
        products=products if products.is_file() else None,
    )
