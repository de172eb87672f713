"""Stage evaluate: YouTube-VIS AP/AR of the predictions, per-video breakdown and PR curve."""

import sys
from pathlib import Path

from params import PARAMS

from vois_cli.evaluation import score_files

if __name__ == "__main__":
    predictions, metrics, per_video, pr_curve = sys.argv[1:5]
    annotations = Path(PARAMS["data"]["root"]) / "annotations" / f"{PARAMS['infer']['split']}.json"
    score_files(annotations, predictions, metrics, per_video=per_video, pr_curve=pr_curve)
