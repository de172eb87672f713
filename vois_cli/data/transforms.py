"""The paper's augmentation (§6.1) and the geometry shared by preprocessing and loading.

Training: one horizontal flip and one random crop for all frames, masks and boxes of a clip;
the target gets its own flip and crop. Then resize to the model's short edge (long edge
capped, aspect kept) and ImageNet normalisation. Boxes are always recomputed from the
final masks, so a box is exactly its mask's extent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resized_shape(height: int, width: int, short_edge: int, max_long_edge: int | None) -> tuple:
    """(h, w) with the short edge at `short_edge`, the long edge at most `max_long_edge`."""
    scale = short_edge / min(height, width)
    if max_long_edge is not None and max(height, width) * scale > max_long_edge:
        scale = max_long_edge / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """bool (..., H, W) -> float32 (..., 4) pixel boxes (x0, y0, x1, y1), x1/y1 exclusive.

    Zeros where the mask is empty.
    """
    rows, cols = masks.any(-1), masks.any(-2)
    h, w = masks.shape[-2:]
    y0 = np.where(rows.any(-1), rows.argmax(-1), 0)
    y1 = np.where(rows.any(-1), h - rows[..., ::-1].argmax(-1), 0)
    x0 = np.where(cols.any(-1), cols.argmax(-1), 0)
    x1 = np.where(cols.any(-1), w - cols[..., ::-1].argmax(-1), 0)
    return np.stack([x0, y0, x1, y1], -1).astype(np.float32)


def normalised_cxcywh(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixel (x0, y0, x1, y1) (..., 4) -> (cx, cy, w, h) in [0, 1]; empty boxes stay zero."""
    x0, y0, x1, y1 = np.moveaxis(boxes, -1, 0)
    out = np.stack([(x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width,
                    (y1 - y0) / height], -1)  # fmt: skip
    return np.where((x1 > x0)[..., None], out, 0).astype(np.float32)


@dataclass(frozen=True)
class Geometry:
    """One draw of the augmentation: flip, then crop (top, left, height, width) of the source."""

    flip: bool
    crop: tuple[int, int, int, int]

    @classmethod
    def identity(cls, height: int, width: int) -> Geometry:
        return cls(False, (0, 0, height, width))

    @classmethod
    def sample(
        cls, rng: np.random.Generator, height: int, width: int, min_crop: float = 0.6
    ) -> Geometry:
        """A flip with probability 1/2 and a crop whose sides are in [min_crop, 1] of the image."""
        flip = bool(rng.random() < 0.5)
        ch = int(rng.integers(max(1, round(min_crop * height)), height + 1))
        cw = int(rng.integers(max(1, round(min_crop * width)), width + 1))
        top = int(rng.integers(0, height - ch + 1))
        left = int(rng.integers(0, width - cw + 1))
        return cls(flip, (top, left, ch, cw))

    def apply(self, array: np.ndarray) -> np.ndarray:
        """Flip and crop the last two axes of (..., H, W)."""
        if self.flip:
            array = array[..., ::-1]
        top, left, h, w = self.crop
        return array[..., top : top + h, left : left + w]


def to_model_input(images: np.ndarray, size: tuple[int, int], geometry: Geometry) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> ImageNet-normalised float32 (N, 3, h, w) after `geometry`."""
    # Pixels stay channels-last until the resize, which computes the same values from either
    # layout but skips a transposing copy of the full-size frames. Decoded frames and PIL
    # images are read-only: torch warns on a view of those, so they are copied.
    x = geometry.apply(images.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1)
    x = torch.from_numpy(np.require(x, requirements=("C_CONTIGUOUS", "WRITEABLE")))
    x = x.permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
    return ((x - mean) / std).contiguous()


def resize_masks(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """bool (..., H, W) -> bool (..., h, w), nearest neighbour (pixel centres)."""
    lead = masks.shape[:-2]
    if masks.size == 0:  # no objects: interpolate refuses a tensor without channels
        return np.zeros((*lead, *size), bool)
    x = torch.from_numpy(np.ascontiguousarray(masks)).reshape(1, -1, *masks.shape[-2:])
    x = F.interpolate(x.to(torch.uint8), size=size, mode="nearest-exact")
    return x.reshape(*lead, *size).bool().numpy()


def augment_clip(
    frames: np.ndarray,
    masks: np.ndarray,
    short_edge: int,
    max_long_edge: int | None,
    rng: np.random.Generator | None,
) -> dict:
    """One clip at model size; `rng` None means no augmentation (evaluation).

    frames uint8 (T, H, W, 3), masks bool (K, T, H, W) ->
    video float32 (T, 3, h, w), masks bool (K, T, h, w), boxes float32 (K, T, 4) normalised
    (cx, cy, w, h), present bool (K, T).
    """
    height, width = frames.shape[1:3]
    geometry = (
        Geometry.identity(height, width) if rng is None else Geometry.sample(rng, height, width)
    )
    size = resized_shape(geometry.crop[2], geometry.crop[3], short_edge, max_long_edge)
    video = to_model_input(frames, size, geometry)
    clip_masks = resize_masks(np.ascontiguousarray(geometry.apply(masks)), size)
    boxes = normalised_cxcywh(mask_boxes(clip_masks), *size)
    return {
        "video": video,
        "masks": torch.from_numpy(clip_masks),
        "boxes": torch.from_numpy(boxes),
        "present": torch.from_numpy(clip_masks.any((-1, -2))),
    }


def augment_target(
    image: np.ndarray, short_edge: int, max_long_edge: int | None, rng: np.random.Generator | None
) -> torch.Tensor:
    """uint8 (H, W, 3) target -> float32 (3, h, w), with its own flip and crop when `rng`."""
    height, width = image.shape[:2]
    geometry = (
        Geometry.identity(height, width) if rng is None else Geometry.sample(rng, height, width)
    )
    size = resized_shape(geometry.crop[2], geometry.crop[3], short_edge, max_long_edge)
    return to_model_input(image[None], size, geometry)[0]
