"""Clip planning and cross-clip linking: one id per object through a video of any length.

The model sees T frames at a time. A longer video is cut into T-frame clips that overlap by
`overlap` frames; each clip's object proposals are linked to the running tracks in two steps:

1. **Overlap.** Hungarian matching (scipy) between the tracks of the previous clip and the new
   proposals on mask IoU summed over the shared frames (Σ|P∩Q| / Σ|P∪Q|, as YouTube-VIS scores
   a sequence); a pair links when its IoU ≥ `iou_threshold`.
2. **Re-entry.** A proposal left unmatched is compared with the tracks that were last seen
   at most `reentry_window` frames before the proposal first appears (default 25 frames = 5 s
   at 5 fps) and are not visible at the same time. The cost is the distance between the
   centroid of the track's last mask and that of the proposal's first mask, as a fraction of
   the frame diagonal; Hungarian again, linked when ≤ `reentry_distance`. Instances of one
   product look alike, so position, not appearance, tells them apart.

Anything else starts a new track. Ids count up from 1 in order of first appearance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class Clip:
    """One model call: `frames` are video frame indices (length T), `own` the frames it decides.

    Each frame is decided by the first clip that contains it, so clip k owns the frames after
    the previous clip's end. A video shorter than T repeats its frames cyclically (VisTR).
    """

    frames: tuple[int, ...]
    own: range


def default_overlap(clip_len: int) -> int:
    """Frames shared by consecutive clips (stride T − overlap): about an eighth of the clip, at
    least 2 but at most a quarter of it, and at least 1: 1 at T = 4, 2 at T = 8, 4 at T = 36.
    At T = 4 an overlap of 2 linked worse than 1 and costs 1.5× the model calls
    (docs/training-notes.md, sessions 44 and 45)."""
    return max(1, min(clip_len // 4, max(2, clip_len // 8)))


def plan_clips(num_frames: int, clip_len: int, overlap: int) -> list[Clip]:
    """Clips covering `num_frames` frames: starts 0, S, 2S, … with S = clip_len − overlap.

    When the last regular clip stops short of the end, a final clip covers the last
    `clip_len` frames (so it overlaps its predecessor by more than `overlap`).
    """
    if num_frames < 1:
        raise ValueError("a video needs at least one frame")
    if not 0 <= overlap < clip_len:
        raise ValueError(f"overlap must be in [0, {clip_len}), got {overlap}")
    if num_frames <= clip_len:
        frames = tuple(i % num_frames for i in range(clip_len))
        return [Clip(frames, range(num_frames))]
    clips, start, end = [], 0, 0
    while start + clip_len <= num_frames:
        clips.append(Clip(tuple(range(start, start + clip_len)), range(end, start + clip_len)))
        end = start + clip_len
        start += clip_len - overlap
    if end < num_frames:
        start = num_frames - clip_len
        clips.append(Clip(tuple(range(start, num_frames)), range(end, num_frames)))
    return clips


@dataclass
class _Track:
    last_frame: int  # last frame with a non-empty mask
    centroid: tuple[float, float]  # (y, x) of that mask


class TrackLinker:
    """Assigns a track id to each clip's proposals; state is bounded by the tracks alive."""

    def __init__(
        self,
        iou_threshold: float = 0.5,
        reentry_window: int = 25,
        reentry_distance: float = 0.5,
    ):
        self.iou_threshold = iou_threshold
        self.reentry_window = reentry_window
        self.reentry_distance = reentry_distance
        self._next_id = 1
        self._tracks: dict[int, _Track] = {}
        self._previous: tuple[tuple[int, ...], list[int], list[np.ndarray]] | None = None

    def link(self, frames: tuple[int, ...], masks: list[np.ndarray]) -> list[int]:
        """Track ids for one clip's proposals, each `masks[j]` bool (len(frames), h, w).

        `frames` are distinct, increasing video frame indices (a cyclic short clip is cut
        back to its real frames before linking).
        """
        ids: list[int | None] = [None] * len(masks)
        visible = [np.flatnonzero(m.reshape(len(frames), -1).any(1)) for m in masks]
        if self._previous is not None:
            self._link_overlap(frames, masks, ids)
        self._link_reentry(frames, masks, visible, ids)
        for j, track_id in enumerate(ids):
            if track_id is None:
                ids[j] = self._next_id
                self._next_id += 1
        for track_id, m, v in zip(ids, masks, visible, strict=True):
            if len(v):
                last = int(v[-1])
                self._tracks[track_id] = _Track(frames[last], _centroid(m[last]))
        self._previous = (frames, list(ids), masks)
        return list(ids)

    def expired(self, frame: int) -> list[int]:
        """Forget and return the tracks that can no longer re-enter at `frame` or later."""
        active = set(self._previous[1]) if self._previous else set()
        gone = [
            i
            for i, t in self._tracks.items()
            if frame - t.last_frame > self.reentry_window and i not in active
        ]
        for i in gone:
            del self._tracks[i]
        return gone

    def _link_overlap(self, frames, masks, ids) -> None:
        prev_frames, prev_ids, prev_masks = self._previous
        shared = sorted(set(prev_frames) & set(frames))
        if not shared or not masks or not prev_masks:
            return
        at_prev = [prev_frames.index(f) for f in shared]
        at_new = [frames.index(f) for f in shared]
        iou = sequence_iou(
            np.stack([m[at_prev] for m in prev_masks]), np.stack([m[at_new] for m in masks])
        )
        rows, cols = linear_sum_assignment(-iou)
        for r, c in zip(rows, cols, strict=True):
            if iou[r, c] >= self.iou_threshold:
                ids[c] = prev_ids[r]

    def _link_reentry(self, frames, masks, visible, ids) -> None:
        taken = {i for i in ids if i is not None}
        new = [j for j, v in enumerate(visible) if ids[j] is None and len(v)]
        first = [int(visible[j][0]) for j in new]
        lost = [i for i in self._tracks if i not in taken]
        if not new or not lost:
            return
        h, w = masks[0].shape[1:]
        diagonal = math.hypot(h, w)
        centroids = [_centroid(masks[j][f]) for j, f in zip(new, first, strict=True)]
        cost = np.full((len(lost), len(new)), np.inf)
        for r, i in enumerate(lost):
            t = self._tracks[i]
            for c, (f, (y, x)) in enumerate(zip(first, centroids, strict=True)):
                gap = frames[f] - t.last_frame
                if 0 < gap <= self.reentry_window:
                    cost[r, c] = math.hypot(y - t.centroid[0], x - t.centroid[1]) / diagonal
        cost = np.where(np.isfinite(cost), cost, 1e9)
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols, strict=True):
            if cost[r, c] <= self.reentry_distance:
                ids[new[c]] = lost[r]


