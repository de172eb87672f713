"""The learning ladder: what a config learns in a few minutes, rung by rung.

Each rung trains the config from scratch (or from `--init`) for `--epochs` short epochs on
one training set, predicts the matching test split with `vois infer`'s code and scores it:

- `all`: every product (`*_all.json`): class-agnostic video instance segmentation on the
  same footage; the target is shown but every product counts. Tests localisation, masks and
  matching without the comparison.
- `colour`: a SynthLive benchmark of the same preset and seed whose look-alikes differ from
  the target only in colour (made once under `--cache`).
- `target`: the benchmark itself (SynthLive `default` in `dvc repro`).

For `colour` and `target` it also reports how the scores rank the objects the generator
placed: every object of `test_all.json` gets the score of the best prediction overlapping it
(sequence IoU >= 0.5, else 0), and the AUC says how often a target instance outranks a
look-alike (`auc_negative`) or an unrelated product (`auc_clutter`); 0.5 is chance.
`frame_iou` is the mean over the scored objects' present frames of the best IoU any
prediction reaches in that frame: mask quality before linking and ranking, which moves long
before AP does. A
model with a dense target map (`loss_target_map` > 0) also gets `map_ap`: the average
precision of its per-token "target here" scores on the test clips, a token counting as
positive when the target's instances cover half of it (the fastest signal of the comparison
alone).

    python3 benchmarks/ladder.py --name tiny [--epochs 4] [-S model.FIELD=VALUE] [--rungs target]

Figures go to benchmarks/results/ladder.json (one entry per `--name`, replaced on re-run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from ap_breakdown import auc, predictions_by_video, track_ious
from provenance import commit

from vois_cli.atomic import write_json
from vois_cli.checkpoint import load_model
from vois_cli.cli.train import parse_overrides
from vois_cli.config import preset
from vois_cli.data.dataset import ClipDataset
from vois_cli.data.extract import extract_root
from vois_cli.data.preprocess import preprocess
from vois_cli.data.synth import write_benchmark
from vois_cli.data.ytvis import load_annotations, load_predictions
from vois_cli.engine import train, with_epochs
from vois_cli.evaluation import evaluate, mask_areas, sequence_ious
from vois_cli.infer_files import infer_split
from vois_cli.models.criterion import token_coverage

RUNGS = ("all", "colour", "target")
MATCH_IOU = 0.5


def rung_data(rung: str, root: Path, frames: Path, data: Path, cache: Path, spec: dict):
    """(benchmark root, preprocessed training data, test split name, preprocessed test data)
    of a rung, made on demand."""
    if rung in ("target", "all"):
        test = cache / "target" / "test"
        if not test.exists():
            preprocess(frames, root / "annotations" / "test.json", test, 224, 400)
    if rung == "target":
        return root, data, "test", test
    if rung == "all":
        out = cache / "all" / "preprocessed"
        if not out.exists():
            preprocess(frames, root / "annotations" / "train_all.json", out, 224, 400)
        return root, out, "test_all", None
    bench = cache / "colour" / "synthlive"
    if not bench.exists():
        write_benchmark(bench, spec["preset"], spec["seed"], workers=2, look_alikes=("colour",))
    if not (cache / "colour" / "frames").exists():
        extract_root(bench, cache / "colour" / "frames")
    out, test = cache / "colour" / "preprocessed", cache / "colour" / "test"
    if not out.exists():
        preprocess(cache / "colour" / "frames", bench / "annotations" / "train.json", out, 224, 400)
    if not test.exists():
        preprocess(cache / "colour" / "frames", bench / "annotations" / "test.json", test, 224, 400)
    return bench, out, "test", test


def role_scores(root: Path, split: str, predictions: Path) -> dict[str, list[float]]:
    """Every placed object's score: its best-overlapping prediction's, 0 if none reaches 0.5."""
    every = load_annotations(root / "annotations" / f"{split}_all.json")
    preds = predictions_by_video(
        load_predictions(predictions, load_annotations(root / "annotations" / f"{split}.json"))
    )
    objects = every.by_video()
    scores: dict[str, list[float]] = {"target": [], "negative": [], "clutter": []}
    for video in every.videos:
        gts, dts = objects.get(video.id, []), preds.get(video.id, [])
        if not gts:
            continue
        dt_segs = [d["segmentations"] for d in dts]
        gt_segs = [g["segmentations"] for g in gts]
        ious = sequence_ious(
            dt_segs, gt_segs, mask_areas(dt_segs, video.length), mask_areas(gt_segs, video.length)
        )
        dt_scores = np.array([d["score"] for d in dts])
        for j, g in enumerate(gts):
            hits = dt_scores[ious[:, j] >= MATCH_IOU] if len(dts) else np.zeros(0)
            scores[g["role"]].append(float(hits.max()) if len(hits) else 0.0)
    return scores


@torch.no_grad()
def map_ap(checkpoint: Path, test_data: Path) -> float | None:
    """Average precision of the model's target-map tokens on a preprocessed test split."""
    model, _, config = load_model(checkpoint, "cpu")
    if not config.model.loss_target_map:
        return None
    scores, labels = [], []
    for clip in ClipDataset(test_data, config.model, train=False):
        out = model(clip["video"][None], clip["target"][None])
        logits = out["target_logits"][0]  # (T, h, w)
        cover = token_coverage(clip["masks"], tuple(logits.shape[-2:]))
        valid = clip["frame_valid"]
        scores.append(logits[valid].flatten())
        labels.append(cover[valid].flatten() >= 0.5)
    scores, labels = torch.cat(scores), torch.cat(labels)
    order = scores.argsort(descending=True)
    hits = labels[order].double()
    precision = hits.cumsum(0) / torch.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum().clamp(min=1))


