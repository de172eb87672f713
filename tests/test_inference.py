"""Predictor and Stream driven by ground-truth proposals (`red_oracle`): clips, latency,
linking, re-entry, and the threaded pipeline of `predict_frames` (order, bounded read-ahead,
errors)."""

import dataclasses
import threading
import time

import numpy as np
import pytest
from PIL import Image
from red_oracle import CONFIG, RED, H, RedOracle, W, frame, oracle_postprocess, predictor

from vois_cli.data import video as video_io
from vois_cli.data.video import VideoWriter
from vois_cli.data.ytvis import decode_rle
from vois_cli.errors import InputError
from vois_cli.guided_filter import guided_masks
from vois_cli.infer_files import infer_video
from vois_cli.inference import Predictor, default_checkpoint
from vois_cli.inputs import read_video
from vois_cli.linking import TrackLinker, plan_clips


@pytest.fixture(scope="module")
def square_video(tmp_path_factory):
    """A 45-frame 5 fps mp4 of `square_position`: 8 clips of T = 8 with overlap 2."""
    path = tmp_path_factory.mktemp("video") / "square.mp4"
    with VideoWriter(path, W, H, 5) as writer:
        for f in range(45):
            writer.write(frame(f))
    target = path.with_name("target.png")
    Image.fromarray(np.full((32, 32, 3), RED, np.uint8)).save(target)
    return path, target


def test_an_object_that_crosses_clip_borders_leaves_and_returns_keeps_one_id(square_video):
    result = predictor().predict(*square_video)
    assert (result.num_frames, result.height, result.width, result.fps) == (45, H, W, 5)
    assert [o.id for o in result.objects] == [1]
    (obj,) = result.objects
    assert obj.score == pytest.approx(230 / 255, abs=0.05)  # the red level, after H.264
    absent = [f for f, s in enumerate(obj.segmentations) if s is None]
    assert absent == list(range(15, 23))
    masks = obj.masks(H, W)
    for f in range(45):
        truth = frame(f)[..., 1] < 60
        iou = (masks[f] & truth).sum() / max((masks[f] | truth).sum(), 1)
        assert iou > 0.8 or (f in absent and not truth.any())


def test_predictions_are_youtube_vis_results():
    result = predictor().stream(Image.new("RGB", (8, 8)))
    for f in range(10):
        result.push(frame(f))
    result.close()
    (p,) = result.result().to_predictions(7)
    assert set(p) == {"video_id", "category_id", "score", "segmentations", "track_id"}
    assert (p["video_id"], p["category_id"], p["track_id"], len(p["segmentations"])) == (
        7,
        1,
        1,
        10,
    )
    assert p["segmentations"][0]["size"] == [H, W] and isinstance(
        p["segmentations"][0]["counts"], str
    )


def test_mask_guide_refines_the_masks_a_video_shows_not_the_ones_it_links():
    """A model whose masks lie 3 px off the red square. With `mask_guide` 6 (input px; the
    64-px frame is the input's 128 halved: radius 3 px) the frames drawn and the result hold
    the guided filter's masks of the model's; without it the model's. Linking reads the
    model's masks either way: one track."""

    def off(outputs, num_frames, sizes):
        (found,) = oracle_postprocess(outputs, num_frames, sizes)
        return [[{**p, "masks": np.roll(p["masks"], (3, 3), (1, 2))} for p in found]]

    for guide, radius in ((0.0, 0), (6.0, 3)):
        config = dataclasses.replace(
            CONFIG, model=dataclasses.replace(CONFIG.model, mask_guide=guide)
        )
        stream = Predictor(RedOracle(), off, config).stream(Image.new("RGB", (8, 8)))
        drawn = [r for f in range(12) for r in stream.push(frame(f))] + stream.close()
        (track,) = stream.result().objects
        for r in drawn:
            ((_, _, shown),) = r.objects
            given = np.roll(frame(r.index)[..., 0] == RED[0], (3, 3), (0, 1))
            expected = guided_masks(r.image, [given], radius)[0] if radius else given
            np.testing.assert_array_equal(shown, expected)
            np.testing.assert_array_equal(decode_rle(track.segmentations[r.index], H, W), shown)
        assert not radius or not np.array_equal(shown, given)


