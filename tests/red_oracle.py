"""A stand-in for the network in the Predictor and Stream tests: a video of one red square
on grey, and a model that reports the red pixels as one proposal scored by their red level."""

import numpy as np
import torch

from vois_cli.config import preset
from vois_cli.inference import Predictor

# T = 8, default overlap 2; a track scores its proposals' mean score (the oracle's red level)
CONFIG = preset(
    "tiny",
    model={"score_coverage": False, "score_consistency": False, "score_shape": False,
           "score_agreement": False, "mask_guide": 0.0},
)  # fmt: skip
H, W, SIDE = 64, 96, 16
GREY, RED = (128, 128, 128), (230, 20, 20)


def square_position(f: int) -> tuple[int, int] | None:
    """(top, left) of the red square in frame f: right, gone for frames 15-22, back leftwards."""
    if f < 15:
        return 24, 4 * f
    if f < 23:
        return None
    return 20, 76 - 2 * (f - 23)


def frame(f: int, position=square_position, colour=RED) -> np.ndarray:
    image = np.full((H, W, 3), GREY, np.uint8)
    if (at := position(f)) is not None:
        image[at[0] : at[0] + SIDE, at[1] : at[1] + SIDE] = colour
    return image


class RedOracle(torch.nn.Module):
    """Stands in for the network: reports the red pixels of each clip frame at input size."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.clips = []  # first channel value of each frame, to see what each call got

    def encode_target(self, target):
        return target

    def forward(self, video, target):
        """video (1, T, 3, h, w) ImageNet-normalised → red pixels bool (T, h, w), their level."""
        self.clips.append(video[0, :, 0, 0, 0].clone())
        red = (video[0, :, 0] > 1.0) & (video[0, :, 1] < 0.0)
        level = video[0, :, 0][red].max() * 0.229 + 0.485 if red.any() else torch.tensor(0.0)
        return {"red": red, "level": level.item()}


def oracle_postprocess(outputs, num_frames, sizes):
    """One proposal covering the red pixels at the frame size, scored by their top red level."""
    red = outputs["red"][: num_frames[0]].float()[:, None]
    masks = torch.nn.functional.interpolate(red, size=sizes[0], mode="nearest")[:, 0] > 0.5
    return [[{"score": outputs["level"], "masks": masks.numpy()}] if masks.any() else []]


def predictor(config=CONFIG, **options) -> Predictor:
    return Predictor(RedOracle(), oracle_postprocess, config, **options)
