"""CondInst's dynamic masks (Tian et al. 2020): each query writes the weights of its own tiny
network over the pixels, which also see where they lie relative to the query's box.

The dot-product head scores every pixel with one linear function of the query, so all of a
frame's queries learn the same foreground of every product and only the cut to the box tells
instances apart (docs/training-notes.md). Here each query's mask is a 3-layer MLP of
DYNAMIC_WIDTH channels applied to every pixel, its weights and biases a linear function of the
query, and its input the FPN's map reduced to MASK_CHANNELS plus the pixel's offset from the
query's box centre in box widths and heights: the mask can say "this instance", not only
"a product here".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vois_cli.config import ModelConfig
from vois_cli.models.dot_mask_head import FPNMaskHead

MASK_CHANNELS = 8  # pixel features each dynamic network reads (besides the 2 offsets)
DYNAMIC_WIDTH = 8  # hidden width of the dynamic networks
MIN_BOX_SIDE = 0.05  # offsets are divided by the box side, at least this fraction of the frame
# (out, in) of each dynamic layer; ReLU between them
LAYERS = ((DYNAMIC_WIDTH, MASK_CHANNELS + 2), (DYNAMIC_WIDTH, DYNAMIC_WIDTH), (1, DYNAMIC_WIDTH))


class CondInstMaskHead(FPNMaskHead):
    """Mask logits = the query's own MLP over (pixel features, offset from its box centre)."""

    def __init__(self, cfg: ModelConfig, feature_channels: tuple[int, int, int] | list[int]):
        super().__init__(cfg, feature_channels)
        if not cfg.two_stage:
            raise ValueError("mask_head 'condinst' needs two_stage queries (their boxes)")
        self.reduce = nn.Conv2d(cfg.mask_dim // 4, MASK_CHANNELS, 1)
        self.params = nn.Linear(cfg.hidden_dim, sum(o * i + o for o, i in LAYERS))

    def masks(self, hs: Tensor, pixels: Tensor, boxes: Tensor | None) -> Tensor:
        b, t, n, _ = hs.shape
        pixels = self.reduce(pixels).unflatten(0, (b, t))
        h, w = pixels.shape[-2:]
        x = torch.cat(
            [
                pixels[:, :, None].expand(-1, -1, n, -1, -1, -1),
                box_offsets(boxes.detach().transpose(1, 2), h, w),
            ],
            3,
        ).flatten(4)  # (B, T, n, MASK_CHANNELS + 2, h·w)
        params = self.params(hs).split([s for o, i in LAYERS for s in (o * i, o)], -1)
        for layer, (o, i) in enumerate(LAYERS):
            weight = params[2 * layer].unflatten(-1, (o, i))
            x = torch.einsum("btnoi,btnip->btnop", weight, x) + params[2 * layer + 1][..., None]
            if layer < len(LAYERS) - 1:
                x = F.relu(x)
        return x[:, :, :, 0].unflatten(-1, (h, w)).transpose(1, 2)  # (B, n, T, h, w)


def box_offsets(boxes: Tensor, h: int, w: int) -> Tensor:
    """(..., 4) cxcywh boxes -> (..., 2, h, w): each cell centre's (x, y) offset from the box
    centre in units of the box's width and height (at least MIN_BOX_SIDE)."""
    ys = (torch.arange(h, device=boxes.device) + 0.5) / h
    xs = (torch.arange(w, device=boxes.device) + 0.5) / w
    dx = (xs - boxes[..., 0:1]) / boxes[..., 2:3].clamp(min=MIN_BOX_SIDE)  # (..., w)
    dy = (ys - boxes[..., 1:2]) / boxes[..., 3:4].clamp(min=MIN_BOX_SIDE)  # (..., h)
    return torch.stack(
        [
            dx[..., None, :].expand(*dx.shape[:-1], h, w),
            dy[..., :, None].expand(*dy.shape[:-1], h, w),
        ],
        -3,
    )
