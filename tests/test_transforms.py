"""`to_model_input` gives bit for bit the values of the plain definition (flip and crop, NCHW
float, antialiased bilinear resize, ImageNet normalisation) for any geometry and size, so
that its faster channels-last path changes neither training nor inference."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vois_cli.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Geometry,
    resized_shape,
    to_model_input,
)


def definition(images: np.ndarray, size: tuple[int, int], geometry: Geometry) -> torch.Tensor:
    x = torch.from_numpy(geometry.apply(images.transpose(0, 3, 1, 2)).copy()).float()
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
    return (x - mean) / std


@pytest.mark.parametrize("seed", range(6))
def test_model_input_is_the_definition_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    n, height, width = int(rng.integers(1, 4)), int(rng.integers(1, 300)), int(rng.integers(1, 500))
    images = rng.integers(0, 256, (n, height, width, 3), dtype=np.uint8)
    images.setflags(write=seed % 2 == 0)  # decoded frames are writable, PIL pixels are not
    geometry = Geometry.sample(rng, height, width) if seed > 1 else Geometry.identity(height, width)
    size = resized_shape(geometry.crop[2], geometry.crop[3], [8, 96, 224][seed % 3], 400)
    x = to_model_input(images, size, geometry)
    assert x.is_contiguous() and x.dtype == torch.float32
    assert torch.equal(x, definition(images, size, geometry))