def sequence_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU over frames between mask sequences a (P, F, h, w) and b (Q, F, h, w) → (P, Q).

    Σ_f |a∩b| / Σ_f |a∪b| in float32 from exact pixel counts; two sequences empty in every
    frame have IoU 0. Counting each pair's common pixels costs P·Q passes over the bits but
    holds no float copy of the masks (P, Q ≤ a few tens).
    """
    fa, fb = a.reshape(len(a), -1), b.reshape(len(b), -1)
    inter = np.array([[np.count_nonzero(p & q) for q in fb] for p in fa], np.int64)
    inter = inter.reshape(len(a), len(b))
    union = np.count_nonzero(fa, 1)[:, None] + np.count_nonzero(fb, 1)[None, :] - inter
    inter, union = inter.astype(np.float32), union.astype(np.float32)
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _centroid(mask: np.ndarray) -> tuple[float, float]:
    """(y, x) mean of the pixel coordinates of a non-empty bool mask (h, w).

    From row and column counts: the integer sums are exact, so the means equal those of
    `np.nonzero`'s coordinates to the last bit, without listing every pixel.
    """
    pixels = mask.view(np.uint8)
    rows, cols = pixels.sum(1, dtype=np.int64), pixels.sum(0, dtype=np.int64)
    area = int(rows.sum())
    return int(rows @ np.arange(len(rows))) / area, int(cols @ np.arange(len(cols))) / area
