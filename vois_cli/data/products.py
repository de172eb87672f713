"""Procedural products: shape category × pattern × colour, rendered as sprites with exact masks.

A product is the unit of relevance in SynthLive: an object in a clip is relevant exactly when
its three attributes equal the target's. Sprites are drawn without anti-aliasing, so the
mask is the set of pixels the product covers, with no soft edge to argue about.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields, replace

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

# width / height of each shape's sprite
SHAPES: dict[str, float] = {
    "shirt": 1.1,
    "dress": 0.75,
    "bag": 1.0,
    "bottle": 0.45,
    "shoe": 1.7,
    "mug": 1.2,
    "hat": 1.5,
}
PATTERNS: tuple[str, ...] = ("plain", "stripes", "dots", "checks", "chevron")
# colour name -> (base, accent): the accent draws the pattern, so it contrasts with the base
PALETTE: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "red": ((205, 35, 45), (250, 245, 235)),
    "orange": ((240, 130, 20), (45, 40, 60)),
    "yellow": ((240, 210, 40), (40, 45, 90)),
    "green": ((40, 150, 60), (250, 245, 235)),
    "teal": ((20, 160, 165), (250, 245, 235)),
    "blue": ((35, 75, 200), (250, 245, 235)),
    "purple": ((125, 55, 170), (250, 220, 90)),
    "pink": ((240, 120, 180), (60, 30, 70)),
    "brown": ((120, 75, 40), (240, 215, 160)),
    "black": ((35, 35, 40), (230, 60, 60)),
}
ATTRIBUTES: tuple[str, ...] = ("shape", "pattern", "colour")
_CHOICES = {"shape": tuple(SHAPES), "pattern": PATTERNS, "colour": tuple(PALETTE)}
PATTERN_CELLS = 4  # pattern repeats per sprite height


@dataclass(frozen=True)
class Product:
    """One procedural product; two objects are the same item iff their products are equal."""

    shape: str
    pattern: str
    colour: str

    def differences(self, other: Product) -> tuple[str, ...]:
        """The attributes in which `other` differs from this product."""
        return tuple(
            f.name for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)
        )

    def to_dict(self) -> dict[str, str]:
        return {"shape": self.shape, "pattern": self.pattern, "colour": self.colour}


def random_product(rng: np.random.Generator) -> Product:
    return Product(**{a: str(rng.choice(_CHOICES[a])) for a in ATTRIBUTES})


def hard_negative(
    product: Product, rng: np.random.Generator, attributes: tuple[str, ...] = ATTRIBUTES
) -> Product:
    """A look-alike differing from `product` in exactly one of `attributes`, chosen at random."""
    attribute = attributes[rng.integers(len(attributes))]
    others = [v for v in _CHOICES[attribute] if v != getattr(product, attribute)]
    return replace(product, **{attribute: str(others[rng.integers(len(others))])})


def unrelated_product(product: Product, rng: np.random.Generator) -> Product:
    """Clutter: a product differing from `product` in at least two attributes."""
    while True:
        other = random_product(rng)
        if len(product.differences(other)) >= 2:
            return other


def _silhouette(shape: str, w: int, h: int) -> np.ndarray:
    """(h, w) bool: the shape's filled outline, drawn in a unit box scaled to w × h."""
    img = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(img)

    def pts(*xy: float) -> list[tuple[float, float]]:
        return [(x * (w - 1), y * (h - 1)) for x, y in zip(xy[::2], xy[1::2], strict=True)]

    def box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
        return [x0 * (w - 1), y0 * (h - 1), x1 * (w - 1), y1 * (h - 1)]

    line = max(2, round(0.08 * h))
    if shape == "shirt":
        d.polygon(
            pts(0.35, 0, 0.43, 0.08, 0.57, 0.08, 0.65, 0, 1, 0.18, 0.88, 0.42, 0.78, 0.35)
            + pts(0.78, 1, 0.22, 1, 0.22, 0.35, 0.12, 0.42, 0, 0.18),
            fill=255,
        )
    elif shape == "dress":
        d.polygon(
            pts(0.36, 0, 0.64, 0, 0.62, 0.18, 0.72, 0.32, 0.6, 0.42, 1, 1, 0, 1, 0.4, 0.42)
            + pts(0.28, 0.32, 0.38, 0.18),
            fill=255,
        )
    elif shape == "bag":
        d.polygon(pts(0.12, 0.4, 0.88, 0.4, 1, 1, 0, 1), fill=255)
        d.arc(box(0.25, 0.02, 0.75, 0.8), 180, 360, fill=255, width=line)
    elif shape == "bottle":
        d.polygon(
            pts(0.33, 0, 0.67, 0, 0.67, 0.2, 1, 0.36, 1, 1, 0, 1, 0, 0.36, 0.33, 0.2), fill=255
        )
    elif shape == "shoe":
        d.polygon(pts(0, 0.1, 0.36, 0.1, 0.46, 0.45, 0.8, 0.55, 1, 0.78, 1, 1, 0, 1), fill=255)
    elif shape == "mug":
        d.rectangle(box(0, 0.04, 0.74, 1), fill=255)
        d.ellipse(box(0.52, 0.22, 1, 0.78), outline=255, width=line)
    elif shape == "hat":
        d.pieslice(box(0.18, 0.04, 0.82, 1.3), 180, 360, fill=255)
        d.ellipse(box(0, 0.56, 1, 0.86), fill=255)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return np.asarray(img) > 0


