"""Stage pretrain_data: a SynthLive benchmark of params `pretrain.preset` (`pretrain`: 480 short
clips, one target product each), extracted and preprocessed with every placed product's masks;
only the artifact is kept."""

import shutil
import sys
from pathlib import Path

from params import PARAMS

from vois_cli.atomic import atomic_dir
from vois_cli.data.extract import extract_root
from vois_cli.data.preprocess import preprocess
from vois_cli.data.synth import write_benchmark

if __name__ == "__main__":
    out = Path(sys.argv[1])
    p, pp = PARAMS["pretrain"], PARAMS["preprocess"]
    # a fixed scratch name, not a random temp folder: the artifact's index records the
    # annotation paths it was made from, and dvc hashes the index
    scratch = out.parent / f".{out.name}.scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        with atomic_dir(out) as build:
            bench, frames = scratch / "synthlive", scratch / "frames"
            write_benchmark(bench, p["preset"], PARAMS["synth"]["seed"], workers=p["workers"])
            extract_root(bench, frames)
            annotations = bench / "annotations" / f"{p['annotations']}.json"
            preprocess(
                frames,
                annotations,
                build / "preprocessed",
                pp["short_edge"],
                pp["max_long_edge"],
                products=bench / "annotations" / "train_all.json",
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
