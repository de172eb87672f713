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

A track's score is its proposals' mean score over the frames it was linked in, times the
factors the model's score fields name (`vois_cli.track_score`).
"""

from __future__ import annotations

import contextlib
import heapq
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from vois_cli.background import run_ahead
from vois_cli.checkpoint import load_model
from vois_cli.data import video as video_io
from vois_cli.data.transforms import Geometry, augment_target, resized_shape, to_model_input
from vois_cli.errors import InputError
from vois_cli.guided_filter import guided_masks
from vois_cli.inputs import check_target, load_target, read_video
from vois_cli.linking import TrackLinker, default_overlap, plan_clips
from vois_cli.results import FrameResult, ObjectResult, VideoResult
from vois_cli.track_score import Track, TrackScorer

DEFAULT_CHECKPOINT = Path("runs/train/last.pt")  # where the default `dvc repro` trains to
CHECKPOINT_ENV = "VOIS_CHECKPOINT"


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
class _Clip:
    """One model call's outputs on its way to post-processing: `frames` video indices (T, the
    first `real` distinct), `own` the frames it decides and their decoded `images`."""

    outputs: dict
    frames: tuple[int, ...]
    real: int
    own: range
    images: list[np.ndarray]


@dataclass(frozen=True)
class _Linked:
    """A clip between the halves of `Stream._decide`: its proposals' track `ids`, `scores` and
    masks in its `own` frames (`emitted[j][k]`), and the tracks that expired after it."""

    own: range
    images: list[np.ndarray]
    ids: list[int]
    scores: list[float]
    emitted: list[np.ndarray]
    expired: list[int]


class Stream:
    """Frames in one at a time, decided frames out as soon as their clip is linked.

    Halves that `Predictor.predict` runs in threads of their own: `_add` / `_last` buffer
    frames and run the model on each completed clip; `_decide` post-processes a clip's
    outputs, itself two stages that share no state: `_link` (masks at frame size, linking)
    and `_record` (the guided filter, RLE, track scores, the frames' results). `push` and
    `close` run them one after the other.
    """

    def __init__(
        self, predictor: Predictor, target: Image.Image, linker: TrackLinker | None = None
    ):
        self._p = predictor
        m = predictor.config.model
        check_target(target)
        image = np.asarray(target.convert("RGB"))
        self._scorer = TrackScorer(m, image)
        target_input = augment_target(image, m.short_edge, m.max_long_edge, None)[None]
        with torch.inference_mode():  # the target's half of the forward, once for every clip
            self._target = predictor.model.encode_target(target_input.to(predictor.device))
        # the model's half
        self._buffer: deque[tuple[np.ndarray, torch.Tensor]] = deque(maxlen=predictor.clip_len)
        self._count = 0
        self._next_start = 0
        self._planned = 0  # frames [0, _planned) are owned by clips already run
        self._size: tuple[int, int] | None = None
        self._closed = False
        # the post-processing half
        self._linker = TrackLinker(**predictor.linking) if linker is None else linker
        self._tracks: dict[int, Track] = {}
        # min-heap of the best finished tracks as (score, -id, track): ties keep the earlier id
        self._finished: list[tuple[float, int, Track]] = []

    def push(self, frame: np.ndarray, prepared: torch.Tensor | None = None) -> list[FrameResult]:
        """Add the next frame, uint8 RGB (H, W, 3); returns the frames this decided (maybe none).

        `prepared` is `self._p.prepare(frame)` when the caller computed it ahead (in a thread).
        """
        clip = self._add(frame, prepared)
        return [] if clip is None else self._decide(clip)

    def close(self) -> list[FrameResult]:
        """End of video: run the last clip if frames are left undecided; returns their results."""
        clip = self._last()
        return [] if clip is None else self._decide(clip)

    def result(self) -> VideoResult:
        """Every object of the closed stream: the best `max_objects` by score, in id order, with
        their final scores (`TrackScorer.final`: the duplicates suppressed)."""
        if not self._closed:
            raise RuntimeError("close the stream first")
        # a proposal seen only in frames an earlier clip decided has no mask of its own
        tracks = [(self._scorer.rank(t), -i, t) for i, t in self._tracks.items() if t.segmentations]
        tracks += self._finished
        best = sorted(heapq.nlargest(self._p.max_objects, tracks), key=lambda x: -x[1])
        segments = [[t.segmentations.get(f) for f in range(self._count)] for _, _, t in best]
        scores = self._scorer.final([t for _, _, t in best], segments)
        objects = [
            ObjectResult(-i, score, segmentations)
            for (_, i, _), score, segmentations in zip(best, scores, segments, strict=True)
        ]
        return VideoResult(self._p.fps, self._count, *self._size, objects)

    def _add(self, frame: np.ndarray, prepared: torch.Tensor | None) -> _Clip | None:
        """Buffer a frame; the model's outputs when it completes a clip."""
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
            return None
        start = self._next_start
        self._next_start += T - self._p.overlap
        return self._forward(tuple(range(start, start + T)), range(self._planned, start + T))

    def _last(self) -> _Clip | None:
        """End of video: the last clip's outputs if frames are left undecided."""
        if self._closed:
            return None
        self._closed = True
        if self._count == 0:
            raise ValueError("the stream received no frames")
        if self._planned == self._count:
            return None
        (last,) = plan_clips(self._count, self._p.clip_len, self._p.overlap)[-1:]
        return self._forward(last.frames, range(self._planned, self._count))

    def _forward(self, frames: tuple[int, ...], own: range) -> _Clip:
        """Run the model on `frames` (indices into the video) of the buffer."""
        first = self._count - len(self._buffer)  # video index of buffer[0]
        video = torch.stack([self._buffer[f - first][1] for f in frames]).unsqueeze(0)
        with torch.inference_mode():
            outputs = self._p.model(video.to(self._p.device), self._target)
        self._planned = own.stop
        images = [self._buffer[f - first][0] for f in own]
        return _Clip(outputs, frames, min(len(frames), self._count), own, images)

    def _decide(self, clip: _Clip) -> list[FrameResult]:
        """Masks at frame size, linked to the tracks; the `own` frames' RLEs and results."""
        return self._record(self._link(clip))

    def _link(self, clip: _Clip) -> _Linked:
        """The first half of `_decide`: the clip's masks at frame size, linked to the tracks."""
        with torch.inference_mode():
            proposals = self._p.postprocess(clip.outputs, [clip.real], [self._size])[0]
        frames, own = clip.frames[: clip.real], clip.own
        masks = [p["masks"] for p in proposals]
        ids = self._linker.link(frames, masks)
        start = frames.index(own.start)  # the own frames close the clip, in order
        emitted = [m[start : start + len(own)] for m in masks]  # own frame k: emitted[j][k]
        expired = self._linker.expired(own.stop)
        scores = [p["score"] for p in proposals]
        return _Linked(own, clip.images, ids, scores, emitted, expired)

    def _record(self, linked: _Linked) -> list[FrameResult]:
        """The second half of `_decide`: the own frames' masks snapped to their edges
        (`mask_guide`), the tracks' RLEs and scores, the frames' results."""
        own, ids, emitted = linked.own, linked.ids, linked.emitted
        if radius := self._guide_radius():  # snapped to each frame's edges after the linking
            emitted = [e.copy() for e in emitted]  # the linker keeps the model's masks
            for k, image in enumerate(linked.images):
                shown = [j for j, e in enumerate(emitted) if e[k].any()]
                refined = guided_masks(image, [emitted[j][k] for j in shown], radius)
                for j, mask in zip(shown, refined, strict=True):
                    emitted[j][k] = mask
        visible = [e.reshape(len(e), -1).any(1) for e in emitted]
        for track_id, score, e, v in zip(ids, linked.scores, emitted, visible, strict=True):
            track = self._tracks.setdefault(track_id, Track())
            self._scorer.link(track, score, len(own))
            for k in np.flatnonzero(v):
                self._scorer.add(track, own[k], e[k])
        decided = []
        for k, f in enumerate(own):
            objects = sorted(
                (i, self._scorer.score(self._tracks[i], own.stop), e[k])
                for i, e, v in zip(ids, emitted, visible, strict=True)
                if v[k]
            )
            decided.append(FrameResult(f, linked.images[k], objects))
        for i in linked.expired:
            if i in self._tracks:
                self._finish(i)
        return decided

    def _guide_radius(self) -> int:
        """`mask_guide` model-input px in frame px (0: masks as the model gives them)."""
        m = self._p.config.model
        if m.mask_guide <= 0:
            return 0
        return round(
            m.mask_guide
            * self._size[0]
            / resized_shape(*self._size, m.short_edge, m.max_long_edge)[0]
        )

    def _finish(self, track_id: int) -> None:
        """Move a track that can no longer continue to the bounded heap of finished ones."""
        track = self._tracks.pop(track_id)
        if not track.segmentations:
            return
        entry = (self._scorer.rank(track), -track_id, track)
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
        cls,
        path: str | Path | None = None,
        device: str = "auto",
        inference: dict[str, Any] | None = None,
        **options,
    ) -> Predictor:
        """Load `path` (default: `default_checkpoint()`) on `device` ("auto" prefers CUDA),
        with `inference` fields of its own (`load_model`), e.g. {"mask_guide": 0}."""
        model, postprocess, config = load_model(path or default_checkpoint(), device, inference)
        return cls(model, postprocess, config, next(model.parameters()).device, **options)

    def prepare(self, frame: np.ndarray) -> torch.Tensor:
        """Model input of one frame: uint8 (H, W, 3) -> normalised float32 (3, h, w) on CPU."""
        m, (height, width) = self.config.model, frame.shape[:2]
        size = resized_shape(height, width, m.short_edge, m.max_long_edge)
        return to_model_input(frame[None], size, Geometry.identity(height, width))[0]

    def stream(self, target: Image.Image, linker: TrackLinker | None = None) -> Stream:
        """A live stream for frames that arrive one at a time (see `Stream`); `linker` replaces
        the `TrackLinker` of this predictor's linking settings (a subclass that records or
        joins the clips its own way)."""
        return Stream(self, target, linker)

    def predict(
        self,
        video_path: str | Path,
        target: str | Path | Image.Image,
        progress: Callable[..., None] | None = None,
        on_frame: Callable[[FrameResult], None] | None = None,
        max_frames: int | None = None,
    ) -> VideoResult:
        """All relevant objects of a video file (or a folder of frames) for a target image
        (a path or a PIL image); `max_frames` stops early. See `predict_frames`."""
        image = target if isinstance(target, Image.Image) else load_target(target)
        frames, total = read_video(video_path, self.fps, max_frames)
        return self.predict_frames(frames, image, total, progress, on_frame)

    def predict_frames(
        self,
        frames: Iterable[np.ndarray],
        target: Image.Image,
        total: int | None = None,
        progress: Callable[..., None] | None = None,
        on_frame: Callable[[FrameResult], None] | None = None,
    ) -> VideoResult:
        """All relevant objects of a video's frames, uint8 RGB (H, W, 3) (e.g. `read_video`'s).

        `on_frame(FrameResult)` sees every decided frame in order (for overlays and mask
        files), `progress(done, total)` counts decided frames; both are called from this
        thread. Four stages overlap, each in its own thread, joined by bounded queues (memory
        stays that of a few clips, whatever the video's length): decoding and resizing, the
        model, the masks (at frame size, linked, snapped to the frame's edges), and here the
        rest (RLE, track scores, `on_frame`).
        """
        stream = self.stream(target)

        def clips() -> Iterator[_Clip]:
            prepared = run_ahead(_prepared(frames, self.prepare), self.clip_len)
            with contextlib.closing(prepared):
                for frame, x in prepared:
                    if (clip := stream._add(frame, x)) is not None:
                        yield clip
            if (clip := stream._last()) is not None:
                yield clip

        def linked() -> Iterator[_Linked]:
            with contextlib.closing(run_ahead(clips(), 1)) as outputs:
                for clip in outputs:
                    yield stream._link(clip)

        with contextlib.closing(run_ahead(linked(), 1)) as clips_linked:
            for clip in clips_linked:
                for decided in stream._record(clip):
                    if on_frame:
                        on_frame(decided)
                if progress:
                    progress(clip.own.stop, total)
        return stream.result()


def _prepared(frames: Iterable[np.ndarray], prepare: Callable) -> Iterator[tuple]:
    """(frame, prepare(frame)) for each frame; closing this closes `frames` (a decoder)."""
    try:
        for frame in frames:
            yield frame, prepare(frame)
    finally:
        if hasattr(frames, "close"):
            frames.close()
