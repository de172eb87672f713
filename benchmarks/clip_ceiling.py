"""Where the tracks lose to their own clips: the best track per target as `vois infer` links
it, against the best proposal of every clip chosen with the ground truth.

Every video of a split goes through `Predictor.stream` as in `vois infer`, with a linker
that also keeps each clip's proposals (the masks `TrackLinker.link` receives) and the ids it
gave them. Per target instance, the sequence IoU over the video of:

- `linked`: its best predicted track;
- `clip_oracle`: one proposal per clip, over the frames that clip decides, each clip's chosen
  to raise the running IoU most: what a linker that always picked the right proposal of each
  clip would reach with the model's own clips;
- `frame_oracle`: the best mask of every frame, what perfect linking of the masks themselves
  would reach (`linked` and `frame_oracle` are `ap_breakdown.py`'s `best` and `oracle`).

`boundaries`: at each pair of consecutive clips where the best proposal of both (by IoU with
the target over the clip's frames) reaches `MATCH` or more, whether the two were given one
id, and if not, whether they overlap at IoU 0.5 in the shared frames (another proposal on
the same object took the join). `group`: in each clip whose best proposal reaches `MATCH`,
how many of its proposals lie at sequence IoU 0.5 or more with that best one.

    python3 benchmarks/clip_ceiling.py runs/train/last.pt [--root data/synthlive] \
        [--split test]

Keeps every clip's masks of a video in memory: for the short videos of a benchmark split.
Figures go to benchmarks/results/clip_ceiling.json with their provenance.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import torch
from ap_breakdown import track_ious
from provenance import finish, provenance

from vois_cli.atomic import write_json
from vois_cli.data.ytvis import decode_rle, load_annotations
from vois_cli.inference import Predictor
from vois_cli.inputs import load_target, read_video
from vois_cli.linking import TrackLinker, sequence_iou

MATCH = 0.3  # a clip "holds" the target when its best proposal reaches this IoU


class RecordingLinker(TrackLinker):
    """A `TrackLinker` that keeps every clip's frames, proposal masks and the ids it gave."""

    def __init__(self, **settings: float):
        super().__init__(**settings)
        self.clips: list[tuple[tuple[int, ...], list[np.ndarray], list[int]]] = []

    def link(self, frames: tuple[int, ...], masks: list[np.ndarray]) -> list[int]:
        ids = super().link(frames, masks)
        self.clips.append((frames, masks, ids))
        return ids


def clip_oracle(clips: list, truth: np.ndarray) -> float:
    """The `clip_oracle` sequence IoU of one target, truth bool (F, H, W), from the recorded
    `clips` [(frames, masks (T, H, W) each, ids)]; a clip decides the frames no earlier clip
    holds, and choosing no proposal is always an option."""
    decided: set[int] = set()
    inter = union = 0
    for frames, masks, _ in clips:
        own = [k for k, f in enumerate(frames) if f not in decided]
        decided.update(frames)
        if not own:
            continue
        target = truth[[frames[k] for k in own]]
        options = [(0, int(np.count_nonzero(target)))]
        options += [
            (int(np.count_nonzero(m[own] & target)), int(np.count_nonzero(m[own] | target)))
            for m in masks
        ]
        i, u = max(options, key=lambda o: (inter + o[0]) / max(union + o[1], 1))
        inter, union = inter + i, union + u
    return inter / max(union, 1)


def joins(clips: list, truth: np.ndarray) -> tuple[list[str], list[int]]:
    """Per boundary between consecutive clips holding the target, "joined", "other_join"
    (not joined though overlapping at IoU >= 0.5 in the shared frames) or "apart"; and per
    clip holding it, the size of its best proposal's group."""
    best, groups = [], []
    for frames, masks, ids in clips:
        if not masks:
            best.append(None)
            continue
        stacked = np.stack(masks)
        iou = sequence_iou(stacked, truth[list(frames)][None])[:, 0]
        j = int(iou.argmax())
        if iou[j] < MATCH:
            best.append(None)
            continue
        best.append((frames, masks[j], ids[j]))
        groups.append(int((sequence_iou(stacked, masks[j][None])[:, 0] >= 0.5).sum()))
    kinds = []
    for a, b in itertools.pairwise(best):
        if a is None or b is None:
            continue
        if a[2] == b[2]:
            kinds.append("joined")
            continue
        shared = sorted(set(a[0]) & set(b[0]))
        overlap = sequence_iou(
            a[1][[a[0].index(f) for f in shared]][None], b[1][[b[0].index(f) for f in shared]][None]
        )[0, 0]
        kinds.append("other_join" if overlap >= 0.5 else "apart")
    return kinds, groups


def _summary(values: list[float]) -> dict:
    return {
        "mean": round(float(np.mean(values)), 4),
        "at_0.5": int(np.sum(np.array(values) >= 0.5)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--root", type=Path, default=Path("data/synthlive"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/clip_ceiling.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    meta = provenance(vars(args), torch_threads=1)
    annotations = load_annotations(args.root / "annotations" / f"{args.split}.json", True)
    predictor = Predictor.from_checkpoint(args.checkpoint, "cpu")
    rows: dict[str, list[float]] = {"linked": [], "clip_oracle": [], "frame_oracle": []}
    kinds: list[str] = []
    groups: list[int] = []
    objects = annotations.by_video()
    for video in annotations.videos:
        linker = RecordingLinker(**predictor.linking)
        stream = predictor.stream(load_target(args.root / video.target), linker)
        path = args.root / "videos" / f"{video.name}.mp4"
        frames, _ = read_video(path, predictor.fps, video.length)
        for frame in frames:
            stream.push(frame)
        stream.close()
        predicted = stream.result().to_predictions(video.id)
        for ann in objects[video.id]:
            ious = track_ious(ann["segmentations"], predicted, video.length)
            rows["linked"].append(ious["best"])
            rows["frame_oracle"].append(ious["oracle"])
            truth = np.stack(
                [decode_rle(s, video.height, video.width) for s in ann["segmentations"]]
            )
            rows["clip_oracle"].append(clip_oracle(linker.clips, truth))
            k, g = joins(linker.clips, truth)
            kinds += k
            groups += g
    figures = {
        "targets": len(rows["linked"]),
        **{key: _summary(values) for key, values in rows.items()},
        "boundaries": {k: kinds.count(k) for k in ("joined", "other_join", "apart")},
        "group": {"clips": len(groups), "mean": round(float(np.mean(groups)), 2)},
    }
    print(json.dumps(figures, indent=1))
    write_json(args.out, {"meta": finish(meta), **figures}, indent=1)


if __name__ == "__main__":
    main()
