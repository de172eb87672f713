"""The training dataset: T-frame clips from the preprocessed artifact (docs/interfaces.md).

An epoch follows VisTR: one clip per annotated frame of every video (or `clips_per_video`
evenly spaced reference frames), each clip the T consecutive annotated frames around its
reference, differently augmented. A video shorter than T is filled by repeating its frames
cyclically, marked by `frame_valid`. Sample `index` of epoch `e` draws its augmentation
from `numpy.random.default_rng((seed, e, index))`, so it is the same in every worker/rank.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vois_cli.config import ModelConfig
from vois_cli.data.preprocess import load_index, load_video
from vois_cli.data.transforms import augment_clip, augment_target


def clip_frames(length: int, start: int, num_frames: int) -> tuple[list[int], list[bool]]:
    """Frame indices of a T-frame clip from `start`, cycling over [start, length) when short."""
    span = length - start
    frames = [start + t % span for t in range(num_frames)]
    return frames, [t < span for t in range(num_frames)]


class ClipDataset(Dataset):
    """Samples of docs/interfaces.md; `train=False`: no augmentation, consecutive clips in order.

    In evaluation mode the items are each video's non-overlapping T-frame windows from frame 0.
    """

    def __init__(
        self,
        artifact_dir: str | Path,
        model_config: ModelConfig,
        train: bool = True,
        clips_per_video: int = 0,
        seed: int = 0,
    ):
        self.artifact = Path(artifact_dir)
        self.index = load_index(self.artifact)
        self.config, self.train, self.seed, self.epoch = model_config, train, seed, 0
        t = model_config.num_frames
        self.items: list[tuple[int, int]] = []  # (video position in the index, start frame)
        for v, entry in enumerate(self.index["videos"]):
            length = entry["length"]
            if not train:
                self.items += [(v, s) for s in range(0, length, t)]
                continue
            count = clips_per_video or length
            for k in range(count):
                ref = k * length // count
                self.items.append((v, min(max(ref - t // 2, 0), max(length - t, 0))))

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose augmentation draws `__getitem__` reproduces."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        v, start = self.items[index]
        entry = self.index["videos"][v]
        frames, valid = clip_frames(entry["length"], start, self.config.num_frames)
        data = load_video(self.artifact, entry, frames)
        rng = np.random.default_rng((self.seed, self.epoch, index)) if self.train else None
        short, cap = self.config.short_edge, self.config.max_long_edge
        # every placed product's masks (if stored and the loss uses them) share the targets'
        # flip and crop
        products = data.get("products") if self.config.loss_mask_o2m > 0 else None
        targets = len(data["masks"])
        masks = data["masks"] if products is None else np.concatenate([data["masks"], products])
        clip = augment_clip(data["frames"], masks, short, cap, rng)
        extra = {} if products is None else {"products": clip["masks"][targets:]}
        for key in ("masks", "boxes", "present"):
            clip[key] = clip[key][:targets]
        # an object absent from the whole (cropped) training clip has no sequence to match
        keep = (
            clip["present"].any(1)
            if self.train
            else torch.ones(len(clip["present"]), dtype=torch.bool)
        )
        return {
            "video": clip["video"],
            "target": augment_target(data["target"], short, cap, rng),
            "masks": clip["masks"][keep],
            "boxes": clip["boxes"][keep],
            "present": clip["present"][keep],
            "frame_valid": torch.tensor(valid),
            "video_id": entry["id"],
            "frame_index": torch.tensor(frames, dtype=torch.int64),
            **extra,
        }
