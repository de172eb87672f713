"""How `vois infer` ranks the tracks of a video: each track's running score.

A track's score is its proposals' mean score over the frames it was linked in. The model's
score fields (deviations, each on in `tiny`; docs/training-notes.md) multiply it by:

- `score_coverage`: the share of the video's frames the track has a mask in, so that the
  pieces of a broken track rank below a whole one;
- `score_consistency`: the mean IoU of its masks in consecutive frames (0 without two
  consecutive masks), so that a track that jumps from object to object ranks below one that
  stays on its object;
- `score_shape`: the median over its masks of min / max of their elongation and the target
  product's (`vois_cli.silhouette`), so that a look-alike of another shape ranks low. It
  compares with the target, so it is part of the target path: not without `use_target`.

Then, over the video's final tracks, `track_soft_nms` takes the best track left, keeps its
score and scales every other one left by exp(−IoU² / σ) for their sequence IoU, until none is
left (Gaussian Soft-NMS, Bodla et al. 2017, over whole tracks): the duplicates of one object
rank below the other objects. And `score_agreement` multiplies each by 1 + the sum of its
sequence IoUs with the others: where several of the model's slots follow one object, it is
more often a target than where one does.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np
from pycocotools import mask as mask_utils

from vois_cli.config import ModelConfig
from vois_cli.data.ytvis import encode_rle
from vois_cli.evaluation import mask_areas, sequence_ious
from vois_cli.silhouette import elongation, product_elongation


@dataclass
class Track:
    """One track as the stream builds it: its masks and the sums its score is made of."""

    segmentations: dict[int, dict] = field(default_factory=dict)  # frame -> RLE, visible only
    score_sum: float = 0.0
    frames: int = 0  # frames the score was averaged over
    links: int = 0  # pairs of consecutive frames it has masks in
    overlap: float = 0.0  # the sum of their masks' IoUs
    # one per mask with score_shape, kept sorted: the median is read at every decided frame
    shape_matches: list[float] = field(default_factory=list)


class TrackScorer:
    """The score fields of a model, for one target photo (uint8 RGB (H, W, 3))."""

    def __init__(self, model: ModelConfig, target: np.ndarray):
        self.coverage, self.consistency = model.score_coverage, model.score_consistency
        self._shape = product_elongation(target) if model.score_shape and model.use_target else None
        self.soft_nms, self.agreement = model.track_soft_nms, model.score_agreement

    def link(self, track: Track, score: float, frames: int) -> None:
        """A proposal of `score` joined `track` for `frames` decided frames."""
        track.score_sum += score * frames
        track.frames += frames

    def add(self, track: Track, frame: int, mask: np.ndarray) -> None:
        """The track's mask in `frame`, bool (H, W), decided after every earlier frame's."""
        rle = encode_rle(mask)
        previous = track.segmentations.get(frame - 1)
        if self.consistency and previous is not None:
            track.links += 1
            track.overlap += float(mask_utils.iou([rle], [previous], [False])[0, 0])
        if self._shape is not None:
            a, b = sorted((elongation(mask), self._shape))
            bisect.insort(track.shape_matches, a / b if b > 0 else 1.0)
        track.segmentations[frame] = rle

    def rank(self, track: Track) -> float:
        """The track's score up to a factor every track of the video shares (the video's
        length, with `coverage`)."""
        rank = track.score_sum / max(track.frames, 1)
        if self.coverage:
            rank *= len(track.segmentations)
        if self.consistency:
            rank *= track.overlap / track.links if track.links else 0.0
        if matches := track.shape_matches:
            half = len(matches) // 2
            rank *= matches[half] if len(matches) % 2 else (matches[half - 1] + matches[half]) / 2
        return rank

    def score(self, track: Track, frames: int) -> float:
        """The track's score over the video's first `frames` frames."""
        return self.rank(track) / (frames if self.coverage else 1)

    def final(self, tracks: list[Track], segments: list[list[dict | None]]) -> list[float]:
        """The scores of the video's tracks, the duplicates suppressed and the agreement
        counted; `segments[i]` is track i's RLE or None for every frame of the video."""
        frames = len(segments[0]) if segments else 0
        scores = np.array([self.score(t, frames) for t in tracks])
        if len(tracks) < 2 or (self.soft_nms <= 0 and not self.agreement):
            return scores.tolist()
        areas = mask_areas(segments, frames)
        ious = sequence_ious(segments, segments, areas, areas)  # the metric's own
        np.fill_diagonal(ious, 0.0)  # each with the others only
        left = np.full(len(tracks), self.soft_nms > 0)
        while left.any():  # the best track left keeps its score and lowers the others'
            best = int(np.flatnonzero(left)[np.argmax(scores[left])])
            left[best] = False
            scores[left] *= np.exp(-(ious[left, best] ** 2) / self.soft_nms)
        if self.agreement:
            scores *= 1 + ious.sum(1)
        return scores.tolist()
