"""VisTR's instance-sequence segmentation head.

Per frame, each of its n last-layer queries attends over that frame's memory E, giving
one attention map per head (DETR's MHAttentionMap). The keys carry E's position encoding,
as the decoder's cross-attention keys do: VisTR's memory came out of a transformer encoder
that had mixed the encoding in, VOIS's comes straight from Swin (relative position bias
only), and without it two copies of the target give identical keys, so no query's map can
single out one of them. E concatenated with a query's maps runs through 3×3 conv +
GroupNorm + ReLU blocks, fused FPN-style with the backbone's stride-16, 8 and 4 features
(1×1 adapters, nearest upsampling), then a deformable 3×3 conv at stride 4.
The T per-frame maps of one proposal are stacked and refined jointly by dilated 3×3×3
convolutions into (T, H/4, W/4) mask logits.

Widths follow VisTR's ratios to `mask_dim` m (VisTR: the decoder width d): d + heads, m/2,
m/4, m/8, m/16 in 2D and m/32 in 3D (384 → 392, 192, 96, 48, 24, 12). GroupNorm uses
gcd(width, heads) groups: 8 and 4 (for 12 channels) at the paper size, as VisTR. The small
presets keep m above d: at m = 64 the 3D convs are 2 channels wide, and the tiny model's
mask head died (every proposal the same constant map) within the default training run.
`mask_deform=False` swaps the deformable conv for a plain one, whose CPU backward is ~10×
cheaper (the tiny preset's choice).

One deviation (`mask_maps_scaled`, on by default): DETR's maps are one softmax over heads ×
positions, so together they hold a mass of 1, i.e. ~1/(heads·h·w) per entry beside E's d
channels of order 1. The maps are the only thing that differs between a frame's proposals,
and at that scale the proposals' features before the 3D convs differ by ~5 %: on a clip with
two copies of the target every proposal's mask learnt the union of both. Here each head's
softmax over positions is multiplied by h·w (a uniform map is 1 everywhere), which lets
the tiny overfit test (tests/test_overfit.py) split them. False restores DETR's maps.

With two-stage queries (`two_stage`) each proposal's boxes follow its object, and a window
channel (1 inside the box grown by 10 %, at stride 4) enters the 3D convs beside the
features: the stride-32 maps alone left every proposal of the tiny model the same mask.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import DeformConv2d

from vois_cli.config import ModelConfig


class AttentionMaps(nn.Module):
    """Multi-head attention weights of queries over a feature map: one softmax over heads ×
    positions as DETR's MHAttentionMap, or with `scaled` each head's softmax over positions
    times their number."""

    def __init__(self, d: int, heads: int, scaled: bool = False):
        super().__init__()
        self.heads = heads
        self.scaled = scaled
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        for layer in (self.q, self.k):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, queries: Tensor, features: Tensor, pos: Tensor | None = None) -> Tensor:
        """queries (M, n, d), features and their position encoding (M, h, w, d)
        -> maps (M, n, heads, h, w); `pos` is added to the keys."""
        m, n, d = queries.shape
        q = self.q(queries).view(m, n, self.heads, d // self.heads)
        keys = features if pos is None else features + pos
        k = self.k(keys).unflatten(-1, (self.heads, d // self.heads))  # (M, h, w, heads, c)
        logits = torch.einsum("mqnc,mhwnc->mqnhw", q * (d // self.heads) ** -0.5, k)
        if self.scaled:
            positions = logits.shape[-2] * logits.shape[-1]
            return logits.flatten(3).softmax(-1).view(logits.shape) * positions
        return logits.flatten(2).softmax(-1).view(logits.shape)


def _norm(width: int, heads: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(width, heads), width)


def _block(cin: int, cout: int, heads: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), _norm(cout, heads), nn.ReLU())


def _block3d(cin: int, cout: int, heads: int) -> nn.Sequential:
    conv = nn.Conv3d(cin, cout, 3, padding=2, dilation=2)
    return nn.Sequential(conv, _norm(cout, heads), nn.ReLU())


def box_windows(boxes: Tensor, h: int, w: int, margin: float = 0.1) -> Tensor:
    """(..., 4) cxcywh boxes -> (..., h, w) 1 on the cells of an h × w grid over the frame
    whose centres lie in the box grown by `margin` of its size on each side, else 0."""
    cx, cy, bw, bh = boxes.unbind(-1)
    ys = (torch.arange(h, device=boxes.device) + 0.5) / h
    xs = (torch.arange(w, device=boxes.device) + 0.5) / w
    half_w, half_h = (0.5 + margin) * bw, (0.5 + margin) * bh
    inside_x = (xs - cx[..., None]).abs() <= half_w[..., None]  # (..., w)
    inside_y = (ys - cy[..., None]).abs() <= half_h[..., None]  # (..., h)
    return (inside_y[..., :, None] & inside_x[..., None, :]).float()


class MaskHead(nn.Module):
    """Mask logits for every proposal and frame from the decoder output and backbone features."""

    def __init__(self, cfg: ModelConfig, feature_channels: tuple[int, int, int] | list[int]):
        super().__init__()
        d, m, heads = cfg.hidden_dim, cfg.mask_dim, cfg.dec_heads
        assert m % 32 == 0, f"mask head widths are mask_dim / 2..32: {m} must be divisible by 32"
        assert d % heads == 0, f"hidden_dim {d} must be divisible by dec_heads {heads}"
        w = [m // 2, m // 4, m // 8, m // 16, m // 32]
        self.attention = AttentionMaps(d, heads, cfg.mask_maps_scaled)
        self.stem = nn.Sequential(
            _block(d + heads, d + heads, heads), _block(d + heads, w[0], heads)
        )
        c1, c2, c3 = feature_channels
        self.adapters = nn.ModuleList(
            nn.Conv2d(c, cw, 1) for c, cw in zip((c3, c2, c1), w[:3], strict=True)
        )
        self.fuse = nn.ModuleList((_block(w[0], w[1], heads), _block(w[1], w[2], heads)))
        self.deformable = cfg.mask_deform
        if self.deformable:
            self.offset = nn.Conv2d(w[2], 2 * 3 * 3, 3, padding=1)
            nn.init.zeros_(self.offset.weight)
            nn.init.zeros_(self.offset.bias)
            self.deform = DeformConv2d(w[2], w[3], 3, padding=1)
        else:
            self.conv = nn.Conv2d(w[2], w[3], 3, padding=1)
        self.deform_norm = _norm(w[3], heads)
        # two-stage queries carry boxes that follow their object: a window channel tells the
        # 3D convs where the proposal is (the maps at stride 32 are too coarse to split objects)
        self.box_prior = cfg.two_stage
        self.temporal = nn.Sequential(
            _block3d(w[3] + self.box_prior, w[4], heads),
            _block3d(w[4], w[4], heads),
            _block3d(w[4], w[4], heads),
            nn.Conv3d(w[4], 1, 1),
        )

    def forward(
        self,
        hs: Tensor,
        memory: Tensor,
        pos: Tensor,
        features: list[Tensor],
        boxes: Tensor | None = None,
    ) -> Tensor:
        """hs (B, T, n, d) last decoder layer; memory E and its position encoding
        (B, T, h, w, d) at stride 32; features [f1, f2, f3] channels-last (B, T, h_s, w_s, C_s)
        at strides 4, 8, 16; with `box_prior` the proposals' boxes (B, n, T, 4) cxcywh
        -> mask logits (B, n, T, h_1, w_1).
        """
        b, t, n, d = hs.shape
        queries, e = hs.flatten(0, 1), memory.flatten(0, 1)  # (BT, n, d), (BT, h, w, d)
        maps = self.attention(queries, e, pos.flatten(0, 1))  # (BT, n, heads, h, w)
        e = e.permute(0, 3, 1, 2)[:, None].expand(-1, n, -1, -1, -1)
        x = self.stem(torch.cat([e, maps], 2).flatten(0, 1))  # (BT·n, d/2, h, w)
        for i, f in enumerate(reversed(features)):
            fpn = self.adapters[i](f.flatten(0, 1).permute(0, 3, 1, 2))  # (BT, c, h_s, w_s)
            up = F.interpolate(x, size=fpn.shape[-2:], mode="nearest")
            x = (up.unflatten(0, (b * t, n)) + fpn[:, None]).flatten(0, 1)
            if i < len(self.fuse):
                x = self.fuse[i](x)
        x = self.deform(x, self.offset(x)) if self.deformable else self.conv(x)
        x = F.relu(self.deform_norm(x))  # (BT·n, m/16, h1, w1)
        x = x.view(b, t, n, *x.shape[1:]).permute(0, 2, 3, 1, 4, 5).flatten(0, 1)
        if self.box_prior:
            window = box_windows(boxes.detach(), *x.shape[-2:]).flatten(0, 1)  # (B·n, T, h1, w1)
            x = torch.cat([x, window[:, None].to(x.dtype)], 1)
        return self.temporal(x).view(b, n, t, *x.shape[-2:])  # (B, n, T, h1, w1)
