"""The track scores of a Stream driven by the red-square oracle: each score field of `tiny`
on and off, and the duplicates suppressed in the result only."""

import dataclasses

import numpy as np
import pytest
from PIL import Image
from red_oracle import CONFIG, RedOracle, frame, oracle_postprocess, predictor

from vois_cli.config import preset
from vois_cli.inference import Predictor


def test_score_coverage_scales_each_track_by_the_share_of_frames_it_is_seen_in():
    """tiny's track score: a track seen in 3 of 40 frames ranks below one seen in 30."""
    position = lambda f: (24, 8) if f < 30 else (48, 80) if 35 <= f < 38 else None  # noqa: E731
    results = {}
    for coverage in (False, True):
        config = preset("tiny", model={"score_coverage": coverage, "mask_guide": 0.0})
        assert preset("tiny").model.score_coverage
        stream = predictor(config).stream(Image.new("RGB", (8, 8)))
        decided = [
            d
            for f in range(40)
            for d in stream.push(frame(f, position, (200 if f < 30 else 250, 20, 20)))
        ]
        decided += stream.close()
        results[coverage] = stream.result().objects, decided
    (whole, piece), decided = results[True]
    assert (whole.score, piece.score) == pytest.approx((200 / 255 * 30 / 40, 250 / 255 * 3 / 40))
    assert decided[3].objects[0][1] == pytest.approx(200 / 255)  # seen in all 8 frames so far
    assert decided[9].objects[0][1] == pytest.approx(200 / 255)  # 14 of 14 (clip 2 owns 8-13)
    (whole, piece), _ = results[False]
    assert (whole.score, piece.score) == pytest.approx((200 / 255, 250 / 255))


def test_score_consistency_scales_each_track_by_its_masks_mean_iou_in_consecutive_frames():
    """tiny's track score: a mask that jumps to a far place every 4th frame (IoU 0 in 9 of its
    39 pairs of consecutive frames, 1 in the others) keeps 30/39 of its score, one that stays
    all of it."""
    assert preset("tiny").model.score_consistency
    jumps = lambda f: (24, 8) if f // 4 % 2 == 0 else (24, 60)  # noqa: E731
    stays = lambda f: (24, 8)  # noqa: E731
    scores = {}
    for name, position in (("jumps", jumps), ("stays", stays)):
        for consistency in (False, True):
            config = preset("tiny", model={"score_coverage": False, "mask_guide": 0.0,
                                           "score_consistency": consistency})  # fmt: skip
            stream = predictor(config).stream(Image.new("RGB", (8, 8)))
            for f in range(40):
                stream.push(frame(f, position, (200, 20, 20)))
            stream.close()
            (track,) = stream.result().objects
            scores[name, consistency] = track.score
    assert scores["stays", True] == scores["stays", False] == pytest.approx(200 / 255)
    assert scores["jumps", False] == pytest.approx(200 / 255)
    assert scores["jumps", True] == pytest.approx(200 / 255 * 30 / 39)


def test_score_shape_scales_each_track_by_how_its_masks_elongation_matches_the_targets():
    """tiny's track score: a square (elongation 1) found for a target photo of a product 8 px
    wide and 24 tall (elongation √(63/575)) keeps that share of its score; off, or for a
    target photo without a white background, all of it."""
    assert preset("tiny").model.score_shape
    tall = np.full((32, 32, 3), 255, np.uint8)
    tall[4:28, 12:20] = (20, 20, 200)
    scores = {}
    for name, target in (
        ("tall", Image.fromarray(tall)),
        ("no background", Image.new("RGB", (8, 8))),
    ):
        for shape in (False, True):
            config = preset("tiny", model={"score_coverage": False, "score_consistency": False,
                                           "score_shape": shape, "mask_guide": 0.0})  # fmt: skip
            stream = predictor(config).stream(target)
            for f in range(20):
                stream.push(frame(f, lambda f: (24, 8), (200, 20, 20)))
            stream.close()
            (track,) = stream.result().objects
            scores[name, shape] = track.score
    assert scores["tall", False] == scores["no background", True] == pytest.approx(200 / 255)
    assert scores["tall", True] == pytest.approx(200 / 255 * np.sqrt(63 / 575))


def test_a_duplicate_track_is_suppressed_in_the_result_not_in_the_running_scores():
    """Two proposals on the one red square, the second at half the score: the result lowers
    the second by exp(-1 / σ) (sequence IoU 1), the frames drawn meanwhile show both as they
    are; with `track_soft_nms` off the result keeps both scores."""

    def twice(outputs, num_frames, sizes):
        (found,) = oracle_postprocess(outputs, num_frames, sizes)
        return [found + [{**p, "score": p["score"] / 2} for p in found]]

    for sigma in (0.5, 0.0):
        config = dataclasses.replace(
            CONFIG, model=dataclasses.replace(CONFIG.model, track_soft_nms=sigma)
        )
        stream = Predictor(RedOracle(), twice, config).stream(Image.new("RGB", (8, 8)))
        drawn = [o for f in range(10) for r in stream.push(frame(f)) for o in r.objects]
        drawn += [o for r in stream.close() for o in r.objects]
        first, second = (o.score for o in stream.result().objects)
        assert {round(s / first, 6) for _, s, _ in drawn} == {1.0, 0.5}
        assert second / first == pytest.approx(0.5 * (np.exp(-1 / sigma) if sigma else 1))
