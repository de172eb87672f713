"""Masks snapped to the frame's edges by a guided filter (He, Sun and Tang, ECCV 2010), in its
fast form (He and Sun, arXiv 1505.00996).

The model's masks come from a stride-4 map of its input: at `tiny`'s 128-px input a mask cell
is 5.6 px of a 320 × 180 frame, and a mask's outline can miss the product's by half a cell.
The guided filter, with the colour frame as guide and the binary mask as input, fits the mask
in every (2r + 1)² window as a linear function of the frame's colours and averages the fits,
so that the result follows the frame's edges where the mask's outline is near one;
thresholded at 1/2 it is the refined mask. It needs no learning.

The fast form fits and averages on a grid subsampled s times (frame and mask averaged over
s × s cells), then applies the fits, upsampled bilinearly, to the full-resolution frame: the
edges are the full frame's, the fitting costs 1/s² of the exact filter's. s is chosen so that
the radius on that grid is `LOW_RADIUS`: a radius given in model-input px grows with the
footage, so the fits' cost follows the model's input size, not the footage's; what remains
per frame pixel is applying them in the masks' boxes (a 1080p frame of ten masks: 0.11 s of
CPU, the exact filter 1.4 s). The frame's own terms (its window means and their inverse
covariance) are computed once a frame on that grid and shared by its masks; each mask's over
its box grown by 2r + 1 cells, beyond which the output is 0. Window means count only the
pixels inside the frame, as in the paper's reference code.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vois_cli.data.transforms import mask_boxes
from vois_cli.models.box_sums import box_sums

EPS = 1e-3  # the regularisation: colour variance (0-1 scale) well below it counts as flat
LOW_RADIUS = 4  # the radius on the subsampled grid (He and Sun: r 16 at s 4)
PAIRS = (torch.tensor([0, 0, 0, 1, 1, 2]), torch.tensor([0, 1, 2, 1, 2, 2]))  # Σ's entries


def guided_masks(frame: np.ndarray, masks: list[np.ndarray], radius: int) -> list[np.ndarray]:
    """frame uint8 RGB (H, W, 3), masks bool (H, W) -> the refined masks, bool (H, W)."""
    if not masks:  # a frame no object shows: no terms to compute
        return []
    guide = Guide(frame, radius)
    refined = []
    for mask in masks:
        out = np.zeros_like(mask)
        if mask.any():
            window, q = guide.filtered(mask)
            out[window] = (q > 0.5).numpy()
        refined.append(out)
    return refined


class Guide:
    """A frame's terms of the guided filter at radius `radius` (frame px), for its masks."""

    def __init__(self, frame: np.ndarray, radius: int):
        self.s = s = max(1, round(radius / LOW_RADIUS))
        self.r = r = max(1, round(radius / s))
        # a copy (torch.tensor): a frame may be read-only, as PIL's are; its mean summed in
        # the frame's (H, W, C) order, then channels first in memory, as the pooling and the
        # window sums read them fastest
        image = torch.tensor(frame, dtype=torch.float32).div_(255).permute(2, 0, 1)
        mean = image.mean((1, 2), keepdim=True)
        self.image = image.contiguous().sub_(mean)  # centred: float32 keeps Σ
        self.low = F.avg_pool2d(self.image[None], s, ceil_mode=True)[0] if s > 1 else self.image
        h, w = self.low.shape[1:]
        inside = [torch.arange(n).clamp(max=r) + torch.arange(n).flip(0).clamp(max=r) + 1
                  for n in (h, w)]  # fmt: skip
        self.count = inside[0][:, None] * inside[1][None, :]  # window cells in the frame
        i, j = PAIRS
        means = _sums(torch.cat([self.low, self.low[i] * self.low[j]]), r) / self.count
        self.mean = means[:3]
        s00, s01, s02, s11, s12, s22 = (
            means[3:] - self.mean[i] * self.mean[j] + EPS * (i == j)[:, None, None]
        )
        # Σ⁻¹ at every pixel from the cofactors of the symmetric 3 × 3 Σ
        c00, c01, c02 = s11 * s22 - s12 * s12, s02 * s12 - s01 * s22, s01 * s12 - s02 * s11
        c11, c12, c22 = s00 * s22 - s02 * s02, s01 * s02 - s00 * s12, s00 * s11 - s01 * s01
        det = s00 * c00 + s01 * c01 + s02 * c02
        cofactors = torch.stack([c00, c01, c02, c01, c11, c12, c02, c12, c22])
        self.inverse = (cofactors / det).view(3, 3, h, w)

    def filtered(self, mask: np.ndarray) -> tuple[tuple[slice, slice], torch.Tensor]:
        """A non-empty mask bool (H, W) -> (the frame window it reaches, the filter's output
        on it, float32)."""
        s, r, (h, w), (height, width) = self.s, self.r, self.count.shape, mask.shape
        x0, y0, x1, y1 = mask_boxes(mask).astype(int)
        # the box on the subsampled grid, grown by 2r + 1 (the output is 0 from 2r + 1 cells
        # on, where the upsampling no longer reaches), and the frame px it covers
        grow = 2 * r + 1
        ly = slice(max(y0 // s - grow, 0), min(-(-y1 // s) + grow, h))
        lx = slice(max(x0 // s - grow, 0), min(-(-x1 // s) + grow, w))
        fy = slice(ly.start * s, min(ly.stop * s, height))
        fx = slice(lx.start * s, min(lx.stop * s, width))
        p = torch.tensor(mask[fy, fx], dtype=torch.float32)
        p = F.avg_pool2d(p[None, None], s, ceil_mode=True)[0, 0] if s > 1 else p
        guide, count, mean = self.low[:, ly, lx], self.count[ly, lx], self.mean[:, ly, lx]
        sums = _sums(torch.cat([p[None], guide * p]), r) / count
        a = (self.inverse[:, :, ly, lx] * (sums[1:] - mean * sums[0])).sum(1)  # Σ⁻¹ cov(I, p)
        b = sums[0] - (a * mean).sum(0)
        ab = _sums(torch.cat([a, b[None]]), r) / count
        if s > 1:
            ab = F.interpolate(ab[None], scale_factor=s, mode="bilinear")[0]
            ab = ab[:, : fy.stop - fy.start, : fx.stop - fx.start]
        return (fy, fx), (ab[:3] * self.image[:, fy, fx]).sum(0) + ab[3]


def _sums(x: torch.Tensor, r: int) -> torch.Tensor:
    """Sums of x (c, h, w) over the (2r + 1)² window around every pixel, 0 outside (h, w)."""
    return box_sums(F.pad(x, (r, r, r, r)), 2 * r + 1)