def frame_iou(root: Path, split: str, predictions: Path) -> float:
    """Mean over the objects of `split` and their present frames of the best prediction IoU."""
    ann = load_annotations(root / "annotations" / f"{split}.json")
    preds, objects = predictions_by_video(load_predictions(predictions, ann)), ann.by_video()
    best = [
        iou
        for video in ann.videos
        for g in objects[video.id]
        for iou in track_ious(g["segmentations"], preds.get(video.id, []), video.length)["frames"]
    ]
    return round(float(np.mean(best)), 4) if best else 0.0


def run_rung(rung: str, args, config, paths) -> dict:
    bench, data, split, test_data = paths
    out = args.runs / args.name / rung
    started = time.perf_counter()
    init = {"init": args.init} if args.init else {}
    summary = train(data, out, config, device="cpu", **init)
    trained = time.perf_counter() - started
    pred = out / "predictions.json"
    infer_split(bench, split, out / "last.pt", pred, device="cpu")
    annotations = load_annotations(bench / "annotations" / f"{split}.json")
    metrics = evaluate(annotations, load_predictions(pred, annotations)).metrics
    row = {
        "rung": rung,
        "steps": summary["steps"],
        "train_s": round(trained, 1),
        **{k: round(metrics[k], 4) for k in ("AP", "AP50", "AP75", "AR1", "AR10")},
        "loss": round(summary["loss"], 4),
        "frame_iou": frame_iou(bench, split, pred),
    }
    if rung != "all":
        scores = role_scores(bench, split, pred)
        row["auc_negative"] = auc(scores["target"], scores["negative"])
        row["auc_clutter"] = auc(scores["target"], scores["clutter"])
        row["map_ap"] = map_ap(out / "last.pt", test_data)
    return row


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the entry's name in ladder.json")
    parser.add_argument("--root", type=Path, default=Path("data/synthlive"))
    parser.add_argument("--frames", type=Path, default=Path("data/frames"))
    parser.add_argument("--data", type=Path, default=Path("data/preprocessed"))
    parser.add_argument("--cache", type=Path, default=Path("data/ladder"))
    parser.add_argument("--runs", type=Path, default=Path("runs/ladder"))
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("-S", dest="set", action="append", default=[], help="section.FIELD=VALUE")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--clips-per-video", type=int, default=4, help="clips per video and epoch")
    parser.add_argument("--init", type=Path, help="start from this checkpoint's weights")
    parser.add_argument("--rungs", default=",".join(RUNGS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ladder.json"))
    args = parser.parse_args()

    overrides = parse_overrides([f"train.clips_per_video={args.clips_per_video}", *args.set])
    config = with_epochs(preset(args.preset, **overrides), args.epochs)
    spec = json.loads((args.root / "synth.json").read_text())
    rows = []
    for rung in args.rungs.split(","):
        paths = rung_data(rung, args.root, args.frames, args.data, args.cache, spec)
        rows.append(run_rung(rung, args, config, paths))
        print(json.dumps(rows[-1]), flush=True)
    sha, dirty = commit()
    entry = {
        "name": args.name,
        "commit": sha[:7],
        "dirty": dirty,
        "command": "python3 benchmarks/ladder.py " + " ".join(os.sys.argv[1:]),
        "machine": machine(),
        "benchmark": {"preset": spec["preset"], "seed": spec["seed"]},
        "config": {
            "preset": args.preset,
            "overrides": args.set,
            "epochs": args.epochs,
            "clips_per_video": args.clips_per_video,
        },
        "rows": rows,
    }
    old = json.loads(args.out.read_text()) if args.out.exists() else {"entries": []}
    entries = [e for e in old["entries"] if e["name"] != args.name] + [entry]
    write_json(args.out, {"entries": entries}, indent=1)


if __name__ == "__main__":
    main()
