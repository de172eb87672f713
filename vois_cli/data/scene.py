"""SynthLive scenes: who is in a clip, how each object moves, and the renderer with exact masks.

A scene holds the target product, 1–3 instances of it, 1–4 hard negatives (one attribute
changed) and some unrelated clutter over a studio background. Every object follows smooth
keyframed motion with scale, rotation and a non-rigid sway; some leave the frame and come
back, and objects occlude each other in a fixed depth order. The renderer samples each
sprite with nearest-neighbour inverse mapping, so the label map it returns says exactly
which object every pixel shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from vois_cli.data.products import (
    ATTRIBUTES,
    Product,
    hard_negative,
    random_product,
    render_sprite,
    unrelated_product,
)

TARGETS = (1, 3)  # relevant instances per clip, inclusive
NEGATIVES = (1, 4)  # hard negatives per clip
CLUTTER = (1, 2)  # unrelated products per clip
# object height / frame height before the scale wobble: a live broadcast shows products close
# up (a median object side, √(mean visible area), of 0.31 of the frame height, 35 % of them
# at 0.35 or more; tests/test_synth.py pins the figures)
HEIGHT_FRACTION = (0.32, 0.62)
SCALE_WOBBLE = 0.15  # relative amplitude of the slow scale change (approach / recede)
LEAVE_PROBABILITY = 0.4  # chance an object exits the frame once and re-enters
WARP_MAX = 0.07  # sway amplitude as a fraction of the object's height


@dataclass(frozen=True)
class Track:
    """One object's appearance and motion; per-frame arrays have shape (num_frames,)."""

    product: Product
    role: str  # "target" (relevant), "negative" (one attribute off) or "clutter"
    cx: np.ndarray  # centre x, pixels
    cy: np.ndarray  # centre y, pixels
    size: np.ndarray  # object height, pixels
    angle: np.ndarray  # rotation, radians
    warp: np.ndarray  # sway amplitude, fraction of the object height
    warp_phase: np.ndarray  # sway phase, radians
    warp_freq: float  # sway waves per object height
    sprite_height: int  # sprite resolution: at least the largest on-screen height


@dataclass(frozen=True)
class Scene:
    """A clip before rendering: `tracks` are in drawing order, back to front."""

    width: int
    height: int
    num_frames: int
    target: Product
    background: np.ndarray  # (H, W, 3) uint8
    tracks: tuple[Track, ...]

    @property
    def relevant(self) -> list[int]:
        """Indices into `tracks` of the target's instances."""
        return [k for k, tr in enumerate(self.tracks) if tr.role == "target"]


