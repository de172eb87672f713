"""`vois preprocess`: frames, masks and targets at a short edge of 224, one `.npz` per video.

The format is documented in docs/preprocessed-format.md; `load_video` reads it back. Frames
and the target stay JPEG-compressed (decoding a small JPEG is faster than reading its raw
pixels from disk), masks are bit-packed. No pickles: `np.load(..., allow_pickle=False)`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from vois_cli.atomic import atomic_dir
from vois_cli.data.transforms import mask_boxes, resize_masks, resized_shape
from vois_cli.data.ytvis import Video, decode_rle, load_annotations
from vois_cli.errors import InputError

FORMAT, VERSION = "vois-preprocessed", 1
JPEG_QUALITY = 95
MIN_TARGET_SIDE = 8  # smaller targets carry no appearance to match


def read_image(path: Path, what: str) -> np.ndarray:
    """Any PIL-readable image as uint8 RGB (H, W, 3); transparency is composited on white."""
    if not path.is_file():
        raise InputError(path, f"{what} not found", "check the path or the annotation file")
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                rgba = image.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image = Image.alpha_composite(white, rgba)
            rgb = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(path, f"{what} is not a readable image ({e})", "give a JPEG or PNG") from e
    return rgb


def _jpeg(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize(size[::-1], Image.Resampling.BILINEAR))


def _masks(video: Video, objects: list[dict], size: tuple) -> np.ndarray:
    """bool (K, T, *size): the objects' masks resized to the stored size."""
    masks = np.zeros((len(objects), video.length, *size), dtype=bool)
    for k, obj in enumerate(objects):
        for t, rle in enumerate(obj["segmentations"]):
            if rle is not None:
                masks[k, t] = resize_masks(decode_rle(rle, video.height, video.width), size)
    return masks


def _video_arrays(
    video: Video,
    objects: list[dict],
    frames_dir: Path,
    size: tuple,
    target: np.ndarray,
    products: list[dict] | None,
) -> dict[str, np.ndarray]:
    """The arrays of one video's `.npz` (keys and shapes in docs/preprocessed-format.md)."""
    jpegs = []
    for name in video.file_names:
        frame = read_image(frames_dir / name, "frame")
        if frame.shape[:2] != (video.height, video.width):
            raise InputError(
                frames_dir / name,
                f"frame is {frame.shape[1]}x{frame.shape[0]}, the annotation says "
                f"{video.width}x{video.height}",
                "re-extract the frames or fix the annotation",
            )
        jpegs.append(_jpeg(_resize(frame, size)))
    masks = _masks(video, objects, size)
    arrays = {
        "frames_jpeg": np.frombuffer(b"".join(jpegs), np.uint8),
        "frames_offsets": np.cumsum([0] + [len(j) for j in jpegs]).astype(np.int64),
        "masks_packed": np.packbits(masks.reshape(-1)),
        "masks_shape": np.array(masks.shape, np.int64),
        "boxes": mask_boxes(masks),
        "object_ids": np.array([obj["id"] for obj in objects], np.int64),
        "target_jpeg": np.frombuffer(_jpeg(target), np.uint8),
    }
    if products is not None:
        every = _masks(video, products, size)
        arrays["products_packed"] = np.packbits(every.reshape(-1))
        arrays["products_shape"] = np.array(every.shape, np.int64)
    return arrays


def _target(path: Path, short_edge: int, max_long_edge: int | None) -> np.ndarray:
    """The checked target image, resized: uint8 (H_I, W_I, 3)."""
    image = read_image(path, "target")
    check_target_side(image.shape[1], image.shape[0], path)
    return _resize(image, resized_shape(*image.shape[:2], short_edge, max_long_edge))


def check_target_side(width: int, height: int, path: Path | str | None) -> None:
    """The one rule for targets, in training and inference: both sides at least
    MIN_TARGET_SIDE, else an `InputError` naming `path`."""
    if min(width, height) < MIN_TARGET_SIDE:
        raise InputError(
            path,
            f"target is only {width}x{height} pixels",
            f"give a target image of at least {MIN_TARGET_SIDE}x{MIN_TARGET_SIDE}",
        )


