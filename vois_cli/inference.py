"""Predictor: a target image and a video of any length in, one mask track per relevant object out.

    from vois_cli import Predictor
    predictor = Predictor.from_checkpoint("runs/train/last.pt")
    result = predictor.predict("video.mp4", "product.jpg")   # VideoResult

    stream = predictor.stream(Image.open("product.jpg"))     # frames arriving live
    for frame in camera:
        for decided in stream.push(frame): show(decided)
    for decided in stream.close(): show(decided)

The video is decoded as a stream at 5 fps and run in T-frame clips that overlap
(`vois_cli.linking`); each frame's masks are decided by the first clip containing it and are
emitted as soon as that clip has been linked, i.e. with a latency of at most one clip. Memory
is bounded by the clip: the stream holds the last T frames, masks are RLE-encoded as they are
decided, and finished tracks beyond the best `max_objects` are dropped.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from vois_cli.checkpoint import load_model
from vois_cli.data import video as video_io
from vois_cli.data.preprocess import MIN_TARGET_SIDE
from vois_cli.data.transforms import Geometry, augment_target, resized_shape, to_model_input
from vois_cli.data.ytvis import CATEGORY_ID, decode_rle, encode_rle
from vois_cli.errors import InputError
from vois_cli.linking import TrackLinker, default_overlap, plan_clips

DEFAULT_CHECKPOINT = Path("runs/train/last.pt")  # where the default `dvc repro` trains to
CHECKPOINT_ENV = "VOIS_CHECKPOINT"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def default_checkpoint() -> Path:
    """$VOIS_CHECKPOINT, else DEFAULT_CHECKPOINT (relative to the current folder); must exist."""
    path = Path(os.environ.get(CHECKPOINT_ENV) or DEFAULT_CHECKPOINT)
    if not path.is_file():
        raise InputError(
            path,
            "no checkpoint here",
            f"run `dvc repro` to train one, or pass --checkpoint or set {CHECKPOINT_ENV}",
        )
    return path


@dataclass(frozen=True)
class FrameResult:
    """One decided frame: its index, the decoded RGB image (H, W, 3) and the visible objects.

    `objects` = [(id, score, bool mask (H, W))] in id order; score is the track's running
    score (the final one is in `VideoResult`).
    """

    index: int
    image: np.ndarray
    objects: list[tuple[int, float, np.ndarray]]


@dataclass(frozen=True)
class ObjectResult:
    """One object over the whole video: `segmentations[i]` is frame i's COCO RLE or None."""

    id: int
    score: float
    segmentations: list[dict | None]

    def masks(self, height: int, width: int) -> np.ndarray:
        """Decoded masks, bool (frames, H, W); fine for short videos only."""
        return np.stack([decode_rle(s, height, width) for s in self.segmentations])


@dataclass(frozen=True)
class VideoResult:
    """Every object found in a video, in id order (ids count up in order of appearance)."""

    fps: float
    num_frames: int
    height: int
    width: int
    objects: list[ObjectResult]

    def to_predictions(self, video_id: int) -> list[dict]:
        """YouTube-VIS results (docs/design.md#predictions-and-metrics); `track_id` is the id
        drawn on the overlay."""
        return [
            {
                "video_id": video_id,
                "category_id": CATEGORY_ID,
                "score": o.score,
                "segmentations": o.segmentations,
                "track_id": o.id,
            }
            for o in self.objects
        ]


@dataclass
class _Track:
    score_sum: float = 0.0
    frames: int = 0  # frames the score was averaged over
    segmentations: dict[int, dict] | None = None  # frame -> RLE, visible frames only

    @property
    def score(self) -> float:
        return self.score_sum / max(self.frames, 1)


