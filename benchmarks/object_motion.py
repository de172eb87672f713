"""How far SynthLive's objects move between annotated frames, and what that leaves to a
frame-to-frame linker even with perfect masks.

Reads an `*_all.json` annotation file (every placed product, each with its `role`). For every
product and pair of consecutive annotated frames where it is present:

- `iou`: its true mask's IoU with its own mask in the next frame;
- `shift`: how far its mask centroid moves, over its side (the square root of its area);
- `links`: how often linking the frame's true masks to the next frame's keeps each object's
  identity (Hungarian matching by mask IoU, by centroid distance, or by distance from the
  centroid moved by its last step), among all products and among the target instances
  alone, which are identical items told apart only by where they are.

`linked`: the target instances' true masks joined frame to frame by each linker (a track ends
where no link reaches IoU > 0, or where its object is absent), each track's score its
length, and their YouTube-VIS AP against the targets: what a frame-to-frame linker gives
with perfect masks, perfectly told apart from the look-alikes. `targets_reentering` is the
share of target instances that leave the frame and come back, which such a linker splits.
`clips_*`: the same masks through `vois infer`'s own linking, cut into overlapping clips of
`--clip-len` frames (the `tiny` preset's T by default) joined by its `TrackLinker` (mask IoU
on the shared frames, then re-entry): each object one proposal of its clip (`clips_true`),
or the clip's masks chained frame to frame by the nearest centroid, as the two-stage
queries' slots are (`clips_centroid`), or by the centroid moved by its last step: what
`vois infer` would score with perfect masks.

    python3 benchmarks/object_motion.py data/synthlive/annotations/test_all.json

Prints the figures and writes benchmarks/results/object_motion.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from provenance import finish, provenance
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment

from vois_cli.atomic import write_json
from vois_cli.config import PRESETS
from vois_cli.data.ytvis import CATEGORY_ID, decode_rle, encode_rle, load_annotations
from vois_cli.evaluation import evaluate
from vois_cli.linking import TrackLinker, default_overlap, plan_clips

LINKERS = ("mask_iou", "centroid", "centroid_velocity")
CLIP_LINKERS = ("clips_true", "clips_centroid", "clips_centroid_velocity")


def centroid(rle: dict, height: int, width: int) -> tuple[float, float, float]:
    """(x, y, side) of a mask: its centroid in pixels and the square root of its area."""
    ys, xs = np.nonzero(decode_rle(rle, height, width))
    return float(xs.mean()), float(ys.mean()), float(np.sqrt(len(xs)))


def link(
    a: list[dict], b: list[dict], linker: str, height: int, width: int, moved: list | None = None
) -> dict[int, int]:
    """Hungarian links from masks `a` (RLEs) to masks `b`: {index in a: index in b}; by mask
    IoU (only links above 0) or by centroid distance (every pair may link), with `a`'s
    centroids first moved by `moved` (x, y) pixels each when given (`centroid_velocity`)."""
    if not a or not b:
        return {}
    if linker == "mask_iou":
        ious = mask_utils.iou(a, b, [0] * len(b))
        rows, cols = linear_sum_assignment(-ious)
        return {int(r): int(c) for r, c in zip(rows, cols, strict=True) if ious[r, c] > 0}
    pa = np.array([centroid(m, height, width)[:2] for m in a])
    if moved is not None:
        pa = pa + np.array(moved, float).reshape(-1, 2)
    pb = np.array([centroid(m, height, width)[:2] for m in b])
    rows, cols = linear_sum_assignment(np.linalg.norm(pa[:, None] - pb[None], axis=-1))
    return {int(r): int(c) for r, c in zip(rows, cols, strict=True)}


def velocity(before: dict | None, now: dict, height: int, width: int) -> tuple[float, float]:
    """The centroid's move from mask `before` to mask `now` in pixels, (0, 0) without one."""
    if not before:
        return (0.0, 0.0)
    (xa, ya, _), (xb, yb, _) = centroid(before, height, width), centroid(now, height, width)
    return (xb - xa, yb - ya)


def link_accuracy(objects: list[dict], video, linker: str) -> tuple[int, int]:
    """(right, total) links of one video's objects from each annotated frame to the next."""
    size, right, total = (video.height, video.width), 0, 0
    for t in range(video.length - 1):
        here = [k for k, o in enumerate(objects) if o["segmentations"][t]]
        there = [k for k, o in enumerate(objects) if o["segmentations"][t + 1]]
        segs = [objects[k]["segmentations"] for k in here]
        moved = None
        if linker == "centroid_velocity":
            moved = [velocity(s[t - 1] if t else None, s[t], *size) for s in segs]
        links = link(
            [s[t] for s in segs],
            [objects[k]["segmentations"][t + 1] for k in there],
            linker,
            *size,
            moved,
        )
        for i, k in enumerate(here):
            if k in there:
                total += 1
                right += i in links and there[links[i]] == k
    return right, total


