"""benchmarks/object_motion.py: link accuracy and linked-track AP of true masks on a hand-made
case where only the motion model keeps identities apart."""

import numpy as np
import object_motion
import pytest

from vois_cli.data.ytvis import Annotations, Video, encode_rle, write_annotations

HEIGHT, WIDTH = 16, 48


def square(x: int | None) -> dict | None:
    """RLE of an 8 × 8 square with columns [x, x + 8), or None (absent)."""
    if x is None:
        return None
    mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
    mask[4:12, x : x + 8] = True
    return encode_rle(mask)


@pytest.fixture
def crossing(tmp_path):
    """A moves 12 px a frame; B appears in frame 2 just right of where A was in frame 1, so
    IoU and the nearest centroid link A to B there, and A's own velocity does not."""
    video = Video(1, "v", WIDTH, HEIGHT, 3, ["0.jpg", "1.jpg", "2.jpg"])
    objects = [[0, 12, 24], [None, None, 13]]
    annotations = [
        {
            "id": k + 1,
            "video_id": 1,
            "category_id": 1,
            "segmentations": [square(x) for x in xs],
            "areas": [64 if x is not None else None for x in xs],
            "role": "target",
        }
        for k, xs in enumerate(objects)
    ]
    path = tmp_path / "test_all.json"
    write_annotations(path, Annotations([video], annotations))
    return path


def test_only_the_velocity_linker_keeps_a_fast_object_off_a_newcomer(crossing):
    figures = object_motion.motion(crossing, 8)
    links = figures["links"]  # A's two links, frame 0 -> 1 and 1 -> 2
    assert links["targets_mask_iou"] == 0.0  # A's squares 12 px apart never overlap
    assert links["targets_centroid"] == 0.5  # right, then to B, nearer A's last place
    assert links["targets_centroid_velocity"] == 1.0
    # velocity: A's track and B's track are the true ones, every threshold matched
    assert figures["linked"]["centroid_velocity"]["AP"] == pytest.approx(1.0)
    assert figures["linked"]["centroid_velocity"]["tracks"] == 2
    assert figures["linked"]["mask_iou"]["AP"] < 1.0


def test_moves_are_measured_in_object_sides(crossing):
    figures = object_motion.motion(crossing, 8)
    assert figures["shift"]["median"] == pytest.approx(12 / 8)  # 12 px for an 8-px side
    assert figures["iou"]["median"] == 0.0  # 12 px apart, the 8-px squares do not overlap


def test_vois_clip_linking_is_exact_with_true_proposals_and_not_with_centroid_slots(crossing):
    linked = object_motion.motion(crossing, 2)["linked"]  # clips (0, 1) and (1, 2)
    assert linked["clips_true"]["AP"] == pytest.approx(1.0)  # joined on frame 1's true mask
    assert linked["clips_true"]["tracks"] == 2
    assert linked["clips_centroid"]["AP"] < 1.0  # the slot chain goes from A to B in frame 2
