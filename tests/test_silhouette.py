"""The elongation `score_shape` compares: exact moments, invariant to where and how the object
is placed, and read from a target photo's product."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from vois_cli.data.products import Product, render_sprite, target_image
from vois_cli.silhouette import elongation, product_elongation


def test_a_rectangles_elongation_is_the_ratio_of_its_sides_spreads():
    mask = np.zeros((60, 50), bool)
    mask[5:45, 20:30] = True  # 40 tall, 10 wide: pixel variances (10² − 1)/12 and (40² − 1)/12
    assert elongation(mask) == pytest.approx(np.sqrt(99 / 1599), rel=1e-12)
    assert elongation(mask.T) == pytest.approx(np.sqrt(99 / 1599), rel=1e-12)


def test_elongation_equals_the_covariance_eigenvalues_of_the_pixel_coordinates():
    mask = np.random.default_rng(0).random((70, 90)) < 0.3
    mask[:, :40] &= np.random.default_rng(1).random((70, 40)) < 0.2
    low, high = np.linalg.eigvalsh(np.cov(np.nonzero(mask)))
    assert elongation(mask) == pytest.approx(np.sqrt(low / high), rel=1e-9)


def test_elongation_does_not_change_when_the_object_is_moved_scaled_or_rotated():
    def bottle(centre, scale, angle):
        image = Image.new("L", (200, 200))
        corners = np.array([[-9, -20], [9, -20], [9, 20], [-9, 20]]) * scale
        c, s = np.cos(angle), np.sin(angle)
        corners = corners @ np.array([[c, s], [-s, c]]) + centre
        ImageDraw.Draw(image).polygon([tuple(p) for p in corners], fill=1)
        return np.asarray(image) > 0

    # a continuous 18 × 40 rectangle has elongation 0.45; rasterising moves it a little
    placements = (
        ((60, 60), 2.0, 0.0),
        ((130, 90), 2.0, 0.3),
        ((100, 100), 3.0, 0.8),
        ((90, 120), 2.5, 1.3),
    )
    for centre, scale, angle in placements:
        assert elongation(bottle(centre, scale, angle)) == pytest.approx(0.45, abs=0.025)


def test_a_single_pixel_is_round():
    mask = np.zeros((5, 5), bool)
    mask[2, 3] = True
    assert elongation(mask) == 1.0
    assert elongation(np.zeros((5, 5), bool)) == 1.0  # and so is nothing


def test_the_product_of_a_target_photo_is_read_from_its_white_background():
    product = Product("bottle", "stripes", "blue")
    photo = target_image(product, 96)
    sprite = render_sprite(product, round(0.8 * 96))[1]
    assert product_elongation(photo) == pytest.approx(elongation(sprite), abs=0.01)
    assert product_elongation(photo) < 0.5  # a bottle is 0.45 as wide as it is tall


def test_a_photo_without_a_white_background_or_without_a_product_has_no_shape():
    assert product_elongation(np.zeros((32, 32, 3), np.uint8)) is None
    assert product_elongation(np.full((32, 32, 3), 255, np.uint8)) is None
