"""Sums over every k × k box of a map, from a summed-area table (integral image)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def box_sums(x: Tensor, k: int) -> Tensor:
    """x (..., H, W) -> (..., H - k + 1, W - k + 1): the sum over every k × k box of x, in x's
    dtype (exact in float32 for whole numbers whose sums stay below 2^24)."""
    c = F.pad(x.cumsum(-2).cumsum(-1), (1, 0, 1, 0))
    return c[..., k:, k:] - c[..., :-k, k:] - c[..., k:, :-k] + c[..., :-k, :-k]
