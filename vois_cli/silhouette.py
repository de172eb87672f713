"""How elongated a silhouette is, for `score_shape`: the target photo's product against a mask.

The elongation is √(λ₂ / λ₁), the ratio of a mask's principal axes from its second central
moments: 1 for a disc or a square, 0.45 for a 1 × 0.45 bottle. It does not change when the
object is moved, scaled or rotated in the image plane, which a product in a broadcast is; its
ratio to the target's tells a tall bottle from a wide shoe whatever their colours and
patterns, where the model's target maps barely separate look-alikes of another shape
(docs/training-notes.md, session 53).
"""

from __future__ import annotations

import numpy as np
import torch

from vois_cli.models.similarity import photo_background


def elongation(mask: np.ndarray) -> float:
    """√(λ₂ / λ₁) of a bool mask (h, w), in [0, 1]; 1 for a single pixel (or none).

    The moments come from the row and column counts and one product of the mask's bounding
    box with its column coordinates, exact in int64, without listing the pixels (central
    moments do not depend on where the coordinates start).
    """
    pixels = mask.view(np.uint8)
    rows = pixels.sum(1, dtype=np.int64)
    y = np.flatnonzero(rows)
    if not len(y):
        return 1.0
    pixels, rows = pixels[y[0] : y[-1] + 1], rows[y[0] : y[-1] + 1]
    cols = pixels.sum(0, dtype=np.int64)
    x = np.flatnonzero(cols)
    pixels, cols = pixels[:, x[0] : x[-1] + 1], cols[x[0] : x[-1] + 1]
    ys, xs = np.arange(len(rows), dtype=np.int64), np.arange(len(cols), dtype=np.int64)
    n = int(rows.sum())
    sy, sx, sxy = int(rows @ ys), int(cols @ xs), int(ys @ (pixels @ xs))
    syy, sxx = int(rows @ ys**2), int(cols @ xs**2)
    # n² times the covariance: integers, so the moments of a large mask lose nothing
    cyy, cxx, cxy = n * syy - sy * sy, n * sxx - sx * sx, n * sxy - sx * sy
    half_trace, root = (cxx + cyy) / 2, np.hypot((cxx - cyy) / 2, cxy)
    if half_trace + root <= 0:
        return 1.0
    return float(np.sqrt(max(half_trace - root, 0.0) / (half_trace + root)))


def product_elongation(image: np.ndarray) -> float | None:
    """The elongation of the product in a target photo, uint8 RGB (H, W, 3): its pixels are
    those not in the white background connected to the border (`photo_background`). None
    when the photo has no such background or nothing else, so no shape can be read."""
    rgb = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None]  # a writable copy
    product = ~photo_background(rgb)[0].numpy()
    if product.all() or not product.any():
        return None
    return elongation(product)