def test_the_stream_decides_frames_in_order_one_clip_late_at_most():
    stream = predictor().stream(Image.new("RGB", (8, 8)))
    decided_after = {}
    for f in range(45):
        for d in stream.push(frame(f)):
            decided_after[d.index] = f
    tail = [d.index for d in stream.close()]
    assert list(decided_after) == list(range(44)) and tail == [44]
    # clips end at frames 7, 13, 19, …, 43: a frame is out as soon as the clip deciding it ran
    assert decided_after[0] == 7 and decided_after[7] == 7 and decided_after[8] == 13
    assert all(decided_after[f] - f < CONFIG.model.num_frames for f in decided_after)


def test_each_decided_frame_carries_its_image_and_objects():
    stream = predictor().stream(Image.new("RGB", (8, 8)))
    decided = [d for f in range(20) for d in stream.push(frame(f))] + stream.close()
    assert [d.index for d in decided] == list(range(20))
    assert all(np.array_equal(d.image, frame(d.index)) for d in decided)
    assert [len(d.objects) for d in decided] == [1] * 15 + [0] * 5
    track_id, score, mask = decided[3].objects[0]
    assert (track_id, mask.shape, int(mask.sum())) == (1, (H, W), 256)
    assert score == pytest.approx(230 / 255, abs=1e-6)


def test_a_short_video_is_filled_cyclically_and_cut_back():
    p = predictor()
    stream = p.stream(Image.new("RGB", (8, 8)))
    for f in range(3):
        stream.push(frame(f, lambda f: (8 * f, 8 * f)))
    decided = stream.close()
    (clip,) = p.model.clips
    assert clip.tolist() == [clip[i % 3].item() for i in range(8)]  # frames 0 1 2 0 1 2 0 1
    assert [d.index for d in decided] == [0, 1, 2]
    assert len(stream.result().objects[0].segmentations) == 3


def test_clips_run_by_the_stream_follow_plan_clips():
    p = predictor(overlap=3)
    stream = p.stream(Image.new("RGB", (8, 8)))
    # each frame's grey level encodes its index, so the clips the model saw can be read back
    for f in range(23):
        stream.push(np.full((H, W, 3), 10 * f, np.uint8))
    stream.close()
    seen = [[round((v.item() * 0.229 + 0.485) * 255 / 10) for v in c] for c in p.model.clips]
    assert seen == [list(range(s, s + 8)) for s in (0, 5, 10, 15)]


