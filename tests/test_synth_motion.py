"""SynthLive `default`, the `dvc repro` benchmark, generated once (every clip's scene and
annotated masks, without encoding the videos): it holds docs/design.md#synthlive's rules, and
instances of the target leave the view and re-enter it."""

import pytest

from vois_cli.data.synth import STRIDE, SYNTH_PRESETS, clip_scene

SPEC = SYNTH_PRESETS["default"]


@pytest.fixture(scope="module")
def clips():
    """Per clip: (roles of its products, per relevant instance its visibility per frame)."""
    out = []
    for index in range(SPEC.clips):
        scene, annotated = clip_scene(SPEC, 0, index)
        visible = [[bool((labels == k).any()) for _, labels in annotated] for k in scene.relevant]
        out.append(([track.role for track in scene.tracks], visible, scene.num_frames))
    return out


def _reenters(visible: list[bool]) -> bool:
    """Absent in some frame between two frames where it is present."""
    seen = [i for i, v in enumerate(visible) if v]
    return not all(visible[seen[0] : seen[-1] + 1])


def test_every_clip_follows_the_benchmark_rules(clips):
    for roles, visible, num_frames in clips:
        assert 1 <= roles.count("target") <= 3 and 1 <= roles.count("negative") <= 4
        assert SPEC.frames[0] <= num_frames <= SPEC.frames[1]
        assert all(len(v) == -(-num_frames // STRIDE) <= 36 for v in visible)  # 5 fps
        assert all(any(v) for v in visible)  # every instance is visible at least once


def test_instances_leave_the_view_and_reenter_it(clips):
    instances = [v for _, visible, _ in clips for v in visible]
    reentries = sum(map(_reenters, instances))
    assert reentries >= len(clips) // 4, f"{reentries} of {len(instances)} instances re-enter"
    assert not _reenters([False, True, True, False]) and _reenters([True, False, True])
