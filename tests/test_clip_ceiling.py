"""benchmarks/clip_ceiling.py: the per-clip oracle and the clip joins on a
hand-made case (masks are 1 × 8 rows, a target two pixels wide moving two pixels a frame)."""

import numpy as np
from clip_ceiling import RecordingLinker, clip_oracle, joins

from vois_cli.linking import TrackLinker


def row(*spans) -> np.ndarray:
    """(len(spans), 1, 8) bool: frame k lights columns [a, b) of spans[k], or none if None."""
    masks = np.zeros((len(spans), 1, 8), dtype=bool)
    for k, span in enumerate(spans):
        if span is not None:
            masks[k, 0, span[0] : span[1]] = True
    return masks


TRUTH = row((0, 2), (2, 4), (4, 6), (6, 8))
A = row((0, 2), (2, 4), (0, 2))  # on the target in frames 0-1, off it in frame 2
B = row(None, None, (4, 6))  # on it in frame 2 only
C = row((2, 4), (4, 6), (6, 8))  # clip 2 (frames 1-3): on it throughout


def test_the_clip_oracle_picks_one_proposal_per_clip():
    clips = [((0, 1, 2), [A, B], [1, 2]), ((1, 2, 3), [C], [3])]
    # clip 1 decides frames 0-2: A (4 of 8 px) beats B (2 of 6); clip 2 decides frame 3: C
    assert clip_oracle(clips, TRUTH) == 6 / 10


def test_a_boundary_is_joined_taken_by_another_proposal_or_apart():
    exact = row((0, 2), (2, 4), (4, 6))
    assert joins([((0, 1, 2), [A, B], [1, 2]), ((1, 2, 3), [C], [1])], TRUTH) == (
        ["joined"],
        [1, 1],
    )
    # clip 1's best proposal covers the shared frames as C does, yet C got another id
    kinds, groups = joins([((0, 1, 2), [exact, A], [1, 2]), ((1, 2, 3), [C], [3])], TRUTH)
    assert kinds == ["other_join"]
    assert groups == [2, 1]  # A lies at sequence IoU 0.5 with `exact`; C is alone
    assert joins([((0, 1, 2), [A, B], [1, 2]), ((1, 2, 3), [C], [3])], TRUTH)[0] == ["apart"]


def test_the_recording_linker_links_as_the_track_linker_does():
    recording, plain = RecordingLinker(), TrackLinker()
    for frames, masks in (((0, 1, 2), [A, B]), ((1, 2, 3), [C])):
        assert recording.link(frames, masks) == plain.link(frames, masks)
    assert [c[0] for c in recording.clips] == [(0, 1, 2), (1, 2, 3)]
