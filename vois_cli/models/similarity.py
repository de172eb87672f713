"""Target-similarity maps: an explicit comparison of every video token with the target.

The Cross Transformer block's softmax over target tokens always returns a convex mix of the
target's values, whatever the match, so a token on a look-alike and one on the target get
nearly the same addition. Siamese trackers (SiamFC), exemplar counters (FamNet, SAFECount)
and OWL-ViT compare explicitly instead. Here each stage's video tokens and target tokens are
projected to a small metric space; the cosine of a video token with its best-matching target
token, and with the mean of its k best, are two channels that say "the target is here" and
can also say "nothing here matches".

`colour_backprojection` adds a comparison that needs no learning: Swain & Ballard's colour
histogram back-projection (1991; CamShift's cue). The target photo's product pixels (all but
the white background connected to the photo's border) make a coarse RGB histogram, and every
video pixel gets its colour bin's share relative to the product's main colour: about 1 on the
target's colours, 0 on others. It cannot tell a striped product from a plain one in the same
colours; `colour_mix` can: Swain & Ballard's histogram intersection of the target's colour
histogram with that of the video's window around each position, 1 where the window holds
the product's colours in the product's proportions.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor, nn

from vois_cli.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from vois_cli.models.box_sums import box_sums

TOP_FRACTION = 0.125  # the second channel averages the best eighth of the target's tokens
CHANNELS = 2  # max and top-k mean
# the target's token map is average-pooled to at most this many tokens a side: at stride 4
# (stage 1) a 128-px target has 32 x 32 tokens, and comparing every video token with all of
# them took three times the model's training step
MAX_TARGET_SIDE = 16
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
WHITE = 230  # a target pixel with every channel at or above this is the photo's background
LEVELS = 4  # colour histogram bins per RGB channel
MIX_CELL = 4  # `colour_mix` is computed at stride 4 ...
MIX_WINDOW = 5  # ... over windows of 5 x 5 cells (20 px, about a pattern's period on an object)


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


def colour_maps(video: Tensor, hist: Tensor, backprojection: bool, mix: bool) -> list[Tensor]:
    """The chosen unlearned maps, `colour_backprojection` then `colour_mix`, from one binning
    of the video and the target's `product_histogram`."""
    pixels = _bins(_rgb(video))
    return [f(pixels, hist) for f, on in ((_backproject, backprojection), (_mix, mix)) if on]


def colour_backprojection(video: Tensor, target: Tensor) -> Tensor:
    """video (B, T, 3, H, W), target (B, 3, h, w), both ImageNet-normalised -> (B, T, H, W):
    each video pixel's colour bin count among the target's product pixels, over the largest
    bin's count (0 everywhere for a target without product pixels)."""
    return _backproject(_bins(_rgb(video)), product_histogram(target))


def _backproject(pixels: Tensor, hist: Tensor) -> Tensor:
    """pixels (B, T, H, W) bin indices, hist (B, bins) product counts -> (B, T, H, W)."""
    hist = hist / hist.amax(1, keepdim=True).clamp(min=1)
    return hist.gather(1, pixels.flatten(1)).view(pixels.shape)


def colour_mix(video: Tensor, target: Tensor) -> Tensor:
    """video (B, T, 3, H, W), target (B, 3, h, w), both ImageNet-normalised -> (B, T,
    ceil(H/4), ceil(W/4)): Σ_bin min(window share, product share), the intersection of the
    colour histogram of the MIX_WINDOW-cell window around each stride-4 cell with that of the
    target's product pixels (0 for a target without product pixels)."""
    return _mix(_bins(_rgb(video)), product_histogram(target))


def _mix(pixels: Tensor, hist: Tensor) -> Tensor:
    """pixels (B, T, H, W) bin indices, hist (B, bins) product counts -> (B, T, H/4, W/4)."""
    product = hist / hist.sum(1, keepdim=True).clamp(min=1)  # (B, bins)
    b, t, h, w = pixels.shape
    ch, cw = -(-h // MIX_CELL), -(-w // MIX_CELL)
    cells = (torch.arange(h, device=pixels.device) // MIX_CELL)[:, None] * cw + (
        torch.arange(w, device=pixels.device) // MIX_CELL
    )  # (H, W): each pixel's stride-4 cell
    index = (pixels.flatten(0, 1) * (ch * cw) + cells).flatten(1)  # (B·T, H·W) into (bins, cells)
    counts = torch.zeros(b * t, LEVELS**3 * ch * cw, device=pixels.device)
    counts.scatter_add_(1, index, torch.ones_like(index, dtype=counts.dtype))
    counts = counts.view(b * t, LEVELS**3, ch, cw)
    window = _window_mean(counts)
    window = window / window.sum(1, keepdim=True).clamp(min=1e-6)  # shares in each window
    share = product.repeat_interleave(t, 0)[..., None, None]
    return torch.minimum(window, share).sum(1).view(b, t, ch, cw)


def _window_mean(counts: Tensor) -> Tensor:
    """counts (N, C, h, w), whole numbers -> (N, C, h, w): the mean over the MIX_WINDOW ×
    MIX_WINDOW cells around each cell that lie inside the map, i.e. `F.avg_pool2d(counts,
    MIX_WINDOW, 1, MIX_WINDOW // 2, count_include_pad=False)`, from summed-area tables.

    Four times faster on a CPU than the pooling (8 % of the `tiny` forward), and the same
    values to the last bit: every partial sum is a whole number below 2^24 (a frame of fewer
    than 2^24 pixels), so any order of adding them is exact, and the one division is the
    pooling's own.
    """
    pad = (MIX_WINDOW // 2,) * 4
    ones = torch.ones((1, 1, *counts.shape[-2:]), device=counts.device)
    return box_sums(F.pad(counts, pad), MIX_WINDOW) / box_sums(F.pad(ones, pad), MIX_WINDOW)


def _rgb(x: Tensor) -> Tensor:
    """ImageNet-normalised (..., 3, H, W) -> 0-255."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD, device=x.device).view(3, 1, 1) * 255
    return x.float() * std + mean


def _bins(x: Tensor) -> Tensor:
    """(..., 3, H, W) in 0-255 -> (..., H, W) colour bin index."""
    q = (x * (LEVELS / 256)).floor().clamp(0, LEVELS - 1).long()
    return (q[..., 0, :, :] * LEVELS + q[..., 1, :, :]) * LEVELS + q[..., 2, :, :]


def product_histogram(target: Tensor) -> Tensor:
    """target (B, 3, h, w) ImageNet-normalised -> (B, bins) colour counts of its product pixels."""
    image = _rgb(target)
    product = ~photo_background(image)
    hist = torch.zeros(len(target), LEVELS**3, device=target.device)
    hist.scatter_add_(1, _bins(image).flatten(1), product.flatten(1).float())
    return hist


def photo_background(image: Tensor) -> Tensor:
    """image (B, 3, h, w) in 0-255 -> bool (B, h, w): the white pixels (every channel at or
    above WHITE) 8-connected to the border; a white-ish pattern inside the product is kept.

    Connected components on the CPU (scipy, the same mask): a flood fill by repeated 3 × 3
    max-pooling grows one pixel a round, some fifty rounds on a product photo."""
    white = (image >= WHITE).all(1).cpu().numpy()
    background = np.zeros_like(white)
    for b, mask in enumerate(white):
        labels = ndimage.label(mask, EIGHT_CONNECTED)[0]
        border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        background[b] = np.isin(labels, border[border > 0])
    return torch.from_numpy(background).to(image.device)
