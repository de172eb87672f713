"""What `vois infer --overlay/--masks` draw, checked against its JSON: the mask PNGs hold the
JSON's ids on exactly the JSON's masks (the higher score on top), `--threshold` leaves the
lower-scoring objects out of both, and the overlay blends each shown mask in its id's colour
under the target inset. One clip of T = 8 frames, so each object's running score is final
(with `track_soft_nms` and `score_agreement` off: they re-score the JSON's objects once the
video is done, after the frames were drawn)."""

import json

import numpy as np
import pytest
from PIL import Image

from vois_cli.checkpoint import load_checkpoint, save_checkpoint
from vois_cli.data.video import VideoWriter, read_frames
from vois_cli.data.ytvis import decode_rle
from vois_cli.infer_files import infer_video
from vois_cli.overlay import ALPHA, colour, draw, target_inset

WIDTH, HEIGHT, FRAMES = 96, 64, 8
RED = (220, 30, 30)
VISIBLE = 24  # a difference between renderings that x264 at its default quality keeps


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """(video, target): a red block drifting over flat grey, 8 frames at 5 fps; the product."""
    root = tmp_path_factory.mktemp("overlay")
    with VideoWriter(root / "v.mp4", WIDTH, HEIGHT, 5) as writer:
        for f in range(FRAMES):
            image = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
            image[16:40, 8 + 4 * f : 32 + 4 * f] = RED
            writer.write(image)
    Image.new("RGB", (40, 60), RED).save(root / "target.png")
    return root / "v.mp4", root / "target.png"


def _infer(checkpoint, inputs, out, threshold):
    """`vois infer`'s work (`infer_video`) with every output into folder `out`; its JSON."""
    video, target = inputs
    outputs = {"overlay": out / "o.mp4", "masks": out / "m", "threshold": threshold}
    infer_video(video, target, out / "p.json", checkpoint, "cpu", **outputs)
    return json.loads((out / "p.json").read_text())


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint, tmp_path_factory):
    """The seed-0 `tiny` network without `track_soft_nms` and `score_agreement`."""
    saved = load_checkpoint(tiny_checkpoint)
    del saved["format"], saved["version"]
    saved["config"]["model"].update(track_soft_nms=0.0, score_agreement=False)
    path = tmp_path_factory.mktemp("no_soft_nms") / "tiny.pt"
    save_checkpoint(path, **saved)
    return path


@pytest.fixture(scope="module")
def runs(checkpoint, inputs, tmp_path_factory):
    """{threshold: (out folder, objects)} for threshold 0 and one between the scores."""
    everything = tmp_path_factory.mktemp("all")
    objects = _infer(checkpoint, inputs, everything, 0)
    scores = sorted({o["score"] for o in objects})
    assert len(scores) >= 2, "the seed-0 model should propose objects of different scores"
    middle = (scores[len(scores) // 2 - 1] + scores[len(scores) // 2]) / 2
    some = tmp_path_factory.mktemp("some")
    assert _infer(checkpoint, inputs, some, middle) == objects  # the JSON keeps them all
    return {0: (everything, objects), middle: (some, objects)}


def _expected_ids(objects, frame, threshold):
    """The id map the PNG of `frame` must hold: shown masks, the higher score drawn last."""
    ids = np.zeros((HEIGHT, WIDTH), np.uint16)
    for o in sorted(objects, key=lambda o: o["score"]):
        if o["score"] >= threshold:
            ids[decode_rle(o["segmentations"][frame], HEIGHT, WIDTH)] = o["track_id"]
    return ids


def test_mask_pngs_hold_the_json_ids_on_the_json_masks_above_the_threshold(runs):
    for threshold, (out, objects) in runs.items():
        shown = set()
        for f in range(FRAMES):
            ids = np.asarray(Image.open(out / "m" / f"{f:05d}.png"))
            np.testing.assert_array_equal(ids, _expected_ids(objects, f, threshold))
            shown |= set(np.unique(ids).tolist()) - {0}
        visible = {o["track_id"] for o in objects if any(o["segmentations"])}
        # an object above the threshold may still be hidden under higher-scoring ones
        assert shown <= {o["track_id"] for o in objects if o["score"] >= threshold} & visible
    assert 0 < len(shown) < len(visible)  # the threshold left some object out


def _closer(frame, right, wrong, what):
    """Where the two renderings differ by more than x264's loss (a channel by VISIBLE levels
    or more), the decoded frame is much nearer the right one."""
    differ = np.abs(right.astype(int) - wrong).max(axis=2) >= VISIBLE
    if differ.sum() < 20:
        return False
    near = np.abs(frame - right.astype(float))[differ].mean()
    assert near < 0.7 * np.abs(frame - wrong.astype(float))[differ].mean(), what
    return True


def test_the_overlay_draws_the_shown_objects_under_the_target_inset(runs, inputs):
    """Each frame is `draw` of the decoded frame with the JSON's objects above the threshold
    in their ids' colours under the target inset, up to x264's loss: it is much nearer that
    than a rendering with no objects, with all of them, with other ids or without the inset."""
    video, target = inputs
    sources = list(read_frames(video))
    inset = target_inset(Image.open(target), HEIGHT)
    compared = set()
    for threshold, (out, objects) in runs.items():
        drawn = list(read_frames(out / "o.mp4"))
        assert len(drawn) == FRAMES
        for f, (source, frame) in enumerate(zip(sources, drawn, strict=True)):
            every = [
                (o["track_id"], o["score"], decode_rle(o["segmentations"][f], HEIGHT, WIDTH))
                for o in sorted(objects, key=lambda o: o["score"])
            ]
            shown = [o for o in every if o[1] >= threshold]
            right, frame = draw(source, shown, inset), frame.astype(float)
            wrong = {
                "no objects": draw(source, [], inset),
                "every object": draw(source, every, inset),
                "other ids": draw(source, [(i + 1, s, m) for i, s, m in shown], inset),
                "no inset": draw(source, shown),
            }
            for what, image in wrong.items():
                if _closer(frame, right, image, (threshold, f, what)):
                    compared.add(what)
    assert compared == {"no objects", "every object", "other ids", "no inset"}


def test_draw_blends_the_mask_in_its_colour_labels_it_and_pastes_the_inset():
    frame = np.full((HEIGHT, WIDTH, 3), 100, np.uint8)
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[20:60, 10:70] = True
    inset = target_inset(Image.new("RGB", (40, 60), RED), HEIGHT)
    out = draw(frame, [(3, 0.9, mask)], inset).astype(int)
    blend = np.round((1 - ALPHA) * 100 + ALPHA * np.array(colour(3)))
    np.testing.assert_array_equal(out[40:60, 30:70], np.broadcast_to(blend, (20, 40, 3)))
    assert (out[20:24, 10:20] == colour(3)).all(axis=2).any()  # the label's box
    assert (out[:, :8] == 100).all() and (out[60:] == 100).all()  # nothing outside the mask
    np.testing.assert_array_equal(out[0, WIDTH - inset.width :], np.asarray(inset)[0])
    np.testing.assert_array_equal(out[8, WIDTH - 4], RED)
