"""benchmarks/mask_ceiling.py: ground truth through a preset's grids, scored as predictions."""

import importlib.util
import json
from pathlib import Path

import numpy as np

from vois_cli.data.ytvis import encode_rle, load_annotations

SPEC = importlib.util.spec_from_file_location(
    "mask_ceiling", Path(__file__).resolve().parents[1] / "benchmarks" / "mask_ceiling.py"
)
mask_ceiling = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(mask_ceiling)


def _square(size: int, top: int, side: int) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[top : top + side, top : top + side] = True
    return mask


def test_a_grid_aligned_square_survives_and_a_dot_vanishes_at_stride_32():
    square = _square(64, 16, 32)
    assert (mask_ceiling.round_trip(square, (64, 64), 1) == square).all()
    blurred = mask_ceiling.round_trip(square, (64, 64), 16)
    assert blurred[20:44, 20:44].all() and not blurred[:12].any()
    assert not mask_ceiling.round_trip(_square(64, 30, 4), (64, 64), 32).any()


def test_at_stride_4_both_objects_are_found_at_stride_32_only_the_large_one(tmp_path):
    frames = 3
    big, dot = encode_rle(_square(64, 0, 64)), encode_rle(_square(64, 28, 8))
    extra = {"iscrowd": 0, "bboxes": [None] * frames}
    gt = {
        "videos": [
            {
                "id": 1,
                "name": "a",
                "width": 64,
                "height": 64,
                "length": frames,
                "file_names": [f"a/{i:05d}.jpg" for i in range(frames)],
            },
            {
                "id": 2,
                "name": "b",
                "width": 64,
                "height": 64,
                "length": frames,
                "file_names": [f"b/{i:05d}.jpg" for i in range(frames)],
            },
        ],
        "annotations": [
            {
                "id": 1,
                "video_id": 1,
                "category_id": 1,
                "segmentations": [big] * frames,
                "areas": [64 * 64] * frames,
                **extra,
            },
            {
                "id": 2,
                "video_id": 2,
                "category_id": 1,
                "segmentations": [dot] * frames,
                "areas": [8 * 8] * frames,
                **extra,
            },
        ],
        "categories": [{"id": 1, "name": "relevant"}],
    }
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    annotations = load_annotations(path)
    fine = mask_ceiling.ceiling(annotations, 64, 64, 4)
    assert fine["input"] == [64, 64]
    assert fine["AP50"] == 1.0 and fine["frame_iou"] > 0.7  # the dot: 2 × 2 cells at stride 4
    coarse = mask_ceiling.ceiling(annotations, 64, 64, 32)
    assert coarse["AR10"] == 0.5  # the full-frame object is still found, the dot never
