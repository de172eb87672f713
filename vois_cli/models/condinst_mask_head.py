"""CondInst's dynamic masks (Tian et al. 2020): each query writes the weights of its own tiny
network over the pixels, which also see where they lie relative to the query's box.

A dot-product head (MaskFormer: one linear function of the query scores every pixel) made all
of a frame's queries learn the same foreground of every product, so that only the cut to the
box told instances apart (docs/training-notes.md, sessions 7-10). Here each query's mask is a
3-layer MLP of DYNAMIC_WIDTH channels applied to every pixel, its weights and biases a linear
function of the query, and its input the FPN's map reduced to MASK_CHANNELS plus the pixel's
offset from the query's box centre in box widths and heights: the mask can say "this
instance", not only "a product here".
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

MASK_CHANNELS = 8  # pixel features each dynamic network reads (besides the 2 offsets)
DYNAMIC_WIDTH = 8  # hidden width of the dynamic networks
MIN_BOX_SIDE = 0.05  # offsets are divided by the box side, at least this fraction of the frame
# (out, in) of each dynamic layer; ReLU between them
LAYERS = ((DYNAMIC_WIDTH, MASK_CHANNELS + 2), (DYNAMIC_WIDTH, DYNAMIC_WIDTH), (1, DYNAMIC_WIDTH))

# 8-connectivity inside each (h, w) plane of a (P, h, w) stack, none across planes
WITHIN_A_MASK = np.zeros((3, 3, 3), dtype=bool)
WITHIN_A_MASK[1] = True

GROUPS = 8  # GroupNorm groups of the FPN blocks
OUTSIDE = -20.0  # mask logit outside the window


def _block(width: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(width, width, 3, padding=1), nn.GroupNorm(GROUPS, width), nn.ReLU()
    )


class CondInstMaskHead(nn.Module):
    """Mask logits = the query's own MLP over (pixel features, offset from its box centre).

    The pixel side is a small FPN from the memory E and the stride-16, 8 and 4 features to one
    map per frame at stride 4. The masks are cut to each proposal's box at inference; in
    training too unless `mask_cut_training` is off (then the mask itself must learn where its
    instance ends, which the box otherwise decides). With `mask_boxes`, the box of each
    proposal is read from its uncut mask at inference first (`mask_extent_boxes`)."""

    def __init__(self, cfg: ModelConfig, feature_channels: tuple[int, int, int] | list[int]):
        if not cfg.two_stage:
            raise ValueError("mask_head 'condinst' needs two_stage queries (their boxes)")
        super().__init__()
        d, width = cfg.hidden_dim, cfg.mask_dim // 4
        self.lateral = nn.ModuleList(
            nn.Conv2d(c, width, 1) for c in (d, *reversed(tuple(feature_channels)))
        )
        self.smooth = nn.ModuleList(_block(width) for _ in self.lateral)
        self.cut_training = cfg.mask_cut_training
        self.mask_boxes = cfg.mask_boxes
        self.reduce = nn.Conv2d(width, MASK_CHANNELS, 1)
        self.params = nn.Linear(d, sum(o * i + o for o, i in LAYERS))

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
        boxes: Tensor,
    ) -> Tensor:
        """hs (B, T, n, d) last decoder layer; memory E (B, T, h, w, d); features [f1, f2, f3]
        channels-last (B, T, h_s, w_s, C_s) at strides 4, 8, 16 -> mask logits
        (B, n, T, h_1, w_1), each proposal's masks cut to its two-stage box (B, n, T, 4) cxcywh.
        `pos` is unused (the VisTR head's signature)."""
        pixels = self.pixel_features(memory, features)
        masks = self.masks(hs, pixels, boxes)
        if self.mask_boxes and not self.training:
            boxes = mask_extent_boxes(masks, boxes.detach())
            masks = self.masks(hs, pixels, boxes)
        return self.cut(masks, boxes)

    def masks(self, hs: Tensor, pixels: Tensor, boxes: Tensor) -> Tensor:
        """hs (B, T, n, d), pixels (B·T, mask_dim / 4, h_1, w_1), boxes (B, n, T, 4) ->
        uncut mask logits (B, n, T, h_1, w_1)."""
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

    def cut(self, logits: Tensor, boxes: Tensor) -> Tensor:
        """logits (B, n, T, h_1, w_1) set to OUTSIDE beyond each proposal's box (B, n, T, 4):
        the box itself (with the dot-product head, frame IoU 0.45 against 0.43 with 10 % more on
        each side and 0.40 with 25 %: training-notes)."""
        if self.training and not self.cut_training:
            return logits
        window = box_windows(boxes.detach(), *logits.shape[-2:], margin=0.0)
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