class Stream:
    """Frames in one at a time, decided frames out as soon as their clip is linked."""

    def __init__(self, predictor: Predictor, target: Image.Image):
        self._p = predictor
        m = predictor.config.model
        check_target(target)
        image = np.asarray(target.convert("RGB"))
        self._target = augment_target(image, m.short_edge, m.max_long_edge, None)[None].to(
            predictor.device
        )
        self._buffer: deque[tuple[np.ndarray, torch.Tensor]] = deque(maxlen=predictor.clip_len)
        self._linker = TrackLinker(**predictor.linking)
        self._tracks: dict[int, _Track] = {}
        # min-heap of the best finished tracks as (score, -id, track): ties keep the earlier id
        self._finished: list[tuple[float, int, _Track]] = []
        self._count = 0
        self._next_start = 0
        self._decided = 0  # frames [0, _decided) are out
        self._size: tuple[int, int] | None = None
        self._closed = False

    def push(self, frame: np.ndarray, prepared: torch.Tensor | None = None) -> list[FrameResult]:
        """Add the next frame, uint8 RGB (H, W, 3); returns the frames this decided (maybe none).

        `prepared` is `self._p.prepare(frame)` when the caller computed it ahead (in a thread).
        """
        if self._closed:
            raise RuntimeError("push after close")
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected a uint8 (H, W, 3) frame, got {frame.dtype} {frame.shape}")
        if self._size is None:
            self._size = frame.shape[:2]
        elif frame.shape[:2] != self._size:
            raise ValueError(f"frame size {frame.shape[:2]} differs from the first {self._size}")
        self._buffer.append((frame, self._p.prepare(frame) if prepared is None else prepared))
        self._count += 1
        T = self._p.clip_len
        if self._count < self._next_start + T:
            return []
        start = self._next_start
        self._next_start += T - self._p.overlap
        return self._run(tuple(range(start, start + T)), range(self._decided, start + T))

    def close(self) -> list[FrameResult]:
        """End of video: run the last clip if frames are left undecided; returns their results."""
        if self._closed:
            return []
        self._closed = True
        if self._count == 0:
            raise ValueError("the stream received no frames")
        if self._decided == self._count:
            return []
        (last,) = plan_clips(self._count, self._p.clip_len, self._p.overlap)[-1:]
        return self._run(last.frames, range(self._decided, self._count))

    def result(self) -> VideoResult:
        """Every object of the closed stream: the best `max_objects` by score, in id order."""
        if not self._closed:
            raise RuntimeError("close the stream first")
        # a proposal seen only in frames an earlier clip decided has no mask of its own
        tracks = [(t.score, -i, t) for i, t in self._tracks.items() if t.segmentations]
        tracks += self._finished
        best = sorted(heapq.nlargest(self._p.max_objects, tracks), key=lambda x: -x[1])
        objects = [
            ObjectResult(-i, t.score, [t.segmentations.get(f) for f in range(self._count)])
            for _, i, t in best
        ]
        return VideoResult(self._p.fps, self._count, *self._size, objects)

    def _run(self, frames: tuple[int, ...], own: range) -> list[FrameResult]:
        """Run the model on `frames` (indices into the video), link, decide the `own` frames."""
        first = self._count - len(self._buffer)  # video index of buffer[0]
        video = torch.stack([self._buffer[f - first][1] for f in frames]).unsqueeze(0)
        real = min(len(frames), self._count)
        with torch.inference_mode():
            outputs = self._p.model(video.to(self._p.device), self._target)
            proposals = self._p.postprocess(outputs, [real], [self._size])[0]
        frames = frames[:real]
        masks = [p["masks"] for p in proposals]
        ids = self._linker.link(frames, masks)
        at = {f: k for k, f in enumerate(frames)}
        for track_id, p in zip(ids, proposals, strict=True):
            track = self._tracks.setdefault(track_id, _Track(segmentations={}))
            track.score_sum += p["score"] * len(own)
            track.frames += len(own)
            for f in own:
                if p["masks"][at[f]].any():
                    track.segmentations[f] = encode_rle(p["masks"][at[f]])
        decided = []
        for f in own:
            objects = sorted(
                (i, self._tracks[i].score, p["masks"][at[f]])
                for i, p in zip(ids, proposals, strict=True)
                if p["masks"][at[f]].any()
            )
            decided.append(FrameResult(f, self._buffer[f - first][0], objects))
        self._decided = own.stop
        for i in self._linker.expired(own.stop):
            if i in self._tracks:
                self._finish(i)
        return decided

    def _finish(self, track_id: int) -> None:
        """Move a track that can no longer continue to the bounded heap of finished ones."""
        track = self._tracks.pop(track_id)
        if not track.segmentations:
            return
        entry = (track.score, -track_id, track)
        if len(self._finished) < self._p.max_objects:
            heapq.heappush(self._finished, entry)
        else:
            heapq.heappushpop(self._finished, entry)


