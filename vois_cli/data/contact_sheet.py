"""Contact sheet: one PNG showing a clip's target, some annotated frames and their masks.

It is drawn from the files on disk (decoded video, RLE annotations), not from the renderer,
so it shows what a model will actually be given, for SynthLive or any LiveVideos-layout root.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from vois_cli.atomic import atomic_path
from vois_cli.data.video import read_frames
from vois_cli.data.ytvis import decode_rle, load_annotations
from vois_cli.errors import InputError

OBJECT_COLOURS = np.array(
    [(255, 40, 40), (40, 220, 255), (255, 220, 0), (120, 255, 60), (255, 60, 255)]
    + [(255, 140, 0), (0, 120, 255), (160, 90, 255), (0, 255, 170), (255, 255, 255)],
    np.float32,
)
GAP = 4  # pixels between tiles
CAPTION = 12  # caption strip height


def overlay(frame: np.ndarray, masks: list[np.ndarray | None]) -> np.ndarray:
    """(H, W, 3) uint8 frame with each object's mask tinted and outlined in its own colour."""
    out = frame.astype(np.float32)
    for k, mask in enumerate(masks):
        if mask is None or not mask.any():
            continue
        colour = OBJECT_COLOURS[k % len(OBJECT_COLOURS)]
        out[mask] = 0.45 * out[mask] + 0.55 * colour
        out[mask & ~ndimage.binary_erosion(mask)] = colour
    return np.round(out).astype(np.uint8)


def spread_frames(length: int, count: int) -> list[int]:
    """At most `count` distinct frame indices of a `length`-frame clip, spread evenly, first
    and last included."""
    return [int(i) for i in np.unique(np.linspace(0, length - 1, min(count, length)).round())]


def contact_sheet(
    target: np.ndarray,
    frames: list[np.ndarray],
    rows: dict[str, list[list[np.ndarray | None]]],
    indices: list[int],
) -> np.ndarray:
    """Tile a sheet: the target, then `frames` (top row) above one row of overlays per entry
    of `rows`, captioned with its key.

    target (h, w, 3), frames[i] (H, W, 3) uint8; rows[label][i][k] is object k's (H, W) mask in
    frame i or None (an object keeps its colour along a row); indices[i] is frame i's
    annotated-frame number, shown as its caption. Returns the sheet,
    ((1 + R) (H + CAPTION) + (2 + R) GAP, (len(frames) + 1) (W + GAP) + GAP, 3) uint8.
    """
    height, width = frames[0].shape[:2]
    scale = min(height / target.shape[0], width / target.shape[1])
    size = (max(1, round(target.shape[1] * scale)), max(1, round(target.shape[0] * scale)))
    target = np.asarray(Image.fromarray(target).resize(size, Image.BILINEAR))
    cell_h, cell_w = height + CAPTION, width + GAP
    sheet_h = (1 + len(rows)) * cell_h + (2 + len(rows)) * GAP
    sheet = Image.new("RGB", ((len(frames) + 1) * cell_w + GAP, sheet_h), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((GAP, GAP), "target", fill="black")
    sheet.paste(Image.fromarray(target), (GAP, GAP + CAPTION))
    for col, (frame, i) in enumerate(zip(frames, indices, strict=True), 1):
        x = GAP + col * cell_w
        draw.text((x, GAP), f"frame {i}", fill="black")
        sheet.paste(Image.fromarray(frame), (x, GAP + CAPTION))
    for row, (label, masks) in enumerate(rows.items(), 1):
        y = (1 + row) * GAP + row * cell_h
        draw.text((GAP, y), label, fill="black")
        for col, (frame, frame_masks) in enumerate(zip(frames, masks, strict=True), 1):
            sheet.paste(
                Image.fromarray(overlay(frame, frame_masks)), (GAP + col * cell_w, y + CAPTION)
            )
    return np.asarray(sheet)


def benchmark_contact_sheet(root: str | Path, name: str | None = None, columns: int = 6):
    """The sheet of video `name` (default: the first of the train split) under `root`.

    Shows `columns` annotated frames spread evenly over the clip. Returns (H, W, 3) uint8.
    """
    root = Path(root)
    for split in ("train", "test"):
        ann = load_annotations(root / "annotations" / f"{split}.json", require_targets=True)
        video = next((v for v in ann.videos if name is None or v.name == name), None)
        if video is not None:
            break
    else:
        raise InputError(root, f"no video named {name!r} in train.json or test.json", "check it")
    picks = spread_frames(video.length, columns)
    decoded = read_frames(root / "videos" / f"{video.name}.mp4", limit=video.length)
    frames = [f for i, f in enumerate(decoded) if i in picks]
    objects = ann.by_video()[video.id]
    masks = [
        [decode_rle(o["segmentations"][i], video.height, video.width) for o in objects]
        for i in picks
    ]
    target_path = root / video.target
    if not target_path.is_file():
        raise InputError(target_path, "target image not found", "check the benchmark folder")
    target = np.asarray(Image.open(target_path).convert("RGB"))
    return contact_sheet(target, frames, {"masks": masks}, picks)


def write_contact_sheet(path: str | Path, root: str | Path, name: str | None = None) -> None:
    """Write `benchmark_contact_sheet(root, name)` as a PNG at `path`, atomically."""
    sheet = benchmark_contact_sheet(root, name)
    with atomic_path(path) as tmp:
        Image.fromarray(sheet).save(tmp, format="PNG")
