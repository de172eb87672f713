"""SynthLive `default`, the `dvc repro` benchmark, generated once (every clip's scene and
annotated masks, without encoding the videos): it holds docs/design.md#synthlive's rules, and
instances of the target leave the view and re-enter it."""

import pytest

from vois_cli.data.synth import STRIDE, SYNTH_PRESETS, clip_scene

SPEC = SYNTH_PRESETS["default"]


@pytest.fixture(scope="module")
def clips():
    """Per clip: the roles of its products, its source frame count and, per instance of the
    target and annotated frame, (visible, touching the frame's border)."""
    out = []
    for index in range(SPEC.clips):
        scene, annotated = clip_scene(SPEC, 0, index)
        instances = []
        for k in scene.relevant:
            masks = [labels == k for _, labels in annotated]
            instances.append(
                [(bool(m.any()), bool(m[[0, -1]].any() or m[:, [0, -1]].any())) for m in masks]
            )
        out.append(([track.role for track in scene.tracks], scene.num_frames, instances))
    return out


def leaves_and_reenters(frames: list[tuple[bool, bool]]) -> bool:
    """Absent for a while between two visible frames at the border: it left and came back
    (an instance hidden behind another product comes back inside the frame)."""
    visible = [i for i, (seen, _) in enumerate(frames) if seen]
    return any(
        b > a + 1 and frames[a][1] and frames[b][1]
        for a, b in zip(visible, visible[1:], strict=False)
    )


def test_every_clip_follows_the_benchmark_rules(clips):
    for roles, num_frames, instances in clips:
        assert 1 <= roles.count("target") <= 3 and 1 <= roles.count("negative") <= 4
        assert SPEC.frames[0] <= num_frames <= SPEC.frames[1]
        assert all(len(frames) == -(-num_frames // STRIDE) <= 36 for frames in instances)
        assert all(any(seen for seen, _ in frames) for frames in instances)  # each seen once


def test_instances_leave_the_view_and_reenter_it(clips):
    instances = [frames for _, _, per_clip in clips for frames in per_clip]
    returns = sum(map(leaves_and_reenters, instances))
    assert returns >= len(clips) // 4, f"{returns} of {len(instances)} instances leave and return"
    edge, inside, gone = (True, True), (True, False), (False, False)
    assert leaves_and_reenters([inside, edge, gone, gone, edge])
    assert not leaves_and_reenters([edge, inside, gone, inside, edge])  # hidden, not gone
    assert not leaves_and_reenters([gone, edge, edge, gone])  # enters, leaves: no return
