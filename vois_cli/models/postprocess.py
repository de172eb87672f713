"""Model outputs -> scored mask sequences at the original video size (docs/design.md#output).

A proposal's score is the mean over the clip's real frames (not those repeated to fill a
short video) of prob(relevant). Its masks are the logits bilinearly resized to the original
frame size, as the criterion resizes them to the input size in training, then
sigmoid > `mask_threshold`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vois_cli.config import ModelConfig
from vois_cli.models.matcher import RELEVANT, as_sequences


class PostProcess:
    """Keep proposals scored above `score_threshold` with a mask in some frame, best first."""

    def __init__(self, cfg: ModelConfig):
        self.score_threshold = cfg.score_threshold
        self.mask_threshold = cfg.mask_threshold

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
            order = torch.sort(scores, descending=True, stable=True).indices
            kept = []
            for j in order[scores[order] > self.score_threshold].tolist():
                logits = masks[b, j, :frames].float()[None]  # (1, T_real, h, w)
                resized = F.interpolate(
                    logits, size=tuple(size), mode="bilinear", align_corners=False
                )
                binary = resized[0].sigmoid() > self.mask_threshold  # (T_real, height, width)
                if binary.any():
                    kept.append({"score": scores[j].item(), "masks": binary.cpu().numpy()})
            results.append(kept)
        return results
