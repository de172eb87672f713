"""Target-similarity maps: an explicit comparison of every video token with the target.

The Cross Transformer block's softmax over target tokens always returns a convex mix of the
target's values, whatever the match, so a token on a look-alike and one on the target get
nearly the same addition. Siamese trackers (SiamFC), exemplar counters (FamNet, SAFECount)
and OWL-ViT compare explicitly instead. Here each stage's video tokens and target tokens are
projected to a small metric space; the cosine of a video token with its best-matching target
token, and with the mean of its k best, are two channels that say "the target is here" and
can also say "nothing here matches".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TOP_FRACTION = 0.125  # the second channel averages the best eighth of the target's tokens
CHANNELS = 2  # max and top-k mean
# the target's token map is average-pooled to at most this many tokens a side: at stride 4
# (stage 1) a 128-px target has 32 x 32 tokens, and comparing every video token with all of
# them took three times the model's training step
MAX_TARGET_SIDE = 16


class TargetSimilarity(nn.Module):
    """Cosine similarity of video tokens with target tokens in a learned `dim`-wide space."""

    def __init__(self, channels: int, dim: int):
        super().__init__()
        self.video = nn.Linear(channels, dim)
        self.image = nn.Linear(channels, dim)

    def forward(self, x: Tensor, g: Tensor) -> Tensor:
        """x (B, T, h, w, C) video tokens, g (B, h_I, w_I, C) target tokens -> (B, T, h, w, 2):
        the best and the top-k mean cosine over the target's tokens (pooled to at most
        MAX_TARGET_SIDE a side)."""
        if max(g.shape[1:3]) > MAX_TARGET_SIDE:
            side = (min(g.shape[1], MAX_TARGET_SIDE), min(g.shape[2], MAX_TARGET_SIDE))
            g = F.adaptive_avg_pool2d(g.permute(0, 3, 1, 2), side).permute(0, 2, 3, 1)
        q = F.normalize(self.video(x), dim=-1).flatten(1, 3)  # (B, T·h·w, D)
        k = F.normalize(self.image(g), dim=-1).flatten(1, 2)  # (B, M, D)
        cos = q @ k.transpose(1, 2)  # (B, T·h·w, M)
        top = max(1, round(TOP_FRACTION * cos.shape[-1]))
        best = cos.topk(top, dim=-1).values
        return torch.stack([best[..., 0], best.mean(-1)], -1).view(*x.shape[:4], CHANNELS)
