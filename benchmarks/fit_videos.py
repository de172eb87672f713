"""Which loss terms a preset can fit: train on the clips of a few training videos only.

A sanity check in the spirit of "overfit one batch": the model of `--preset` with the
preset's optimiser (gradient clipping included, no lr drop) trains `--steps` steps on the
`clips_per_video` clips of the first `--videos` videos of a preprocessed artifact, each
step a fresh augmentation. Every `--every` steps it prints the mean of each loss term
over the last `--every` steps. A term that stays at its starting level while the others
fall is one the architecture cannot fit at this budget (docs/training-notes.md).

    python3 benchmarks/fit_videos.py data/preprocessed [--videos 1 --steps 500]
    python3 benchmarks/fit_videos.py data/preprocessed -S model.query_content=false -S train.lr=1e-3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from vois_cli.atomic import write_json
from vois_cli.cli.train import parse_overrides
from vois_cli.config import preset
from vois_cli.data.dataset import ClipDataset
from vois_cli.models import build_model
from vois_cli.optim import build_optimizer

TERMS = ("loss_ce", "loss_bbox", "loss_giou", "loss_mask", "loss_dice")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="a preprocessed artifact (the preprocess stage)")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument(
        "-S", dest="set", action="append", default=[], help="model.FIELD=VALUE or train.FIELD=VALUE"
    )
    parser.add_argument("--videos", type=int, default=1)
    parser.add_argument("--clips-per-video", type=int, default=4)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/fit_videos.json"))
    args = parser.parse_args()

    config = preset(args.preset, **parse_overrides(args.set))
    torch.manual_seed(args.seed)
    model, criterion, _ = build_model(config)
    optimizer = build_optimizer(model, config)
    data = ClipDataset(args.data, config.model, True, args.clips_per_video, args.seed)
    items = [i for i, (video, _) in enumerate(data.items) if video < args.videos]
    history: dict[str, list[float]] = {term: [] for term in TERMS}
    curve, start = [], time.perf_counter()
    for step in range(1, args.steps + 1):
        data.set_epoch((step - 1) // len(items))
        sample = data[items[(step - 1) % len(items)]]
        losses = criterion(model(sample["video"][None], sample["target"][None]), [sample])
        optimizer.zero_grad()
        sum(losses.values()).backward()
        if config.train.clip_max_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.clip_max_norm)
        optimizer.step()
        for term in TERMS:
            history[term].append(losses[term].item())
        if step % args.every == 0:
            means = {t: round(sum(v[-args.every :]) / args.every, 4) for t, v in history.items()}
            curve.append({"step": step, "s": round(time.perf_counter() - start, 1), **means})
            print(json.dumps(curve[-1]), flush=True)
    case = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    write_json(args.out, {"case": case, "curve": curve}, indent=1)


if __name__ == "__main__":
    main()