class Predictor:
    """A loaded model plus the clip and linking settings (see `vois_cli.linking`)."""

    def __init__(
        self,
        model: torch.nn.Module,
        postprocess: Callable,
        config,
        device: torch.device | str = "cpu",
        overlap: int | None = None,
        max_objects: int = 100,
        fps: int = video_io.ANNOTATION_FPS,
        **linking: float,
    ):
        self.model, self.postprocess, self.config = model.eval(), postprocess, config
        self.device = torch.device(device)
        self.clip_len = config.model.num_frames
        self.overlap = default_overlap(self.clip_len) if overlap is None else overlap
        if not 0 <= self.overlap < self.clip_len:
            raise ValueError(f"overlap must be in [0, {self.clip_len}), got {self.overlap}")
        self.max_objects, self.fps, self.linking = max_objects, fps, linking

    @classmethod
    def from_checkpoint(
        cls, path: str | Path | None = None, device: str = "auto", **options
    ) -> Predictor:
        """Load `path` (default: `default_checkpoint()`) on `device` ("auto" prefers CUDA)."""
        model, postprocess, config = load_model(path or default_checkpoint(), device)
        return cls(model, postprocess, config, next(model.parameters()).device, **options)

    def prepare(self, frame: np.ndarray) -> torch.Tensor:
        """Model input of one frame: uint8 (H, W, 3) -> normalised float32 (3, h, w) on CPU."""
        m, (height, width) = self.config.model, frame.shape[:2]
        size = resized_shape(height, width, m.short_edge, m.max_long_edge)
        return to_model_input(frame[None], size, Geometry.identity(height, width))[0]

    def stream(self, target: Image.Image) -> Stream:
        """A live stream for frames that arrive one at a time (see `Stream`)."""
        return Stream(self, target)

    def predict(
        self,
        video_path: str | Path,
        target: str | Path | Image.Image,
        progress: Callable[..., None] | None = None,
        on_frame: Callable[[FrameResult], None] | None = None,
        max_frames: int | None = None,
    ) -> VideoResult:
        """All relevant objects of a video file (or a folder of frames) for a target image
        (a path or a PIL image).

        `on_frame(FrameResult)` sees every decided frame in order (for overlays and mask
        files); `progress(done, total)` counts decoded frames; `max_frames` stops early.
        """
        image = target if isinstance(target, Image.Image) else load_target(target)
        stream = self.stream(image)
        frames, total = read_video(video_path, self.fps, max_frames)
        done = 0
        with contextlib.closing(_prefetch(frames, self.prepare, self.clip_len)) as items:
            for frame, prepared in items:
                decided = stream.push(frame, prepared)
                done += 1
                if on_frame:
                    for d in decided:
                        on_frame(d)
                if progress:
                    progress(done, total)
        if done == 0:
            raise InputError(video_path, "video has no frames", "check or re-encode the video")
        for d in stream.close():
            if on_frame:
                on_frame(d)
        return stream.result()


def _prefetch(frames: Iterator[np.ndarray], prepare: Callable, depth: int) -> Iterator[tuple]:
    """(frame, prepare(frame)) decoded and resized `depth` frames ahead in a thread.

    ffmpeg runs in its own process and torch releases the GIL, so decoding and resizing
    overlap the model (most on a GPU). An error in the thread is raised here; leaving the
    loop early stops the thread and closes the decoder.
    """
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item) -> None:
        while not stop.is_set():
            try:
                return items.put(item, timeout=0.1)
            except queue.Full:
                continue

    def work() -> None:
        try:
            for frame in frames:
                put((frame, prepare(frame)))
                if stop.is_set():
                    return
            put(end)
        except Exception as e:  # handed to the consumer, which raises it
            put(e)
        finally:
            frames.close()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while (item := items.get()) is not end:
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def load_target(path: str | Path) -> Image.Image:
    """The target image as RGB; unreadable or too small (`check_target`) is an `InputError`."""
    return check_target(
        _read_image(Path(path), "target", "pass the product image (jpg or png)"), path
    )


def check_target(image: Image.Image, path: str | Path | None = None) -> Image.Image:
    """`image` if both its sides are at least MIN_TARGET_SIDE, the rule `vois preprocess` applies
    to training targets; else an `InputError` naming `path`."""
    if min(image.size) < MIN_TARGET_SIDE:
        raise InputError(
            path,
            f"target is only {image.width}x{image.height} pixels",
            f"give a target image of at least {MIN_TARGET_SIDE}x{MIN_TARGET_SIDE}",
        )
    return image


def _read_image(path: Path, what: str, fix: str) -> Image.Image:
    if not path.is_file():
        raise InputError(path, f"{what} not found", fix)
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(path, f"{what} is not a readable image ({e})", fix) from e


def read_video(
    path: str | Path, fps: int, limit: int | None = None
) -> tuple[Iterator[np.ndarray], int]:
    """The first `limit` frames uint8 (H, W, 3) streamed at `fps`, and how many there will be.

    A folder holds frames already sampled (e.g. `vois extract` output): its images in name
    order, one output frame each.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
        if not files:
            raise InputError(path, "folder holds no frames", "give a video or a folder of jpg/png")
        fix = "keep only readable jpg/png frames in the folder"
        return (np.asarray(_read_image(f, "frame", fix)) for f in files), len(files)
    info = video_io.probe(path)
    total = len(video_io.annotated_frame_indices(info.fps, info.num_frames, limit, fps))
    return video_io.read_frames(path, rate=fps, limit=limit, info=info), total
