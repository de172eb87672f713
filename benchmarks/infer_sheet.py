"""A picture of `vois infer` on one benchmark video: the target, some frames, the true target
instances and the objects the model draws (the README's figure).

    python3 benchmarks/infer_sheet.py runs/train/last.pt clip00058 docs/infer.png \
        [--root data/synthlive] [--split test] [--columns 5] [--threshold 0.25]

Rows: the frames as decoded; the target instances of the split's annotations (look-alikes and
clutter are left unmarked); what `vois infer --overlay` draws in those frames: the objects
whose track's running score reaches `--threshold` (the overlay's default), each track in its
own colour. The figure shows one video; say which when you publish it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from vois_cli.atomic import atomic_path
from vois_cli.data.contact_sheet import contact_sheet, spread_frames
from vois_cli.data.ytvis import decode_rle, load_annotations
from vois_cli.inference import Predictor
from vois_cli.overlay import SHOW_THRESHOLD
from vois_cli.results import FrameResult


def infer_sheet(
    checkpoint: Path, root: Path, split: str, name: str, columns: int, threshold: float
) -> np.ndarray:
    """The sheet of video `name` of `split`, (H, W, 3) uint8 (see `contact_sheet`)."""
    ann = load_annotations(root / "annotations" / f"{split}.json", require_targets=True)
    video = next((v for v in ann.videos if v.name == name), None)
    if video is None:
        print(
            f"infer_sheet: error: {root}: no video {name!r} in {split}.json; name one",
            file=sys.stderr,
        )
        sys.exit(2)
    picks = spread_frames(video.length, columns)
    images, shown = {}, {}

    def keep(frame: FrameResult) -> None:  # as the overlay draws it (`overlay.FrameWriter`)
        if frame.index in picks:
            images[frame.index] = frame.image
            shown[frame.index] = {i: mask for i, score, mask in frame.objects if score >= threshold}

    Predictor.from_checkpoint(checkpoint, "cpu").predict(
        root / "videos" / f"{video.name}.mp4", root / video.target, on_frame=keep
    )
    instances = ann.by_video()[video.id]
    tracks = sorted({i for objects in shown.values() for i in objects})  # a colour each
    frames, truth, drawn = [images[i] for i in picks], [], []
    for i in picks:
        truth.append(
            [decode_rle(o["segmentations"][i], video.height, video.width) for o in instances]
        )
        drawn.append([shown[i].get(t) for t in tracks])
    target = np.asarray(Image.open(root / video.target).convert("RGB"))
    return contact_sheet(target, frames, {"target instances": truth, "vois infer": drawn}, picks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("video", help="a video name of the split, e.g. clip00058")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--root", type=Path, default=Path("data/synthlive"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--columns", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=SHOW_THRESHOLD)
    args = parser.parse_args()
    sheet = infer_sheet(
        args.checkpoint, args.root, args.split, args.video, args.columns, args.threshold
    )
    with atomic_path(args.out) as tmp:
        Image.fromarray(sheet).save(tmp, format="PNG")


if __name__ == "__main__":
    main()
