"""What `vois infer` finds: per decided frame while a video streams, per object and per video
at its end (`vois_cli.inference`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vois_cli.data.ytvis import CATEGORY_ID, decode_rle


@dataclass(frozen=True)
class FrameResult:
    """One decided frame: its index, the decoded RGB image (H, W, 3) and the visible objects.

    `objects` = [(id, score, bool mask (H, W))] in id order; score is the track's running
    score over the frames decided so far (the final one, its duplicates suppressed, is in
    `VideoResult`).
    """

    index: int
    image: np.ndarray
    objects: list[tuple[int, float, np.ndarray]]


@dataclass(frozen=True)
class ObjectResult:
    """One object over the whole video: `segmentations[i]` is frame i's COCO RLE or None."""

    id: int
    score: float
    segmentations: list[dict | None]

    def masks(self, height: int, width: int) -> np.ndarray:
        """Decoded masks, bool (frames, H, W); fine for short videos only."""
        return np.stack([decode_rle(s, height, width) for s in self.segmentations])


@dataclass(frozen=True)
class VideoResult:
    """Every object found in a video, in id order (ids count up in order of appearance)."""

    fps: float
    num_frames: int
    height: int
    width: int
    objects: list[ObjectResult]

    def to_predictions(self, video_id: int) -> list[dict]:
        """YouTube-VIS results (docs/design.md#predictions-and-metrics); `track_id` is the id
        drawn on the overlay."""
        return [
            {
                "video_id": video_id,
                "category_id": CATEGORY_ID,
                "score": o.score,
                "segmentations": o.segmentations,
                "track_id": o.id,
            }
            for o in self.objects
        ]
