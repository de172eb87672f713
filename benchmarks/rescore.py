"""Re-score a trained checkpoint with the post-processing its preset has today.

A checkpoint keeps the config it was trained with, so a change of a preset's inference fields
(a new `score_*` deviation) does not reach the checkpoints trained before it. This writes a
copy of the checkpoint whose model config takes today's preset values for those fields (the
weights and every other field as trained), then predicts and evaluates the split as the
`infer` and `evaluate` stages do:

    python3 benchmarks/rescore.py runs/train/last.pt OUT_DIR [--root data/synthlive] \
        [--split test] [--device auto]

OUT_DIR gets last.pt (the copy), predictions.json and metrics.json; record the run with
`record_experiment.py --metrics OUT_DIR/metrics.json` and a command that names both the
training run and this one.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from vois_cli.checkpoint import load_checkpoint, save_checkpoint
from vois_cli.config import Config, inference_fields, preset
from vois_cli.evaluation import score_files
from vois_cli.infer_files import infer_split


def rescored_config(trained: dict) -> dict:
    """The checkpoint's config dict with its preset's inference fields as they are today."""
    config = Config.from_dict(trained)
    today = preset(config.model.preset).model
    fields = {f: getattr(today, f) for f in inference_fields()}
    return dataclasses.replace(config, model=dataclasses.replace(config.model, **fields)).to_dict()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path, help="folder for last.pt, predictions.json, metrics.json")
    parser.add_argument("--root", type=Path, default=Path("data/synthlive"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    trained = load_checkpoint(args.checkpoint)
    args.out.mkdir(parents=True, exist_ok=True)
    copy = args.out / "last.pt"
    save_checkpoint(copy, config=rescored_config(trained["config"]), model=trained["model"])
    predictions = args.out / "predictions.json"
    infer_split(args.root, args.split, copy, predictions, args.device)
    annotations = args.root / "annotations" / f"{args.split}.json"
    score_files(annotations, predictions, args.out / "metrics.json")
    print((args.out / "metrics.json").read_text())


if __name__ == "__main__":
    main()
