"""Masks snapped to the frame's edges by a guided filter (He, Sun and Tang, ECCV 2010).

The model's masks come from a stride-4 map of its input: at `tiny`'s 128-px input a mask cell
is 5.6 px of a 320 × 180 frame, and a mask's outline can miss the product's by half a cell.
The guided filter, with the colour frame as guide and the binary mask as input, fits the mask
in every (2r + 1)² window as a linear function of the frame's colours and averages the fits,
so that the result follows the frame's edges where the mask's outline is near one;
thresholded at 1/2 it is the refined mask. It needs no learning.

Each mask is filtered over its bounding box grown by 2r, which gives what filtering the whole
frame would (the output is 0 farther than 2r from the mask); window means count only the
pixels inside the frame, as in the paper's reference code.
"""

from __future__ import annotations

import numpy as np
import torch

from vois_cli.data.transforms import mask_boxes
from vois_cli.models.box_sums import box_sums

EPS = 1e-3  # the regularisation: colour variance (0-1 scale) well below it counts as flat
PAIRS = (torch.tensor([0, 0, 0, 1, 1, 2]), torch.tensor([0, 1, 2, 1, 2, 2]))  # Σ's entries


def guided_masks(frame: np.ndarray, masks: list[np.ndarray], radius: int) -> list[np.ndarray]:
    """frame uint8 RGB (H, W, 3), masks bool (H, W) -> the refined masks, bool (H, W)."""
    return [_refine(frame, m, radius) for m in masks]


def _refine(frame: np.ndarray, mask: np.ndarray, r: int) -> np.ndarray:
    x0, y0, x1, y1 = mask_boxes(mask).astype(int)
    if x1 == 0:  # empty
        return mask
    y0, y1 = max(y0 - 2 * r, 0), min(y1 + 2 * r, mask.shape[0])
    x0, x1 = max(x0 - 2 * r, 0), min(x1 + 2 * r, mask.shape[1])
    out = np.zeros_like(mask)
    out[y0:y1, x0:x1] = (filtered(frame[y0:y1, x0:x1], mask[y0:y1, x0:x1], r) > 0.5).numpy()
    return out


def filtered(image: np.ndarray, mask: np.ndarray, r: int) -> torch.Tensor:
    """The guided filter's output (h, w) float32 for a uint8 RGB guide (h, w, 3) and a bool
    input (h, w), radius r."""
    # copies (torch.tensor): a frame may be read-only, as PIL's are
    guide = torch.tensor(image, dtype=torch.float32).permute(2, 0, 1) / 255
    guide = guide - guide.mean((1, 2), keepdim=True)  # centred: float32 keeps the variances
    p = torch.tensor(mask, dtype=torch.float32)
    i, j = PAIRS
    means = _mean(torch.cat([p[None], guide, guide * p, guide[i] * guide[j]]), r)
    mean_p, mean_i, cov_ip = means[0], means[1:4], means[4:7] - means[1:4] * means[0]
    s00, s01, s02, s11, s12, s22 = means[7:] - mean_i[i] * mean_i[j] + EPS * (i == j)[:, None, None]
    # a = Σ⁻¹ cov_ip at every pixel, Σ⁻¹ from the cofactors of the symmetric 3 × 3 Σ
    c00, c01, c02 = s11 * s22 - s12 * s12, s02 * s12 - s01 * s22, s01 * s12 - s02 * s11
    c11, c12, c22 = s00 * s22 - s02 * s02, s01 * s02 - s00 * s12, s00 * s11 - s01 * s01
    u, v, w = cov_ip
    det = s00 * c00 + s01 * c01 + s02 * c02
    a = torch.stack([c00 * u + c01 * v + c02 * w, c01 * u + c11 * v + c12 * w,
                     c02 * u + c12 * v + c22 * w]) / det  # fmt: skip
    b = mean_p - (a * mean_i).sum(0)
    mean_ab = _mean(torch.cat([a, b[None]]), r)
    return (mean_ab[:3] * guide).sum(0) + mean_ab[3]


def _mean(x: torch.Tensor, r: int) -> torch.Tensor:
    """The mean of x (c, h, w) over the (2r + 1)² window around every pixel, inside (h, w)."""
    h, w = x.shape[1:]
    inside = [
        torch.arange(n).clamp(max=r) + torch.arange(n).flip(0).clamp(max=r) + 1 for n in (h, w)
    ]
    padded = torch.nn.functional.pad(x, (r, r, r, r))
    return box_sums(padded, 2 * r + 1) / (inside[0][:, None] * inside[1][None, :])
