"""benchmarks/mask_ceiling.py: ground truth through a preset's grids, scored as predictions."""

import mask_ceiling
import numpy as np

from vois_cli.data.ytvis import Annotations, Video, encode_rle


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


def test_at_stride_4_both_objects_are_found_at_stride_32_only_the_large_one():
    frames = 3
    videos = [
        Video(i, name, 64, 64, frames, [f"{name}/{f:05d}.jpg" for f in range(frames)])
        for i, name in ((1, "a"), (2, "b"))
    ]
    objects = ((1, _square(64, 0, 64)), (2, _square(64, 28, 8)))  # full frame, 8 × 8 dot
    annotations = Annotations(
        videos,
        [
            {
                "id": vid,
                "video_id": vid,
                "category_id": 1,
                "iscrowd": 0,
                "segmentations": [encode_rle(mask)] * frames,
                "areas": [int(mask.sum())] * frames,
                "bboxes": [None] * frames,
            }
            for vid, mask in objects
        ],
    )
    fine = mask_ceiling.ceiling(annotations, 64, 64, 4)
    assert fine["input"] == [64, 64]
    assert fine["AP50"] == 1.0 and fine["frame_iou"] > 0.7  # the dot: 2 × 2 cells at stride 4
    coarse = mask_ceiling.ceiling(annotations, 64, 64, 32)
    assert coarse["AR10"] == 0.5  # the full-frame object is still found, the dot never
