"""The guided filter that snaps masks to the frame's edges (`mask_guide`)."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vois_cli.config import preset
from vois_cli.guided_filter import EPS, Guide, guided_masks


def mean_fits(guide: np.ndarray, p: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """He et al.'s algorithm 1 (colour guide) window by window, in float64: the window means
    of the fits a (h, w, 3) and b (h, w) of p (h, w) on guide (h, w, 3)."""
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
    mean_a, mean_b = np.zeros_like(a), np.zeros_like(b)
    for y in range(h):
        for x in range(w):
            mean_a[y, x], mean_b[y, x] = a[window(y, x)].mean((0, 1)), b[window(y, x)].mean()
    return mean_a, mean_b


def reference(image: np.ndarray, mask: np.ndarray, r: int, s: int) -> np.ndarray:
    """He and Sun's fast guided filter: the fits on frame and mask averaged over s × s cells
    (the last ones cut by the frame's edge), upsampled bilinearly, applied to the frame."""
    guide, p = image.astype(np.float64) / 255, mask.astype(np.float64)

    def cells(x):  # (h, w, c) -> the means of its s × s cells
        h, w = x.shape[:2]
        return np.stack([[x[y : y + s, c : c + s].mean((0, 1)) for c in range(0, w, s)]
                         for y in range(0, h, s)])  # fmt: skip

    a, b = mean_fits(cells(guide), cells(p[..., None])[..., 0], r)
    ab = torch.from_numpy(np.concatenate([a, b[..., None]], -1)).permute(2, 0, 1)[None]
    ab = F.interpolate(ab, scale_factor=s, mode="bilinear")[0].permute(1, 2, 0).numpy()
    ab = ab[: p.shape[0], : p.shape[1]]
    return (ab[..., :3] * guide).sum(-1) + ab[..., 3]


def whole(frame: np.ndarray, mask: np.ndarray, radius: int) -> np.ndarray:
    window, q = Guide(frame, radius).filtered(mask)
    out = np.zeros(mask.shape)
    out[window] = q.numpy()
    return out


def test_a_small_radius_is_he_et_als_algorithm():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (14, 17, 3), dtype=np.uint8)
    image[:, 9:] //= 4  # an edge
    mask = rng.random((14, 17)) < 0.4
    assert (Guide(image, 3).s, Guide(image, 3).r) == (1, 3)
    np.testing.assert_allclose(whole(image, mask, 3), reference(image, mask, 3, 1), atol=2e-5)


@pytest.mark.parametrize("corner", [(2, 3), (30, 40)])
def test_a_larger_radius_is_he_and_suns_fast_filter_over_the_whole_frame(corner):
    """Radius 8 fits on a grid of 2 × 2 cells at radius 4; the mask's box (grown by 2r + 1
    cells) at the frame's border or inside it gives what the whole frame gives, the cells of
    the frame's odd size cut by its edge."""
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (63, 95, 3), dtype=np.uint8)
    frame[:, 50:] //= 3
    mask = np.zeros((63, 95), bool)
    y, x = corner
    mask[y : y + 12, x : x + 9] = rng.random((12, 9)) < 0.8
    assert (Guide(frame, 8).s, Guide(frame, 8).r) == (2, 4)
    np.testing.assert_allclose(whole(frame, mask, 8), reference(frame, mask, 4, 2), atol=2e-5)


def test_the_fits_grid_follows_the_model_input_not_the_footage():
    """A radius of 8 px at 180p and of 48 px at 1080p (the same model-input px) fit on grids
    of the same size."""
    small, large = np.zeros((180, 320, 3), np.uint8), np.zeros((1080, 1920, 3), np.uint8)
    assert Guide(small, 8).low.shape == Guide(large, 48).low.shape == (3, 90, 160)


def test_a_frames_masks_share_its_terms_and_not_their_results():
    """Each mask refined with the others of its frame is the mask refined alone."""
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    masks = [np.zeros((64, 96), bool) for _ in range(3)]
    for m, (y, x) in zip(masks, [(5, 5), (20, 40), (40, 70)], strict=True):
        m[y : y + 15, x : x + 20] = rng.random((15, 20)) < 0.7
    together = guided_masks(frame, masks, 8)
    for mask, refined in zip(masks, together, strict=True):
        np.testing.assert_array_equal(refined, guided_masks(frame, [mask], 8)[0])


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


def test_tiny_snaps_its_masks_and_paper_does_not():
    assert preset("tiny").model.mask_guide == 6.0
    assert preset("paper").model.mask_guide == 0.0
