"""Model outputs -> scored mask sequences at the original video size (docs/design.md#output).

A proposal's score is the mean over the clip's real frames (not those repeated to fill a
short video) of prob(relevant). With `score_mask` (a deviation) the score is multiplied by
the proposal's mean mask probability over its pixels that are on (SOLO's "maskness",
Mask2Former's mask score): a confident, compact mask outranks a faint one of the same class
probability. Its masks are the logits bilinearly resized to the original frame size, as the
criterion resizes them to the input size in training, then sigmoid > `mask_threshold`,
computed as logit > logit(`mask_threshold`) (one comparison per pixel instead of a sigmoid
and a comparison).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from vois_cli.config import ModelConfig
from vois_cli.models.matcher import RELEVANT, as_sequences


class PostProcess:
    """Keep proposals scored above `score_threshold` with a mask in some frame, best first."""

    def __init__(self, cfg: ModelConfig):
        self.score_threshold = cfg.score_threshold
        self.logit_threshold = _logit(cfg.mask_threshold)
        self.mask_weighted = cfg.score_mask

    @torch.no_grad()
    def __call__(
        self, outputs: dict, num_frames: list[int], sizes: list[tuple[int, int]]
    ) -> list[list[dict]]:
        """outputs: pred_logits (B, n·T, 2), pred_masks (B, n, T, h, w); num_frames[b] real
        frames (the first ones) of clip b; sizes[b] its original (height, width).

        Returns per clip a list of {"score": float, "masks": bool ndarray (T_real, height,
        width)}, sorted by score descending (ties keep proposal order).
        """
        masks = outputs["pred_masks"]
        prob = as_sequences(outputs["pred_logits"].float(), masks.shape[1]).softmax(-1)
        results = []
        for b, (frames, size) in enumerate(zip(num_frames, sizes, strict=True)):
            scores = prob[b, :, :frames, RELEVANT].mean(1)  # (n,)
            if self.mask_weighted:
                scores = scores * mask_score(masks[b, :, :frames], self.logit_threshold)
            order = torch.sort(scores, descending=True, stable=True).indices
            kept = order[scores[order] > self.score_threshold]
            if len(kept) == 0:
                results.append([])
                continue
            # sigmoid(x) > t is x > logit(t)
            logits = masks[b, kept, :frames].float()  # (k, T_real, h, w)
            binary = binary_masks(logits, tuple(size), self.logit_threshold)
            results.append(
                [
                    {"score": scores[j].item(), "masks": m}
                    for j, m in zip(kept.tolist(), binary, strict=True)
                    if m.any()
                ]
            )
        return results


def binary_masks(logits: torch.Tensor, size: tuple[int, int], threshold: float) -> np.ndarray:
    """logits (k, T, h, w) -> bool ndarray (k, T, *size): bilinear resize, then > threshold.

    On the CPU one (proposal, frame) plane at a time, so that each resized plane is compared
    while it is still in cache: half the time of one batched call, with the same values
    (the resize treats every plane on its own either way). On a GPU one batched call.
    """
    if logits.device.type != "cpu":
        resized = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return (resized > threshold).cpu().numpy()
    binary = torch.empty((*logits.shape[:2], *size), dtype=torch.bool)
    for plane, out in zip(logits.flatten(0, 1), binary.flatten(0, 1), strict=True):
        resized = F.interpolate(plane[None, None], size=size, mode="bilinear", align_corners=False)
        torch.gt(resized[0, 0], threshold, out=out)
    return binary.numpy()


def _logit(p: float) -> float:
    """log(p / (1 - p)), ±inf at and beyond 0 and 1 (no pixel / every pixel passes)."""
    if p <= 0 or p >= 1:
        return math.copysign(math.inf, p - 0.5)
    return math.log(p / (1 - p))


def mask_score(mask_logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """mask_logits (n, T, h, w) -> (n,): each proposal's mean probability over its pixels whose
    logit is above `threshold`, 0 for a proposal with none."""
    logits = mask_logits.float().flatten(1)
    on = logits > threshold
    return (logits.sigmoid() * on).sum(1) / on.sum(1).clamp(min=1)
