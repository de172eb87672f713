"""Overlay rendering (mask in a stable colour per id, id and score, target inset) and writers."""

from __future__ import annotations

import colorsys
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vois_cli.atomic import atomic_path
from vois_cli.data.video import VideoWriter
from vois_cli.errors import InputError

ALPHA = 0.5  # mask opacity
# objects scoring below this are not drawn: `tiny`'s track scores multiply the class
# probability by mask, coverage, consistency and shape factors, so a track that holds a
# target for the whole video scores about 0.25-0.3 (training-notes.md, sessions 52 and 53)
SHOW_THRESHOLD = 0.25
INSET = 0.25  # target inset height as a fraction of the frame height


def colour(track_id: int) -> tuple[int, int, int]:
    """A bright RGB colour fixed by the id alone; hues step by the golden ratio."""
    hue = (track_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return round(r * 255), round(g * 255), round(b * 255)


def target_inset(target: Image.Image, frame_height: int) -> Image.Image:
    """The target image scaled to INSET of the frame height, with a one-pixel grey frame."""
    height = max(8, round(frame_height * INSET))
    width = max(1, round(target.width * height / target.height))
    inset = Image.new("RGB", (width + 2, height + 2), (128, 128, 128))
    inset.paste(target.convert("RGB").resize((width, height), Image.BILINEAR), (1, 1))
    return inset


def draw(
    frame: np.ndarray,
    objects: Sequence[tuple[int, float, np.ndarray]],
    inset: Image.Image | None = None,
) -> np.ndarray:
    """Frame uint8 (H, W, 3) with `objects` = [(id, score, bool mask (H, W))] drawn on it.

    Masks are blended at ALPHA, then each object's "id score" label is written at the top
    left of its mask's box, and `inset` (see `target_inset`) is pasted in the top-right corner.
    """
    out = frame.copy()
    if objects:  # blend in float32 the pixels under some mask only, rounded once at the end
        covered = np.logical_or.reduce([mask for _, _, mask in objects])
        pixels = frame[covered].astype(np.float32)
        for track_id, _, mask in objects:
            under = mask[covered]
            c = np.array(colour(track_id), np.float32)
            pixels[under] = (1 - ALPHA) * pixels[under] + ALPHA * c
        out[covered] = pixels.round().astype(np.uint8)
    image = Image.fromarray(out)
    pen = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(10, frame.shape[0] // 30))
    for track_id, score, mask in objects:
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if not len(rows):
            continue
        text = f"{track_id} {score:.2f}"
        left, top, right, bottom = pen.textbbox((int(cols[0]), int(rows[0])), text, font=font)
        pen.rectangle((left - 1, top - 1, right + 1, bottom + 1), fill=colour(track_id))
        pen.text((int(cols[0]), int(rows[0])), text, fill=(0, 0, 0), font=font)
    if inset is not None:
        image.paste(inset, (max(0, image.width - inset.width), 0))
    return np.asarray(image)


class FrameWriter:
    """Writes each decided frame to an overlay mp4 and/or a folder of mask PNGs, atomically.

    Objects whose running score is below `threshold` are left out of both. Mask PNGs are
    16-bit grey `<i:05d>.png` holding the object id per pixel (0 = background), higher scores
    drawn last. The mp4 appears only when the whole video is written, the mask folder is
    filled beside its final name and moved there at the end.

        with FrameWriter("out.mp4", None, target, fps=5) as write:
            predictor.predict(video, target_path, on_frame=write)
    """

    def __init__(
        self,
        overlay: str | Path | None,
        masks: str | Path | None,
        target: Image.Image,
        fps: float,
        threshold: float = SHOW_THRESHOLD,
    ):
        self.overlay, self.masks = overlay and Path(overlay), masks and Path(masks)
        self.target, self.fps, self.threshold = target, fps, threshold
        self._stack = contextlib.ExitStack()
        self._writer: VideoWriter | None = None
        self._inset: Image.Image | None = None

    def __enter__(self) -> FrameWriter:
        with self._stack as stack:
            if self.overlay:
                self._overlay_tmp = stack.enter_context(atomic_path(self.overlay))
            if self.masks:
                self._masks_tmp = stack.enter_context(_atomic_folder(self.masks))
            self._stack = stack.pop_all()
        return self

    def __call__(self, frame) -> None:
        """Write one `vois_cli.inference.FrameResult`."""
        shown = sorted((o for o in frame.objects if o[1] >= self.threshold), key=lambda o: o[1])
        if self.overlay:
            if self._writer is None:
                self._open_video(frame.image.shape[:2])
            self._writer.write(draw(frame.image, shown, self._inset))
        if self.masks:
            ids = np.zeros(frame.image.shape[:2], np.uint16)
            for track_id, _, mask in shown:
                ids[mask] = track_id
            Image.fromarray(ids).save(self._masks_tmp / f"{frame.index:05d}.png")

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if self._writer is not None:
                self._writer.__exit__(kind, value, traceback)
        finally:
            self._stack.__exit__(kind, value, traceback)

    def _open_video(self, size: tuple[int, int]) -> None:
        height, width = size
        self._inset = target_inset(self.target, height)
        pix_fmt = "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
        self._writer = VideoWriter(self._overlay_tmp, width, height, self.fps, pix_fmt=pix_fmt)
        self._writer.__enter__()


@contextlib.contextmanager
def _atomic_folder(path: Path) -> Iterator[Path]:
    """A fresh folder beside `path`, moved onto it on success; `path` must be absent or empty."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InputError(path, "exists and is not an empty folder", "choose a new --masks folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except OSError as e:
        raise InputError(path, f"cannot write here ({e.strerror})", "choose a writable path") from e
    try:
        yield tmp
        if path.exists():
            path.rmdir()
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