def _pattern(pattern: str, w: int, h: int) -> np.ndarray:
    """(h, w) bool: where the accent colour goes; the period scales with the sprite height."""
    v, u = np.mgrid[0:h, 0:w].astype(np.float32) * (PATTERN_CELLS / h)
    if pattern == "plain":
        return np.zeros((h, w), bool)
    if pattern == "stripes":
        return (v % 1) < 0.45
    if pattern == "dots":
        return ((u % 1) - 0.5) ** 2 + ((v % 1) - 0.5) ** 2 < 0.28**2
    if pattern == "checks":
        return (np.floor(u) + np.floor(v)) % 2 == 1
    if pattern == "chevron":
        return ((v + np.abs((u % 1) - 0.5)) % 1) < 0.45
    raise ValueError(f"unknown pattern {pattern!r}")


@functools.lru_cache(maxsize=256)
def render_sprite(product: Product, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The product at `height` pixels: colours (h, w, 3) uint8 and mask (h, w) bool.

    Outside the mask the colours are 0. A soft horizontal shading and a darker outline give
    the sprite volume; the mask is exactly the drawn silhouette.
    """
    h = int(height)
    w = max(2, round(SHAPES[product.shape] * h))
    mask = _silhouette(product.shape, w, h)
    base, accent = (np.array(c, np.float32) for c in PALETTE[product.colour])
    rgb = np.where(_pattern(product.pattern, w, h)[..., None], accent, base)
    x = np.linspace(-1.0, 1.0, w, dtype=np.float32)
    rgb = rgb * (1.0 - 0.18 * x**2)[None, :, None]
    outline = mask & ~ndimage.binary_erosion(mask, iterations=max(1, h // 48))
    rgb[outline] *= 0.6
    rgb = np.where(mask[..., None], np.round(rgb), 0).astype(np.uint8)
    rgb.setflags(write=False)
    mask.setflags(write=False)
    return rgb, mask


def target_image(product: Product, size: int) -> np.ndarray:
    """(size, size, 3) uint8: the product alone, upright and centred on white (the query)."""
    longest = round(0.8 * size)
    aspect = SHAPES[product.shape]
    height = longest if aspect <= 1 else max(2, round(longest / aspect))
    rgb, mask = render_sprite(product, height)
    h, w = mask.shape
    out = np.full((size, size, 3), 255, np.uint8)
    y0, x0 = (size - h) // 2, (size - w) // 2
    region = out[y0 : y0 + h, x0 : x0 + w]
    region[mask] = rgb[mask]
    return out
