"""The user's inputs to inference, checked at the boundary: the target image and a video (or a
folder of frames already sampled), decoded as a stream.

A target `vois preprocess` would refuse (`check_target_side`) is refused here too, and every
unreadable file is an `InputError` naming it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from vois_cli.data import video as video_io
from vois_cli.data.preprocess import check_target_side
from vois_cli.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def load_target(path: str | Path) -> Image.Image:
    """The target image as RGB; unreadable or too small (`check_target`) is an `InputError`."""
    return check_target(
        _read_image(Path(path), "target", "pass the product image (jpg or png)"), path
    )


def check_target(image: Image.Image, path: str | Path | None = None) -> Image.Image:
    """`image` if `vois preprocess` would accept it as a target (`check_target_side`)."""
    check_target_side(*image.size, path)
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
