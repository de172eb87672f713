"""The AP a perfect model could reach at a preset's input size: the resolution ceiling.

Every ground-truth mask makes the round trip a prediction makes: area-resized to the model
input (short edge, long-edge cap of the preset), pooled to the grid of a feature stride,
bilinearly upsampled to the video size and thresholded at 0.5 (as `PostProcess` does with
the mask head's stride-4 logits). These oracle sequences, all with score 1, are scored like
predictions. Stride 4 is the mask head's output: its AP is the most any model of that
preset can get; the memory E every query reads is at stride 32 (16 in `tiny`).

    python benchmarks/mask_ceiling.py data/synthlive/annotations/test.json \
        [--presets tiny small paper] [--strides 4 8 16 32] [--out FILE]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vois_cli.atomic import write_json
from vois_cli.config import preset
from vois_cli.data.transforms import resized_shape
from vois_cli.data.ytvis import Annotations, decode_rle, encode_rle, load_annotations
from vois_cli.evaluation import evaluate

REPORTED = ("AP", "AP50", "AP75", "AR1", "AR10")


def round_trip(mask: np.ndarray, size: tuple[int, int], stride: int) -> np.ndarray:
    """bool (H, W) -> bool (H, W) after resizing to `size` and pooling to its stride grid."""
    x = torch.from_numpy(mask.astype(np.float32))[None, None]
    x = F.interpolate(x, size=size, mode="area")
    grid = (math.ceil(size[0] / stride), math.ceil(size[1] / stride))
    x = F.interpolate(x, size=grid, mode="area")
    x = F.interpolate(x, size=mask.shape, mode="bilinear", align_corners=False)
    return x[0, 0].numpy() > 0.5


def ceiling(annotations: Annotations, short_edge: int, max_long_edge: int, stride: int) -> dict:
    """Mean per-frame IoU of the round trip and the oracle's YouTube-VIS metrics; `input` is
    the model input size of the first video."""
    first = annotations.videos[0]
    predictions, ious = [], []
    for ann in annotations.annotations:
        video = annotations.video(ann["video_id"])
        size = resized_shape(video.height, video.width, short_edge, max_long_edge)
        segmentations = []
        for rle in ann["segmentations"]:
            if rle is None:
                segmentations.append(None)
                continue
            truth = decode_rle(rle, video.height, video.width)
            mask = round_trip(truth, size, stride)
            ious.append((mask & truth).sum() / (mask | truth).sum())
            segmentations.append(encode_rle(mask) if mask.any() else None)
        predictions.append(
            {"video_id": video.id, "category_id": 1, "score": 1.0, "segmentations": segmentations}
        )
    metrics = evaluate(annotations, predictions).metrics
    return {
        "input": list(resized_shape(first.height, first.width, short_edge, max_long_edge)),
        "frame_iou": float(np.mean(ious)),
        **{k: metrics[k] for k in REPORTED},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("annotations", type=Path, help="a YouTube-VIS annotation file")
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "paper"])
    parser.add_argument("--strides", nargs="+", type=int, default=[4, 8, 16, 32])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/mask_ceiling.json"))
    args = parser.parse_args()
    annotations = load_annotations(args.annotations)
    results = {"annotations": str(args.annotations)}
    for name in args.presets:
        m = preset(name).model
        results[name] = {}
        for stride in args.strides:
            row = ceiling(annotations, m.short_edge, m.max_long_edge, stride)
            results[name][f"stride{stride}"] = row
            figures = "  ".join(f"{k} {row[k]:.3f}" for k in ("frame_iou", *REPORTED))
            print(f"{name:6s} input {row['input']} stride {stride:2d}: {figures}")
    write_json(args.out, results, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