def test_only_the_best_max_objects_tracks_are_kept_and_ties_keep_the_earlier():
    # a square shows for 3 frames every 40 frames in alternating far corners: a new track each
    # time (re-entry is 25 frames at most), scored by its red level
    corners = [(0, 0), (48, 80)]
    levels = [200, 250, 220, 250, 190]
    stream = predictor(max_objects=3).stream(Image.new("RGB", (8, 8)))
    for f in range(200):
        position = lambda f: corners[(f // 40) % 2] if f % 40 < 3 else None  # noqa: E731
        stream.push(frame(f, position, (levels[f // 40], 20, 20)))
    stream.close()
    objects = stream.result().objects
    assert [o.id for o in objects] == [2, 3, 4]
    assert [round(o.score * 255) for o in objects] == [250, 220, 250]
    assert len(stream._finished) <= 3  # memory: finished tracks beyond the best are dropped


def test_pushing_frames_of_another_size_or_type_is_an_error():
    stream = predictor().stream(Image.new("RGB", (8, 8)))
    stream.push(frame(0))
    with pytest.raises(ValueError, match="differs"):
        stream.push(np.zeros((H + 2, W, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        stream.push(np.zeros((H, W, 3), np.float32))


def test_a_folder_of_frames_is_read_in_name_order(tmp_path):
    for f in (2, 0, 1):
        Image.fromarray(frame(f)).save(tmp_path / f"{f:05d}.png")
    frames, total = read_video(tmp_path, 5)
    assert total == 3 and [np.array_equal(a, frame(f)) for f, a in enumerate(frames)] == [True] * 3


def test_bad_inputs_are_input_errors(tmp_path, square_video):
    p = predictor()
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    not_image = tmp_path / "target.jpg"
    not_image.write_text("not an image")
    with pytest.raises(InputError, match="empty"):
        p.predict(empty, square_video[1])
    with pytest.raises(InputError, match="not a readable image"):
        p.predict(square_video[0], not_image)
    folder = tmp_path / "no-frames"
    folder.mkdir()
    with pytest.raises(InputError, match="holds no frames"):
        p.predict(folder, square_video[1])


def test_default_checkpoint_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VOIS_CHECKPOINT", raising=False)
    with pytest.raises(InputError, match="dvc repro"):
        default_checkpoint()
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"x")
    monkeypatch.setenv("VOIS_CHECKPOINT", str(ckpt))
    assert default_checkpoint() == ckpt


def test_max_frames_stops_decoding_early(square_video):
    result = predictor().predict(*square_video, max_frames=10)
    assert result.num_frames == 10 and len(result.objects[0].segmentations) == 10


def test_predict_frames_gives_what_push_and_close_give():
    frames = [frame(f) for f in range(30)]
    live = predictor().stream(Image.new("RGB", (8, 8)))
    pushed = [d.index for f in frames for d in live.push(f)] + [d.index for d in live.close()]
    seen, progress = [], []
    result = predictor().predict_frames(
        iter(frames), Image.new("RGB", (8, 8)), 30, lambda d, t: progress.append((d, t)),
        lambda d: seen.append(d.index),
    )  # fmt: skip
    assert seen == pushed == list(range(30))
    assert progress[-1] == (30, 30) and [d for d, _ in progress] == sorted(d for d, _ in progress)
    assert result == live.result()


def test_the_pipeline_reads_at_most_a_few_clips_ahead_of_what_it_decided():
    """Memory stays flat: decoding waits for the model, the model for post-processing."""
    pulled, ahead = [0], []

    def source():
        for f in range(120):
            pulled[0] += 1
            yield frame(f % 40)

    def slow_writer(decided):
        time.sleep(0.002)
        ahead.append(pulled[0] - decided.index)

    predictor().predict_frames(source(), Image.new("RGB", (8, 8)), on_frame=slow_writer)
    T = CONFIG.model.num_frames
    # the frames queue, the buffer, a clip in the model and one in each post-processing stage
    assert len(ahead) == 120 and max(ahead) <= 5 * T + 2


@pytest.mark.parametrize("where", ["source", "model", "masks", "on_frame"])
def test_an_error_in_any_stage_reaches_the_caller_and_stops_every_thread(where):
    class Broken(Exception):
        pass

    def source():
        for f in range(60):
            if where == "source" and f == 20:
                raise Broken
            yield frame(f)

    def on_frame(decided):
        if where == "on_frame" and decided.index == 10:
            raise Broken

    p = predictor()
    if where == "model":
        p.model.forward = lambda video, target: (_ for _ in ()).throw(Broken())
    if where == "masks":
        p.postprocess = lambda outputs, frames, sizes: (_ for _ in ()).throw(Broken())
    threads = threading.active_count()
    with pytest.raises(Broken):
        p.predict_frames(source(), Image.new("RGB", (8, 8)), on_frame=on_frame)
    assert threading.active_count() == threads


def test_infer_video_probes_the_video_once(square_video, tmp_path, monkeypatch):
    calls = []
    probe = video_io.probe
    monkeypatch.setattr(video_io, "probe", lambda path: calls.append(path) or probe(path))
    infer_video(*square_video, tmp_path / "p.json", predictor())
    assert len(calls) == 1 and (tmp_path / "p.json").is_file()


def test_a_stream_links_with_the_linker_it_is_given():
    class Counting(TrackLinker):
        def __init__(self):
            super().__init__()
            self.frames = []

        def link(self, frames, masks):
            self.frames.append(frames)
            return super().link(frames, masks)

    results = []
    for linker in (None, Counting()):
        stream = predictor().stream(Image.new("RGB", (8, 8)), linker)
        for f in range(20):
            stream.push(frame(f))
        stream.close()
        results.append(stream.result())
    assert linker.frames == [c.frames for c in plan_clips(20, 8, 2)]
    assert results[0] == results[1]