def _smooth_noise(rng: np.random.Generator, width: int, height: int, cell: int) -> np.ndarray:
    """(H, W) float32 in [0, 1]: value noise with features about `cell` pixels wide."""
    coarse = rng.random((height // cell + 2, width // cell + 2)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, "F").resize((width, height), Image.BICUBIC))


def make_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8: a muted wall over a darker floor, mottled, with a fabric weave."""
    y = np.arange(height, dtype=np.float32)[:, None, None]
    x = np.arange(width, dtype=np.float32)[None, :, None]
    wall = rng.uniform(110, 220) * (1 + rng.uniform(-0.15, 0.15, 3))
    floor = wall * rng.uniform(0.55, 0.8) * (1 + rng.uniform(-0.15, 0.15, 3))
    horizon = rng.uniform(0.6, 0.8) * height
    img = np.where(y < horizon, wall, floor).astype(np.float32)
    img = img + 40 * (_smooth_noise(rng, width, height, max(8, width // 6))[..., None] - 0.5)
    period = rng.uniform(4, 10) * width / 320
    weave = np.sin(2 * np.pi * x / period) * np.sin(2 * np.pi * y / (period * rng.uniform(1, 3)))
    img = img + rng.uniform(3, 9) * weave * (y < horizon)
    r2 = ((x - width / 2) / width) ** 2 + ((y - height / 2) / height) ** 2
    img = img * (1 - 0.5 * r2)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _path(rng: np.random.Generator, n: int, low: float, high: float, leave: bool) -> np.ndarray:
    """(n,) eased keyframe positions in [low, high]; if `leave`, one keyframe is off-screen."""
    step = int(rng.integers(16, 31))
    keys = rng.uniform(low, high, n // step + 2)
    if leave and len(keys) >= 3:
        keys[rng.integers(1, len(keys) - 1)] = rng.choice([-0.35, 1.35])
    t = np.arange(n) / step
    i = np.floor(t).astype(int)
    ease = (1 - np.cos(np.pi * (t - i))) / 2
    return keys[i] * (1 - ease) + keys[i + 1] * ease


def _wave(rng: np.random.Generator, n: int, amplitude: float) -> np.ndarray:
    """(n,) a slow sine of random period (2–6 s at 20 fps) and phase."""
    period = rng.uniform(40, 120)
    return amplitude * np.sin(2 * np.pi * np.arange(n) / period + rng.uniform(0, 2 * np.pi))


def make_track(
    rng: np.random.Generator, product: Product, role: str, width: int, height: int, n: int
) -> Track:
    """Random motion for one object over `n` frames of a `width × height` clip."""
    leave = rng.random() < LEAVE_PROBABILITY
    horizontal = rng.random() < 0.75  # most exits are sideways
    cx = _path(rng, n, 0.12, 0.88, leave and horizontal) * width
    cy = _path(rng, n, 0.22, 0.78, leave and not horizontal) * height
    size = rng.uniform(*HEIGHT_FRACTION) * height * (1 + _wave(rng, n, SCALE_WOBBLE))
    angle = rng.uniform(-0.35, 0.35) + _wave(rng, n, rng.uniform(0, 0.5))
    warp = rng.uniform(0, WARP_MAX) * (0.5 + 0.5 * np.abs(_wave(rng, n, 1.0)))
    warp_phase = rng.uniform(0, 2 * np.pi) + np.arange(n) * rng.uniform(0.05, 0.25)
    return Track(
        product=product,
        role=role,
        cx=cx,
        cy=cy,
        size=size,
        angle=angle,
        warp=warp,
        warp_phase=warp_phase,
        warp_freq=float(rng.uniform(0.5, 1.5)),
        sprite_height=int(np.ceil(size.max())) + 1,
    )


def make_scene(
    rng: np.random.Generator,
    width: int,
    height: int,
    num_frames: int,
    look_alikes: tuple[str, ...] = ATTRIBUTES,
) -> Scene:
    """A random clip layout: target, instances, hard negatives, clutter, background, depth order.

    Hard negatives differ from the target in one of the attributes `look_alikes`.
    """
    target = random_product(rng)
    products = [(target, "target")] * int(rng.integers(TARGETS[0], TARGETS[1] + 1))
    # negatives repeat as often as the target does, so "the product seen twice" is no clue
    num_negatives = int(rng.integers(NEGATIVES[0], NEGATIVES[1] + 1))
    looks = [
        hard_negative(target, rng, look_alikes) for _ in range(rng.integers(1, num_negatives + 1))
    ]
    looks += [looks[rng.integers(len(looks))] for _ in range(num_negatives - len(looks))]
    products += [(look, "negative") for look in looks]
    products += [
        (unrelated_product(target, rng), "clutter")
        for _ in range(rng.integers(CLUTTER[0], CLUTTER[1] + 1))
    ]
    background = make_background(rng, width, height)
    order = rng.permutation(len(products))
    tracks = tuple(
        make_track(rng, products[k][0], products[k][1], width, height, num_frames) for k in order
    )
    return Scene(width, height, num_frames, target, background, tracks)


def _place(track: Track, t: int, width: int, height: int):
    """Where track's sprite lands in frame t: the pixel box and, inside it, the sampled
    sprite pixels (mask (h, w) bool, sprite row and column indices of the covered pixels)."""
    rgb, mask = render_sprite(track.product, track.sprite_height)
    sh, sw = mask.shape
    scale = track.size[t] / sh  # frame pixels per sprite pixel
    cos, sin = np.cos(track.angle[t]), np.sin(track.angle[t])
    half_w, half_h = sw * scale / 2, sh * scale / 2
    sway = track.warp[t] * track.size[t]
    ex = abs(cos) * half_w + abs(sin) * half_h + sway + 1
    ey = abs(sin) * half_w + abs(cos) * half_h + sway + 1
    x0, x1 = max(0, int(track.cx[t] - ex)), min(width, int(np.ceil(track.cx[t] + ex)))
    y0, y1 = max(0, int(track.cy[t] - ey)), min(height, int(np.ceil(track.cy[t] + ey)))
    if x0 >= x1 or y0 >= y1:
        return None
    dy, dx = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
    dx -= track.cx[t]
    dy -= track.cy[t]
    sy = (-sin * dx + cos * dy) / scale + sh / 2
    sx = (cos * dx + sin * dy) / scale + sw / 2
    sx += (sway / scale) * np.sin(2 * np.pi * track.warp_freq * sy / sh + track.warp_phase[t])
    ix, iy = np.floor(sx).astype(np.int32), np.floor(sy).astype(np.int32)
    inside = (ix >= 0) & (ix < sw) & (iy >= 0) & (iy < sh)
    covered = np.zeros(inside.shape, bool)
    covered[inside] = mask[iy[inside], ix[inside]]
    return (y0, y1, x0, x1), covered, rgb[iy[covered], ix[covered]]


def render_frame(scene: Scene, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame t of the clip: RGB (H, W, 3) uint8 and labels (H, W) int16.

    `labels[y, x]` is the index in `scene.tracks` of the object the pixel shows, or -1 for
    background; `labels == k` is object k's visible (occlusion-aware) mask.
    """
    frame = scene.background.copy()
    labels = np.full((scene.height, scene.width), -1, np.int16)
    for k, track in enumerate(scene.tracks):
        placed = _place(track, t, scene.width, scene.height)
        if placed is None:
            continue
        (y0, y1, x0, x1), covered, colours = placed
        frame[y0:y1, x0:x1][covered] = colours
        labels[y0:y1, x0:x1][covered] = k
    return frame, labels
