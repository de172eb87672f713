"""Clip planning and the cross-clip linker on synthetic proposals."""

import numpy as np
import pytest

from vois_cli.linking import (
    Clip,
    TrackLinker,
    _centroid,
    default_overlap,
    plan_clips,
    sequence_iou,
)

H, W = 40, 60


def _square(y, x, size=8):
    m = np.zeros((H, W), bool)
    if y is not None:
        m[max(0, y) : max(0, y + size), max(0, x) : max(0, x + size)] = True
    return m


def _proposal(frames, position):
    """bool (len(frames), H, W): a square at position(f) = (y, x) or None when absent."""
    return np.stack([_square(*(position(f) or (None, None))) for f in frames])


def test_plan_of_a_video_that_ends_on_a_clip_border():
    assert plan_clips(20, 8, 2) == [
        Clip(tuple(range(0, 8)), range(0, 8)),
        Clip(tuple(range(6, 14)), range(8, 14)),
        Clip(tuple(range(12, 20)), range(14, 20)),
    ]


def test_last_clip_covers_the_last_T_frames_when_the_stride_overshoots():
    clips = plan_clips(21, 8, 2)
    assert [c.frames[0] for c in clips] == [0, 6, 12, 13]
    assert clips[-1] == Clip(tuple(range(13, 21)), range(20, 21))


def test_short_video_repeats_its_frames_cyclically():
    assert plan_clips(5, 8, 2) == [Clip((0, 1, 2, 3, 4, 0, 1, 2), range(0, 5))]
    assert plan_clips(8, 8, 2) == [Clip(tuple(range(8)), range(0, 8))]


@pytest.mark.parametrize("n", [1, 7, 8, 9, 36, 100, 1001])
def test_every_frame_is_decided_by_exactly_one_clip_that_contains_it(n):
    clips = plan_clips(n, 8, 2)
    owned = [f for c in clips for f in c.own]
    assert owned == list(range(n))
    assert all(set(c.own) <= set(c.frames) and len(c.frames) == 8 for c in clips)
    assert all(
        len(set(a.frames) & set(b.frames)) >= 2 for a, b in zip(clips, clips[1:], strict=False)
    )


def test_default_overlap():
    assert [default_overlap(t) for t in (2, 3, 4, 8, 16, 36)] == [1, 1, 1, 2, 2, 4]
    with pytest.raises(ValueError):
        plan_clips(10, 8, 8)


def test_sequence_iou_sums_over_frames():
    a = np.zeros((1, 2, 4, 4), bool)
    b = np.zeros((2, 2, 4, 4), bool)
    a[0, 0, :2] = True  # 8 px in frame 0
    b[0, 0, :1] = True  # 4 px inside a
    b[0, 1, :1] = True  # 4 px where a is empty
    iou = sequence_iou(a, b)
    assert iou.shape == (1, 2)
    assert iou[0, 0] == pytest.approx(4 / 12)
    assert iou[0, 1] == 0.0  # b[1] empty everywhere


def test_an_object_moving_across_clip_borders_keeps_its_id():
    linker = TrackLinker()
    names = []
    for k, clip in enumerate(plan_clips(40, 8, 2)):
        jitter = k % 2  # each clip sees the object one pixel off, like a real model
        moving = _proposal(clip.frames, lambda f, j=jitter: (10 + j, f))  # one pixel a frame
        still = _proposal(clip.frames, lambda f, j=jitter: (30, 50 - j))
        order = ["moving", "still"] if k % 2 else ["still", "moving"]
        proposals = {"moving": moving, "still": still}
        ids = linker.link(clip.frames, [proposals[name] for name in order])
        names.append(dict(zip(order, ids, strict=True)))
    assert len(names) == 7
    assert {n["still"] for n in names} == {1} and {n["moving"] for n in names} == {2}


def test_a_proposal_that_does_not_overlap_any_track_gets_a_new_id():
    linker = TrackLinker()
    assert linker.link((0, 1, 2), [_proposal((0, 1, 2), lambda f: (0, 0))]) == [1]
    assert linker.link((2, 3, 4), [_proposal((2, 3, 4), lambda f: (30, 50))]) == [2]


def test_low_overlap_is_below_the_threshold():
    linker = TrackLinker(iou_threshold=0.5, reentry_distance=0.0)
    linker.link((0, 1), [_proposal((0, 1), lambda f: (0, 0))])
    # shifted by 4 px: IoU 32 / 96 = 1/3 on the shared frame
    assert linker.link((1, 2), [_proposal((1, 2), lambda f: (0, 4))]) == [2]


def test_an_object_that_leaves_and_returns_within_the_window_keeps_its_id():
    linker = TrackLinker(reentry_window=25)
    present = lambda f: None if 10 <= f < 20 else (10, 20)  # noqa: E731
    ids = set()
    for clip in plan_clips(40, 8, 2):
        proposals = [_proposal(clip.frames, present)]
        if any(present(f) for f in clip.frames):
            ids.update(linker.link(clip.frames, proposals))
        else:
            linker.link(clip.frames, [])
    assert ids == {1}


def test_return_after_the_window_or_far_away_is_a_new_object():
    late = TrackLinker(reentry_window=5)
    assert late.link((0, 1), [_proposal((0, 1), lambda f: (10, 20))]) == [1]
    late.link((1, 2, 3, 4, 5, 6, 7), [])
    assert late.link((7, 8), [_proposal((7, 8), lambda f: (10, 20))]) == [2]
    assert late.expired(8) == [1]

    far = TrackLinker(reentry_distance=0.5)
    assert far.link((0, 1), [_proposal((0, 1), lambda f: (0, 0))]) == [1]
    far.link((1, 2), [])
    # diagonal 72.1 px; the centroids are 30 and 50 px apart → 0.76 of it
    assert far.link((2, 3), [_proposal((2, 3), lambda f: (30, 50))]) == [2]


def test_two_returning_objects_are_matched_by_position():
    linker = TrackLinker()
    left = lambda f: (10, 2)  # noqa: E731
    right = lambda f: (10, 50)  # noqa: E731
    assert linker.link((0, 1), [_proposal((0, 1), left), _proposal((0, 1), right)]) == [1, 2]
    linker.link((1, 2), [])
    assert linker.link((2, 3), [_proposal((2, 3), right), _proposal((2, 3), left)]) == [2, 1]


def test_objects_visible_at_the_same_time_are_never_merged_by_reentry():
    linker = TrackLinker(iou_threshold=0.5)
    a = _proposal((0, 1, 2), lambda f: (10, 10))
    assert linker.link((0, 1, 2), [a]) == [1]
    # the track is still visible at frame 2; a second object appearing at frame 2 is new
    both = [_proposal((2, 3), lambda f: (10, 10)), _proposal((2, 3), lambda f: (10, 30))]
    assert linker.link((2, 3), both) == [1, 2]


def test_centroid_is_the_mean_pixel_coordinate_to_the_last_bit():
    # re-entry compares centroids against a threshold: any rounding change could move an id
    rng = np.random.default_rng(0)
    for density in (1e-4, 0.03, 0.5, 1.0):
        mask = rng.random((361, 643)) < density
        mask[180, 321] = True
        ys, xs = np.nonzero(mask)
        assert _centroid(mask) == (float(ys.mean()), float(xs.mean()))