def linked_tracks(objects: list[dict], video, linker: str) -> list[dict]:
    """The objects' true masks joined frame to frame by `linker` into scored tracks."""
    size = (video.height, video.width)
    tracks: list[list] = []
    open_tracks: dict[int, int] = {}  # object index in the frame -> track
    for t in range(video.length):
        here = [k for k, o in enumerate(objects) if o["segmentations"][t]]
        masks = [objects[k]["segmentations"][t] for k in here]
        if t:
            before = [k for k, o in enumerate(objects) if o["segmentations"][t - 1]]
            previous = [objects[k]["segmentations"][t - 1] for k in before]
            moved = None
            if linker == "centroid_velocity":
                moved = [
                    velocity(tracks[open_tracks[k]][t - 2] if t > 1 else None, m, *size)
                    for k, m in zip(before, previous, strict=True)
                ]
            links = link(previous, masks, linker, *size, moved)
            carried = {c: open_tracks[before[r]] for r, c in links.items()}
        else:
            carried = {}
        open_tracks = {}
        for i, k in enumerate(here):
            if i not in carried:
                tracks.append([None] * video.length)
                carried[i] = len(tracks) - 1
            tracks[carried[i]][t] = masks[i]
            open_tracks[k] = carried[i]
    return [
        {
            "video_id": video.id,
            "category_id": CATEGORY_ID,
            "score": sum(m is not None for m in segs) / video.length,
            "segmentations": segs,
        }
        for segs in tracks
    ]


def clip_tracks(objects: list[dict], video, clip_len: int, within: str) -> list[dict]:
    """The objects' true masks cut into `vois infer`'s overlapping clips and joined by its
    `TrackLinker`; inside a clip each object is one proposal (`within` "true") or the masks
    are chained frame to frame by `within`, a frame linker ("centroid" is how `link_slots`
    chains a clip's slots)."""
    linker, found = TrackLinker(), {}
    shape = (video.height, video.width)
    for clip in plan_clips(video.length, clip_len, default_overlap(clip_len)):
        frames = tuple(sorted(set(clip.frames)))
        part = [{"segmentations": [o["segmentations"][f] for f in frames]} for o in objects]
        if within != "true":
            part = linked_tracks(part, replace(video, length=len(frames)), within)
        proposals = [
            np.stack([decode_rle(m, *shape) for m in o["segmentations"]])
            for o in part
            if any(o["segmentations"])
        ]
        for track_id, masks in zip(linker.link(frames, proposals), proposals, strict=True):
            for f in clip.own:
                if masks[frames.index(f)].any():
                    found.setdefault(track_id, {})[f] = encode_rle(masks[frames.index(f)])
    return [
        {
            "video_id": video.id,
            "category_id": CATEGORY_ID,
            "score": len(segs) / video.length,
            "segmentations": [segs.get(f) for f in range(video.length)],
        }
        for segs in found.values()
    ]


def quantiles(values: list[float]) -> dict[str, float]:
    names, levels = ("p10", "p25", "median", "p75", "p90"), (0.1, 0.25, 0.5, 0.75, 0.9)
    return {k: round(float(q), 3) for k, q in zip(names, np.quantile(values, levels), strict=True)}


def motion(path: Path, clip_len: int) -> dict:
    """The figures of one `*_all.json` file (see the module docstring)."""
    ann = load_annotations(path)
    by_video = ann.by_video()
    ious, shifts, reentering, targets_seen = [], [], 0, 0
    counts = {(who, linker): [0, 0] for who in ("products", "targets") for linker in LINKERS}
    predictions = {linker: [] for linker in (*LINKERS, *CLIP_LINKERS)}
    for video in ann.videos:
        objects = by_video[video.id]
        targets = [o for o in objects if o.get("role", "target") == "target"]
        for o in targets:
            present = "".join("#" if m else "." for m in o["segmentations"]).strip(".")
            reentering += "." in present
        targets_seen += len(targets)
        for o in objects:
            for a, b in itertools.pairwise(o["segmentations"]):
                if a and b:
                    ious.append(float(mask_utils.iou([a], [b], [0])[0, 0]))
                    (xa, ya, side), (xb, yb, _) = (
                        centroid(m, video.height, video.width) for m in (a, b)
                    )
                    shifts.append(float(np.hypot(xb - xa, yb - ya)) / side)
        for linker in LINKERS:
            for who, group in (("products", objects), ("targets", targets)):
                right, total = link_accuracy(group, video, linker)
                counts[who, linker][0] += right
                counts[who, linker][1] += total
            predictions[linker] += linked_tracks(targets, video, linker)
        for linker in CLIP_LINKERS:
            predictions[linker] += clip_tracks(
                targets, video, clip_len, linker.removeprefix("clips_")
            )
    truth = replace(
        ann, annotations=[o for o in ann.annotations if o.get("role", "target") == "target"]
    )
    linked = {}
    for linker in (*LINKERS, *CLIP_LINKERS):
        metrics = evaluate(truth, predictions[linker]).metrics
        linked[linker] = {
            "tracks": len(predictions[linker]),
            **{k: round(metrics[k], 4) for k in ("AP", "AP50", "AP75", "AR10")},
        }
    return {
        "objects": len(ann.annotations),
        "targets": targets_seen,
        "targets_reentering": round(reentering / max(targets_seen, 1), 4),
        "iou": quantiles(ious),
        "shift": quantiles(shifts),
        "links": {
            f"{who}_{linker}": round(right / max(total, 1), 4)
            for (who, linker), (right, total) in counts.items()
        },
        "linked": linked,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("annotations", type=Path, help="an *_all.json file (every product)")
    parser.add_argument(
        "--clip-len", type=int, default=PRESETS["tiny"].model.num_frames, help="T of the clips"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/object_motion.json"))
    args = parser.parse_args()
    meta = provenance({"annotations": str(args.annotations), "clip_len": args.clip_len})
    result = {**motion(args.annotations, args.clip_len), "meta": finish(meta)}
    print(json.dumps({k: v for k, v in result.items() if k != "meta"}, indent=1))
    write_json(args.out, result, indent=1)


if __name__ == "__main__":
    main()
