"""VisTR's 3D sine position encoding of a (T, h, w) feature volume.

Each axis gets its own block of features in the order t, y, x. Positions count from 1,
are divided by the last position (+ eps) and scaled by 2π, then DETR's sine/cosine pairs
follow, interleaved (sin, cos, sin, cos, ...) with frequencies temperature^(2i/d_axis).

`dim` must be even and at least 6. When `dim` is not divisible by 6 (hidden sizes 64, 128
of the small presets) the three blocks are split as evenly as possible into even widths,
the spare pairs going to x first, then y: 64 → (20, 22, 22), 128 → (42, 42, 44),
384 → (128, 128, 128).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

TEMPERATURE = 10000.0
SCALE = 2 * math.pi
EPS = 1e-6


def axis_widths(dim: int) -> tuple[int, int, int]:
    """Feature widths of the (t, y, x) blocks: even, as equal as possible, summing to `dim`."""
    assert dim % 2 == 0 and dim >= 6, f"position encoding width must be even and >= 6, got {dim}"
    base = (dim // 6) * 2
    spare = dim - 3 * base  # 0, 2 or 4
    return base, base + 2 * (spare >= 4), base + 2 * (spare >= 2)


def _sine(positions: Tensor, width: int) -> Tensor:
    """(L,) normalised positions -> (L, width) interleaved sin/cos features."""
    i = torch.arange(width, dtype=torch.float32, device=positions.device)
    freq = TEMPERATURE ** (2 * (i // 2) / width)
    angles = positions[:, None] / freq
    return torch.stack((angles[:, 0::2].sin(), angles[:, 1::2].cos()), dim=2).flatten(1)


def position_encoding_3d(
    shape: tuple[int, int, int], dim: int, device: torch.device | str | None = None
) -> Tensor:
    """Encode every position of a (T, h, w) volume: returns float32 (T, h, w, dim)."""
    widths = axis_widths(dim)
    blocks = []
    for axis, (length, width) in enumerate(zip(shape, widths, strict=True)):
        pos = torch.arange(1, length + 1, dtype=torch.float32, device=device)
        feats = _sine(pos / (length + EPS) * SCALE, width)  # (length, width)
        view = [1, 1, 1, width]
        view[axis] = length
        blocks.append(feats.view(view).expand(*shape, width))
    return torch.cat(blocks, dim=3)
