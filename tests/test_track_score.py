"""The video's final track scores: Gaussian Soft-NMS over whole tracks (`track_soft_nms`) and
each track's agreement with the others (`score_agreement`)."""

import numpy as np
import pytest

from vois_cli.config import preset
from vois_cli.track_score import Track, TrackScorer


def scorer(soft_nms: float, agreement: bool = False) -> TrackScorer:
    """`tiny`'s scorer with the per-track factors off: a track scores its proposals' mean."""
    model = preset(
        "tiny",
        model={"score_coverage": False, "score_consistency": False, "score_shape": False,
               "track_soft_nms": soft_nms, "score_agreement": agreement},
    ).model  # fmt: skip
    return TrackScorer(model, np.full((8, 8, 3), 255, np.uint8))


def square(top: int, left: int) -> np.ndarray:
    mask = np.zeros((16, 16), bool)
    mask[top : top + 4, left : left + 4] = True
    return mask


def track(scorer: TrackScorer, score: float, at: tuple[int, int], frames: range) -> Track:
    t = Track()
    scorer.link(t, score, len(frames))
    for f in frames:
        scorer.add(t, f, square(*at))
    return t


def final(s: TrackScorer, tracks: list[Track], frames: int) -> list[float]:
    """`s.final` over a video of `frames` frames, as `Stream.result` calls it."""
    return s.final(tracks, [[t.segmentations.get(f) for f in range(frames)] for t in tracks])


def final_scores(s: TrackScorer) -> dict[str, float]:
    """A (0.9) and the same square for half its frames, B (0.8); D (0.85), the square shifted
    by half its side; C (0.5), apart from all: their final scores over 4 frames."""
    tracks = {
        "A": track(s, 0.9, (0, 0), range(4)),
        "B": track(s, 0.8, (0, 0), range(2)),
        "C": track(s, 0.5, (8, 8), range(4)),
        "D": track(s, 0.85, (0, 2), range(4)),
    }
    return dict(zip(tracks, final(s, list(tracks.values()), 4), strict=True))


def test_each_track_is_lowered_by_its_sequence_iou_with_every_better_one_picked_before_it():
    """A (0.9) is picked first; B, the same square in half its frames (sequence IoU 1/2 with
    A), and D, a square shifted by half its side (1/3 with A, 1/5 with B), are lowered by
    exp(-IoU² / σ); C, apart from all, keeps its score and is picked before B."""
    expected = {
        "A": 0.9,
        "B": 0.8 * np.exp(-(0.5**2 + 0.2**2) / 0.5),
        "C": 0.5,
        "D": 0.85 * np.exp(-((1 / 3) ** 2) / 0.5),
    }
    for sigma, want in ((0.5, expected), (0.0, {"A": 0.9, "B": 0.8, "C": 0.5, "D": 0.85})):
        s = scorer(sigma)
        got = final_scores(s)
        assert got == pytest.approx(want)


def test_each_track_is_raised_by_its_sequence_ious_with_the_others_after_soft_nms():
    """The tracks above: A overlaps B by 1/2 and D by 1/3, B overlaps D by 1/5, C none."""
    agreement = {"A": 1 + 1 / 2 + 1 / 3, "B": 1 + 1 / 2 + 1 / 5, "C": 1.0, "D": 1 + 1 / 3 + 1 / 5}
    suppressed = {
        "A": 0.9,
        "B": 0.8 * np.exp(-(0.5**2 + 0.2**2) / 0.5),
        "C": 0.5,
        "D": 0.85 * np.exp(-((1 / 3) ** 2) / 0.5),
    }
    alone = {"A": 0.9, "B": 0.8, "C": 0.5, "D": 0.85}
    for sigma, before in ((0.5, suppressed), (0.0, alone)):
        s = scorer(sigma, agreement=True)
        got = final_scores(s)
        assert got == pytest.approx({k: v * agreement[k] for k, v in before.items()})


def test_a_lone_track_or_tracks_that_never_overlap_keep_their_scores():
    s = scorer(0.5, agreement=True)
    (alone,) = final(s, [track(s, 0.7, (0, 0), range(3))], 3)
    apart = final(s, [track(s, 0.7, (0, 0), range(3)), track(s, 0.6, (0, 0), range(3, 6))], 6)
    assert alone == pytest.approx(0.7) and apart == pytest.approx([0.7, 0.6])


def test_tiny_suppresses_duplicate_tracks_and_counts_agreement_and_the_paper_preset_does_not():
    tiny, paper = preset("tiny").model, preset("paper").model
    assert (tiny.track_soft_nms, tiny.score_agreement) == (0.5, True)
    assert (paper.track_soft_nms, paper.score_agreement) == (0.0, False)
