"""Dot-product masks (MaskFormer / Mask2Former), a lighter alternative to VisTR's mask head.

A small FPN turns the memory E and the backbone's stride-16, 8 and 4 features into one
per-pixel embedding map per frame at stride 4; each query's mask in its own frame is the dot
product of an MLP of the query with that frame's embeddings. Every pixel and every proposal
shares the same decoder, so the head costs one FPN per frame instead of VisTR's per-proposal
2D and 3D convolutions, and the query alone says which object its mask is: from scratch it
learns in far fewer steps than the VisTR head (docs/training-notes.md).

With two-stage queries, whose boxes follow their objects, a proposal's mask is cut to its box
grown by WINDOW_MARGIN on each side: the dot products alone give every proposal of a frame
the same foreground of all products after a short schedule. The box itself, with no margin,
gives the best masks (docs/training-notes.md: frame IoU 0.45, against 0.43 at 10 % and
0.40 at 25 %).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor, nn
from torchvision.ops import box_convert, masks_to_boxes

from vois_cli.config import ModelConfig
from vois_cli.models.mask_head import box_windows
from vois_cli.models.mlp import MLP

# 8-connectivity inside each (h, w) plane of a (P, h, w) stack, none across planes
WITHIN_A_MASK = np.zeros((3, 3, 3), dtype=bool)
WITHIN_A_MASK[1] = True

GROUPS = 8  # GroupNorm groups of the FPN blocks
WINDOW_MARGIN = 0.0  # a two-stage proposal's mask may reach this far past its box
OUTSIDE = -20.0  # mask logit outside the window


def _block(width: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(width, width, 3, padding=1), nn.GroupNorm(GROUPS, width), nn.ReLU()
    )


class FPNMaskHead(nn.Module):
    """The pixel side shared by the query-driven mask heads: a small FPN from the memory E and
    the stride-16, 8 and 4 features to one map per frame at stride 4, and the cut to the box.

    With two-stage queries the masks are cut to each proposal's box at inference; in training
    too unless `mask_cut_training` is off (then the mask itself must learn where its instance
    ends, which the box otherwise decides). With `mask_boxes`, the box of each proposal is
    read from its uncut mask at inference first (`mask_extent_boxes`)."""

    def __init__(self, cfg: ModelConfig, feature_channels: tuple[int, int, int] | list[int]):
        super().__init__()
        d, width = cfg.hidden_dim, cfg.mask_dim // 4
        self.lateral = nn.ModuleList(
            nn.Conv2d(c, width, 1) for c in (d, *reversed(tuple(feature_channels)))
        )
        self.smooth = nn.ModuleList(_block(width) for _ in self.lateral)
        self.windowed = cfg.two_stage
        self.cut_training = cfg.mask_cut_training
        self.mask_boxes = cfg.mask_boxes

    def pixel_features(self, memory: Tensor, features: list[Tensor]) -> Tensor:
        """memory E (B, T, h, w, d), features [f1, f2, f3] channels-last (B, T, h_s, w_s, C_s)
        at strides 4, 8, 16 -> (B·T, mask_dim / 4, h_1, w_1) at stride 4."""
        x = None
        for level, f in enumerate([memory, *reversed(features)]):
            lat = self.lateral[level](f.flatten(0, 1).permute(0, 3, 1, 2))  # (BT, width, ., .)
            if x is not None:
                lat = lat + F.interpolate(x, size=lat.shape[-2:], mode="nearest")
            x = self.smooth[level](lat)
        return x

    def forward(
        self,
        hs: Tensor,
        memory: Tensor,
        pos: Tensor,
        features: list[Tensor],
        boxes: Tensor | None = None,
    ) -> Tensor:
        """hs (B, T, n, d) last decoder layer; memory E (B, T, h, w, d); features [f1, f2, f3]
        channels-last (B, T, h_s, w_s, C_s) at strides 4, 8, 16 -> mask logits
        (B, n, T, h_1, w_1); with two-stage queries `boxes` (B, n, T, 4) cxcywh cut each
        proposal's masks to its window. `pos` is unused (the VisTR head's signature)."""
        pixels = self.pixel_features(memory, features)
        masks = self.masks(hs, pixels, boxes)
        if self.mask_boxes and self.windowed and not self.training:
            boxes = mask_extent_boxes(masks, boxes.detach())
            masks = self.masks(hs, pixels, boxes)
        return self.cut(masks, boxes)

    def masks(self, hs: Tensor, pixels: Tensor, boxes: Tensor | None) -> Tensor:
        """hs (B, T, n, d), pixels (B·T, mask_dim / 4, h_1, w_1), boxes (B, n, T, 4) ->
        uncut mask logits (B, n, T, h_1, w_1)."""
        raise NotImplementedError

    def cut(self, logits: Tensor, boxes: Tensor | None) -> Tensor:
        """logits (B, n, T, h_1, w_1) set to OUTSIDE beyond each proposal's box (B, n, T, 4)."""
        if not self.windowed or (self.training and not self.cut_training):
            return logits
        window = box_windows(boxes.detach(), *logits.shape[-2:], margin=WINDOW_MARGIN)
        return torch.where(window.bool(), logits, torch.full_like(logits, OUTSIDE))


@torch.no_grad()
def mask_extent_boxes(logits: Tensor, boxes: Tensor) -> Tensor:
    """logits (..., h, w), boxes (..., 4) cxcywh -> each mask's box: the extent of the cells
    with logit > 0 connected (8-neighbours) to the cell under the box centre, or the box
    unchanged where that cell is off. The components come from scipy's labelling of every
    mask at once on the CPU (a flood fill by repeated 3 × 3 max pooling gave the same cells
    in 22 ms a `tiny` clip against 0.6)."""
    h, w = logits.shape[-2:]
    on = (logits > 0).flatten(0, -3)  # (P, h, w)
    flat = boxes.reshape(-1, 4)
    x = (flat[:, 0] * w).long().clamp(0, w - 1)
    y = (flat[:, 1] * h).long().clamp(0, h - 1)
    labels = torch.from_numpy(ndimage.label(on.cpu().numpy(), WITHIN_A_MASK)[0]).to(on.device)
    seed = labels[torch.arange(len(flat), device=on.device), y, x]  # 0 where the cell is off
    found = seed > 0
    region = (labels == seed[:, None, None]) & found[:, None, None]
    read = flat.clone()
    if found.any():
        # masks_to_boxes gives the last cell's index as x1, y1: one more makes the extent
        xyxy = masks_to_boxes(region[found])
        xyxy[:, 2:] += 1
        scale = torch.tensor([w, h, w, h], dtype=xyxy.dtype, device=flat.device)
        read[found] = box_convert(xyxy / scale, "xyxy", "cxcywh").to(flat.dtype)
    return read.view_as(boxes)


class DotMaskHead(FPNMaskHead):
    """Mask logits = MLP(query) · pixel embedding of the query's frame, at stride 4."""

    def __init__(self, cfg: ModelConfig, feature_channels: tuple[int, int, int] | list[int]):
        super().__init__(cfg, feature_channels)
        width = cfg.mask_dim // 4
        self.pixel = nn.Conv2d(width, width, 1)
        self.query = MLP(cfg.hidden_dim, cfg.hidden_dim, width, 3)

    def masks(self, hs: Tensor, pixels: Tensor, boxes: Tensor | None) -> Tensor:
        pixels = self.pixel(pixels).unflatten(0, hs.shape[:2])  # (B, T, width, h_1, w_1)
        return torch.einsum("btnc,btchw->bnthw", self.query(hs), pixels)
