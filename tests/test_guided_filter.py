"""The guided filter that snaps masks to the frame's edges (`mask_guide`)."""

import warnings

import numpy as np
import pytest

from vois_cli.config import preset
from vois_cli.guided_filter import EPS, filtered, guided_masks


def reference(image: np.ndarray, mask: np.ndarray, r: int) -> np.ndarray:
    """He et al.'s algorithm 1 (colour guide) window by window, in float64."""
    guide, p = image.astype(np.float64) / 255, mask.astype(np.float64)
    h, w = p.shape

    def window(y, x):
        return slice(max(y - r, 0), y + r + 1), slice(max(x - r, 0), x + r + 1)

    a, b = np.zeros((h, w, 3)), np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            g, q = guide[window(y, x)].reshape(-1, 3), p[window(y, x)].ravel()
            sigma = np.cov(g.T, bias=True) + EPS * np.eye(3)
            cov = (g * q[:, None]).mean(0) - g.mean(0) * q.mean()
            a[y, x] = np.linalg.solve(sigma, cov)
            b[y, x] = q.mean() - a[y, x] @ g.mean(0)
    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            out[y, x] = (
                a[window(y, x)].reshape(-1, 3).mean(0) @ guide[y, x] + b[window(y, x)].mean()
            )
    return out


def test_the_filter_is_he_et_als_algorithm():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (14, 17, 3), dtype=np.uint8)
    image[:, 9:] //= 4  # an edge
    mask = rng.random((14, 17)) < 0.4
    got = filtered(image, mask, 2).numpy()
    np.testing.assert_allclose(got, reference(image, mask, 2), atol=2e-5)


def test_a_mask_off_by_a_few_pixels_moves_onto_the_object():
    """A red square on grey, its mask 3 px too far right and down (IoU 0.57 with the square):
    the refined mask lies on the square (IoU 0.9 at r 8); an empty mask stays empty."""
    frame = np.full((60, 80, 3), 128, np.uint8)
    frame[20:40, 30:50] = (220, 30, 30)
    square = np.zeros((60, 80), bool)
    square[20:40, 30:50] = True
    off = np.roll(square, (3, 3), (0, 1))
    frame.flags.writeable = False  # as PIL's frames of a folder of images are: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        refined, nothing = guided_masks(frame, [off, np.zeros_like(square)], 8)

    def iou(m):
        return (m & square).sum() / (m | square).sum()

    assert iou(off) == pytest.approx(289 / 511)
    assert iou(refined) > 0.88
    assert not nothing.any()


@pytest.mark.parametrize("corner", [(2, 3), (30, 40)])
def test_filtering_the_masks_box_gives_what_the_whole_frame_gives(corner):
    """The mask is filtered over its box grown by 2r, at the frame's border or inside it."""
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    mask = np.zeros((64, 96), bool)
    y, x = corner
    mask[y : y + 12, x : x + 9] = rng.random((12, 9)) < 0.8
    (refined,) = guided_masks(frame, [mask], 3)
    whole = filtered(frame, mask, 3).numpy()
    settled = np.abs(whole - 0.5) > 1e-4  # away from float32's rounding at the threshold
    np.testing.assert_array_equal(refined[settled], (whole > 0.5)[settled])


def test_tiny_snaps_its_masks_and_paper_does_not():
    assert preset("tiny").model.mask_guide == 6.0
    assert preset("paper").model.mask_guide == 0.0