def preprocess(
    frames_dir: str | Path,
    ann_path: str | Path,
    out: str | Path,
    short_edge: int = 224,
    max_long_edge: int | None = None,
    root: str | Path | None = None,
    progress: Callable[..., None] | None = None,
    products: str | Path | None = None,
) -> dict:
    """Write the artifact of `ann_path`'s videos into `out`; return its index.

    Frames come from `frames_dir/<file_names[i]>`, targets from `root/<target>` (root
    defaults to the annotation file's grandparent, i.e. `<root>/annotations/<split>.json`).
    `products`, an annotation file of the same videos with every placed product (SynthLive's
    `<split>_all.json`), adds their masks for the one-to-many mask loss (`loss_mask_o2m`).
    `out` is written as a temp folder and renamed into place.
    """
    frames_dir, ann_path, out = Path(frames_dir), Path(ann_path), Path(out)
    root = ann_path.parent.parent if root is None else Path(root)
    if not frames_dir.is_dir():
        raise InputError(frames_dir, "frames folder not found", "run `vois extract` first")
    annotations = load_annotations(ann_path, require_targets=True)
    if out.exists() and not (out / "index.json").is_file():
        raise InputError(out, "exists and is not a preprocessed artifact", "choose another --out")
    missing = [v.name for v in annotations.videos if not (frames_dir / v.file_names[0]).is_file()]
    if missing:
        raise InputError(
            frames_dir / missing[0], "frames missing for this video", "run `vois extract` on it"
        )
    by_video = annotations.by_video()
    every = None if products is None else _products(Path(products), annotations)
    entries = []
    with atomic_dir(out) as tmp:
        (tmp / "videos").mkdir()
        for done, video in enumerate(annotations.videos):
            size = resized_shape(video.height, video.width, short_edge, max_long_edge)
            target = _target(root / video.target, short_edge, max_long_edge)
            objects = by_video[video.id]
            everything = None if every is None else every[video.id]
            arrays = _video_arrays(video, objects, frames_dir, size, target, everything)
            file = f"videos/{video.name}.npz"
            np.savez(tmp / file, **arrays)
            entries.append(
                {
                    "id": video.id,
                    "name": video.name,
                    "file": file,
                    "length": video.length,
                    "height": size[0],
                    "width": size[1],
                    "orig_height": video.height,
                    "orig_width": video.width,
                    "num_objects": len(objects),
                    **({} if everything is None else {"num_products": len(everything)}),
                    "target": video.target,
                    "target_height": target.shape[0],
                    "target_width": target.shape[1],
                }
            )
            if progress is not None:
                progress(done + 1, len(annotations.videos), video=video.name)
        index = {
            "format": FORMAT,
            "version": VERSION,
            "short_edge": short_edge,
            "max_long_edge": max_long_edge,
            "annotations": str(ann_path),
            **({} if products is None else {"products": str(products)}),
            "videos": entries,
        }
        (tmp / "index.json").write_text(json.dumps(index, indent=1))
    return index


def _products(path: Path, annotations) -> dict[int, list[dict]]:
    """Every placed product of each video of `annotations`, from `path`, whose videos must be
    the same (ids, names, lengths and sizes)."""
    every = load_annotations(path)
    theirs = {v.id: v for v in every.videos}
    for video in annotations.videos:
        other = theirs.get(video.id)
        if other is None or (other.name, other.length, other.width, other.height) != (
            video.name,
            video.length,
            video.width,
            video.height,
        ):
            raise InputError(
                path,
                f"has no video {video.id} ({video.name}) as the annotation file has it",
                "give the products file of the same split (e.g. train_all.json for train.json)",
            )
    return every.by_video()


def load_index(artifact: str | Path) -> dict:
    """The artifact's index.json, checked for format and version."""
    path = Path(artifact) / "index.json"
    if not path.is_file():
        raise InputError(artifact, "has no index.json", "run `vois preprocess` to create it")
    index = json.loads(path.read_text())
    if index.get("format") != FORMAT or index.get("version") != VERSION:
        raise InputError(path, f"not a {FORMAT} v{VERSION} index", "re-run `vois preprocess`")
    return index


def load_video(artifact: str | Path, entry: dict, frames: list[int] | None = None) -> dict:
    """Decode one video of the artifact (its `index.json` entry), optionally only `frames`.

    Returns frames uint8 (T, H, W, 3), masks bool (K, T, H, W), boxes float32 (K, T, 4) pixel
    (x0, y0, x1, y1), object_ids int64 (K,), target uint8 (H_I, W_I, 3), and where the
    artifact has them products bool (K_all, T, H, W).
    """
    frames = list(range(entry["length"])) if frames is None else frames
    with np.load(Path(artifact) / entry["file"], allow_pickle=False) as z:
        data, offsets = z["frames_jpeg"], z["frames_offsets"]
        images = np.stack(
            [
                np.asarray(Image.open(io.BytesIO(data[offsets[t] : offsets[t + 1]].tobytes())))
                for t in frames
            ]
        )
        target = np.asarray(Image.open(io.BytesIO(z["target_jpeg"].tobytes())).convert("RGB"))
        data = {
            "frames": images,
            "masks": _unpacked(z, "masks")[:, frames],
            "boxes": z["boxes"][:, frames],
            "object_ids": z["object_ids"],
            "target": target,
        }
        if "products_packed" in z:
            data["products"] = _unpacked(z, "products")[:, frames]
        return data


def _unpacked(z, name: str) -> np.ndarray:
    """The bool array stored as `<name>_packed` and `<name>_shape`."""
    shape = tuple(z[f"{name}_shape"])
    return np.unpackbits(z[f"{name}_packed"], count=int(np.prod(shape))).reshape(shape).view(bool)
