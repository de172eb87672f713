"""Video io through ffmpeg-python and imageio-ffmpeg's binary: probe, 5 fps decode, H.264 writer.

Annotated frame i is source frame round(i * fps / 5). The selection runs inside
ffmpeg (a `select` expression in exact integer arithmetic), so only the annotated frames
leave the decoder and memory stays bounded by one frame, whatever the video's length.
There is no ffprobe in imageio-ffmpeg: `probe` stream-copies the packets to `framecrc`,
which lists every packet with its duration in the stream's exact time base.
"""

from __future__ import annotations

import collections
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import ffmpeg
import imageio_ffmpeg
import numpy as np

from vois_cli.atomic import atomic_path
from vois_cli.errors import InputError

ANNOTATION_FPS = 5  # annotated frames per second of video (docs/design.md#annotated-frames)
MAX_ANNOTATED_FRAMES = 36  # LiveVideos clips carry at most this many annotated frames

_ROTATION = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)
_STREAM = re.compile(r"Stream #0:\d+.*?: Video: .*?, (\d+)x(\d+)")
_TIME_BASE = re.compile(r"^#tb 0: (\d+)/(\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class VideoInfo:
    """What decoding will produce: frames of `height × width` (display rotation applied)."""

    width: int
    height: int
    fps: Fraction  # exact source frame rate, e.g. Fraction(30000, 1001)
    num_frames: int  # source frames (video packets)
    rotation: int  # display rotation in degrees, already applied to width/height


def _binary() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def _unreadable(path: Path, stderr: str) -> InputError:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    reason = lines[-1] if lines else "ffmpeg failed"
    return InputError(
        path, f"not a readable video ({reason})", "check the file or re-encode it as mp4"
    )


def probe(path: str | Path) -> VideoInfo:
    """Frame rate, decoded size and frame count of the first video stream of `path`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "video not found", "check the path")
    if path.stat().st_size == 0:
        raise InputError(path, "video file is empty (0 bytes)", "re-copy or re-encode the video")
    cmd = (
        ffmpeg.input(str(path))
        .output("pipe:", map="0:v:0", c="copy", format="framecrc")
        .global_args("-nostdin", "-hide_banner")
        .compile(cmd=_binary())
    )
    run = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    stream = _STREAM.search(run.stderr)
    time_base = _TIME_BASE.search(run.stdout)
    if run.returncode != 0 or stream is None or time_base is None:
        raise _unreadable(path, run.stderr)
    packets = [line.split(",") for line in run.stdout.splitlines() if line and line[0] != "#"]
    durations = [int(p[3]) for p in packets if int(p[3]) > 0]
    if not durations:
        raise InputError(path, "video has no frames", "re-encode the video")
    duration = collections.Counter(durations).most_common(1)[0][0]
    fps = Fraction(int(time_base[2]), int(time_base[1]) * duration)
    width, height = int(stream[1]), int(stream[2])
    angle = _ROTATION.search(run.stderr)
    rotation = round(float(angle[1])) % 360 if angle else 0
    if rotation in (90, 270):
        width, height = height, width
    return VideoInfo(width, height, fps, len(packets), rotation)


def annotated_frame_indices(
    fps: Fraction, num_frames: int, limit: int | None = None, rate: int = ANNOTATION_FPS
) -> list[int]:
    """Source frame of each annotated frame i: floor(i * fps / rate + 1/2), within the video."""
    step = Fraction(fps) / rate
    indices = []
    i = 0
    while limit is None or i < limit:
        source = int(i * step + Fraction(1, 2))  # int() floors a non-negative Fraction
        if source >= num_frames:
            break
        indices.append(source)
        i += 1
    return indices


def _select_expression(fps: Fraction, rate: int) -> str:
    """ffmpeg `select` expression true exactly on the frames of `annotated_frame_indices`.

    Frame n is chosen iff some integer i has i*p/(q*rate) in [n - 1/2, n + 1/2), with
    fps = p/q: the smallest candidate is a = ceil(q*rate*(2n-1) / (2p)), and it qualifies iff
    2ap < q*rate*(2n+1). Every term is an integer well inside double precision.
    """
    p, qr = fps.numerator, fps.denominator * rate
    return f"lt(2*{p}*ceil({qr}*(2*n-1)/{2 * p}), {qr}*(2*n+1))"


def _selected(path: Path, info: VideoInfo, rate: int | None, limit: int | None):
    """The input stream of `path` reduced to the chosen frames, and how many there will be."""
    stream = ffmpeg.input(str(path)).video
    if rate is None:
        count = info.num_frames if limit is None else min(limit, info.num_frames)
        return stream, count
    if info.fps < rate:
        raise InputError(
            path, f"frame rate {float(info.fps):.3g} fps is below {rate} fps", "use a faster video"
        )
    count = len(annotated_frame_indices(info.fps, info.num_frames, limit, rate))
    return stream.filter("select", _select_expression(info.fps, rate)), count


def read_frames(
    path: str | Path,
    rate: int | None = ANNOTATION_FPS,
    limit: int | None = None,
    info: VideoInfo | None = None,
) -> Iterator[np.ndarray]:
    """Stream the annotated frames of `path` (all frames when `rate` is None) in order.

    Yields uint8 RGB arrays (H, W, 3) at the displayed size (rotation applied), at most
    `limit` of them, each a new writable array; only one frame is held here at a time.
    """
    path = Path(path)
    info = info or probe(path)
    stream, count = _selected(path, info, rate, limit)
    cmd = (
        stream.output(
            "pipe:",
            format="rawvideo",
            pix_fmt="rgb24",
            fps_mode="passthrough",
            **{"frames:v": count},
        )
        .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
        .compile(cmd=_binary())
    )
    size = info.width * info.height * 3
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        try:
            for _ in range(count):
                # read straight into a fresh writable array: no copy of the bytes, and torch
                # can take the frame as it is
                frame = np.empty((info.height, info.width, 3), np.uint8)
                if _read_into(proc.stdout, memoryview(frame).cast("B")) < size:
                    break
                yield frame
            else:
                proc.stdout.close()
                proc.wait()
                return
        finally:
            if proc.poll() is None:
                proc.kill()
        proc.wait()
        raise _unreadable(path, proc.stderr.read().decode(errors="replace") or "stream ended early")


def _read_into(stream, buffer: memoryview) -> int:
    """Fill `buffer` from `stream`; the bytes read (fewer only at the end of the stream)."""
    filled = 0
    while filled < len(buffer) and (n := stream.readinto(buffer[filled:])):
        filled += n
    return filled


def save_frames(
    path: str | Path,
    folder: str | Path,
    rate: int | None = ANNOTATION_FPS,
    limit: int | None = None,
    info: VideoInfo | None = None,
    quality: int = 2,
) -> int:
    """Write the annotated frames of `path` as `folder/<i:05d>.jpg` (i from 0) in one ffmpeg run.

    `quality` is the JPEG qscale (2 best … 31 worst). Returns the number of frames written;
    a video that decodes to fewer frames than probed is an `InputError`.
    """
    path, folder = Path(path), Path(folder)
    cmd, count = save_frames_command(path, folder, rate, limit, info or probe(path), quality)
    run = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    written = sum(1 for _ in folder.glob("*.jpg"))
    if run.returncode != 0 or written != count:
        raise _unreadable(path, run.stderr or f"decoded {written} of {count} frames")
    return count


def save_frames_command(
    path: Path, folder: Path, rate: int | None, limit: int | None, info: VideoInfo, quality: int
) -> tuple[list[str], int]:
    """The one ffmpeg command `save_frames` runs, and the number of frames it writes."""
    stream, count = _selected(path, info, rate, limit)
    cmd = (
        stream.output(
            str(folder / "%05d.jpg"),
            start_number=0,
            fps_mode="passthrough",
            **{"q:v": quality, "frames:v": count},
        )
        .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
        .compile(cmd=_binary())
    )
    return cmd, count


class VideoWriter:
    """H.264 mp4 writer fed RGB frames; the file appears under `path` only on a clean exit.

    x264 runs on one thread so identical frames give an identical file on any machine: with
    two, it wrote another stream for the same frames about once in 30 encodes (synth clips are
    rendered in parallel processes instead). yuv420p needs an even width and height; pass
    `pix_fmt="yuv444p"` for odd sizes.

        with VideoWriter("clip.mp4", 640, 360, 20) as w:
            w.write(frame)  # (360, 640, 3) uint8
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: float | str | Fraction,
        crf: int = 18,
        pix_fmt: str = "yuv420p",
    ):
        if pix_fmt == "yuv420p" and (width % 2 or height % 2):
            raise ValueError(f"yuv420p needs an even size, got {width}x{height}")
        self.path, self.width, self.height = Path(path), width, height
        self.fps = Fraction(fps).limit_denominator(1_000_000)
        self.crf, self.pix_fmt = crf, pix_fmt
        self._atomic = None
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> VideoWriter:
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        rate = f"{self.fps.numerator}/{self.fps.denominator}"
        size = f"{self.width}x{self.height}"
        cmd = (
            ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=size, r=rate)
            .output(
                str(tmp),
                format="mp4",
                vcodec="libx264",
                pix_fmt=self.pix_fmt,
                crf=self.crf,
                preset="medium",
                threads=1,
                movflags="+faststart",
            )
            .global_args("-nostdin", "-hide_banner", "-loglevel", "error", "-y")
            .compile(cmd=_binary())
        )
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        return self

    def write(self, frame: np.ndarray) -> None:
        """Append one frame: uint8 (H, W, 3) RGB."""
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"expected uint8 ({self.height}, {self.width}, 3), got {frame.dtype} {frame.shape}"
            )
        self._proc.stdin.write(np.ascontiguousarray(frame).tobytes())

    def __exit__(self, kind, value, traceback) -> None:
        proc, self._proc = self._proc, None
        if kind is not None:
            proc.kill()
            proc.wait()
            self._atomic.__exit__(kind, value, traceback)
            return
        _, stderr = proc.communicate()
        if proc.returncode != 0:
            error = RuntimeError(f"ffmpeg failed writing {self.path}: {stderr.decode().strip()}")
            self._atomic.__exit__(RuntimeError, error, None)
            raise error
        self._atomic.__exit__(None, None, None)
