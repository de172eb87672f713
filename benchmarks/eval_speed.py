"""Time `vois eval`'s scoring against the official youtubevos/cocoapi evaluation.

    VOIS_YTVOS_API=/path/to/official python3 benchmarks/eval_speed.py [--videos 500] ...

Builds a seeded case (default 500 videos x 36 frames x 10 predictions, 1-3 objects a
video at 360x640) and times, from parsed JSON, our validation + `evaluate` and, when
VOIS_YTVOS_API names a folder holding the official `ytvos.py` and `ytvoseval.py` (with
their `from . import mask` changed to `from pycocotools import mask`, and the numpy 2
fixes np.float -> float and int(...) around the linspace counts), the official
loadRes + evaluate + accumulate + summarize. Prints both and the ratio (goal: <= 1.0) and
writes them to benchmarks/results/eval_speed.json.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from provenance import finish, provenance
from pycocotools import mask as mask_utils

from vois_cli.data.ytvis import validate_annotations, validate_predictions
from vois_cli.evaluation import METRIC_KEYS, evaluate


def _ellipse_rle(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> dict:
    """COCO RLE of a filled ellipse, built from its column runs (no (H, W) array: fast)."""
    x = np.arange(w)
    half = ry * np.sqrt(np.clip(1 - ((x - cx) / rx) ** 2, 0, None))
    y0 = np.clip(np.ceil(cy - half), 0, h).astype(int)
    y1 = np.clip(np.floor(cy + half) + 1, 0, h).astype(int)
    keep = (np.abs(x - cx) <= rx) & (y1 > y0)
    starts, ends = x[keep] * h + y0[keep], x[keep] * h + y1[keep]
    bounds = np.stack([starts, ends], 1).ravel()
    joined = np.flatnonzero(ends[:-1] == starts[1:])  # one run over two columns
    bounds = np.delete(bounds, np.concatenate([2 * joined + 1, 2 * joined + 2]))
    bounds = np.concatenate([[0], bounds, [] if bounds.size and bounds[-1] == h * w else [h * w]])
    counts = np.diff(bounds).astype(int).tolist()
    rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    return {"size": [h, w], "counts": rle["counts"].decode("ascii")}


def build_case(videos: int, frames: int, preds: int, h: int, w: int, seed: int):
    """Ground truth of 1-3 moving ellipses a video; predictions jittered copies and misses."""
    rng = np.random.default_rng(seed)
    vids, anns, results = [], [], []
    for vid in range(1, videos + 1):
        names = [f"v{vid}/{i:05d}.jpg" for i in range(frames)]
        vids.append({"id": vid, "name": f"v{vid}", "width": w, "height": h, "length": frames,
                     "file_names": names})  # fmt: skip
        tracks = []
        for _ in range(int(rng.integers(1, 4))):
            cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
            ry, rx = rng.uniform(0.05, 0.3) * h, rng.uniform(0.05, 0.3) * w
            vy, vx = rng.normal(0, 2, size=2)
            track = [(cy + vy * t, cx + vx * t, ry, rx) if rng.random() > 0.1 else None
                     for t in range(frames)]  # fmt: skip
            tracks.append(track)
            segs = [None if p is None else _ellipse_rle(h, w, *p) for p in track]
            areas = [None if r is None else int(mask_utils.area(r)) for r in segs]
            anns.append({"id": len(anns) + 1, "video_id": vid, "category_id": 1, "iscrowd": 0,
                         "segmentations": segs, "areas": areas})  # fmt: skip
        for j in range(preds):
            track = tracks[j % len(tracks)]
            segs = []
            for p in track:
                if p is None or rng.random() < 0.05:
                    segs.append(None)
                    continue
                cy, cx, ry, rx = p
                jit = rng.normal(0, 1 + 3 * (j // len(tracks)), size=2)
                segs.append(_ellipse_rle(h, w, cy + jit[0], cx + jit[1], ry, rx))
            results.append({"video_id": vid, "category_id": 1, "score": float(rng.random()),
                            "segmentations": segs})  # fmt: skip
    gt = {"videos": vids, "annotations": anns, "categories": [{"id": 1, "name": "relevant"}]}
    return gt, results


def time_ours(gt: dict, preds: list) -> tuple[float, dict]:
    start = time.perf_counter()
    annotations = validate_annotations(gt, "gt.json")
    metrics = evaluate(annotations, validate_predictions(preds, "pred.json", annotations)).metrics
    return time.perf_counter() - start, metrics


def time_official(folder: str, gt: dict, preds: list) -> tuple[float, dict]:
    sys.path.insert(0, folder)
    ytvos, ytvoseval = importlib.import_module("ytvos"), importlib.import_module("ytvoseval")
    gt, preds = copy.deepcopy(gt), copy.deepcopy(preds)  # the official code edits its inputs
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        api = ytvos.YTVOS()
        api.dataset = gt
        api.createIndex()
        ev = ytvoseval.YTVOSeval(api, api.loadRes(preds), "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return time.perf_counter() - start, dict(zip(METRIC_KEYS, map(float, ev.stats), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=500)
    parser.add_argument("--frames", type=int, default=36)
    parser.add_argument("--preds", type=int, default=10)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/eval_speed.json"))
    args = parser.parse_args()
    meta = provenance(vars(args))
    build_start = time.perf_counter()
    gt, preds = build_case(args.videos, args.frames, args.preds, args.height, args.width, args.seed)
    built = time.perf_counter() - build_start
    print(f"case: {args.videos} videos x {args.frames} frames x {args.preds} predictions "
          f"at {args.height}x{args.width} (built in {built:.1f} s)")  # fmt: skip
    ours, metrics = time_ours(gt, preds)
    result = {"ours_s": ours, "AP": metrics["AP"]}
    print(f"ours:     {ours:8.2f} s   AP={metrics['AP']:.4f}")
    folder = os.environ.get("VOIS_YTVOS_API")
    if folder:
        official, stats = time_official(folder, gt, preds)
        worst = max(abs(metrics[k] - stats[k]) for k in METRIC_KEYS)
        result |= {"official_s": official, "ratio": ours / official, "max_abs_diff": worst}
        print(f"official: {official:8.2f} s   AP={stats['AP']:.4f}")
        print(f"ratio ours/official: {ours / official:.3f}   max |diff| over stats: {worst:.2e}")
    else:
        print("official: skipped (set VOIS_YTVOS_API to a folder with ytvos.py, ytvoseval.py)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": finish(meta), **result}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
