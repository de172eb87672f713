"""ClipDataset: the sample contract, clip sampling and padding, augmentation that moves frames,
masks and boxes together, and determinism given (seed, epoch, index)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vois_cli.config import preset
from vois_cli.data.dataset import ClipDataset
from vois_cli.data.preprocess import preprocess
from vois_cli.data.transforms import IMAGENET_MEAN, IMAGENET_STD, augment_clip
from vois_cli.data.ytvis import encode_rle

CONFIG = preset("tiny", model={"num_frames": 4, "short_edge": 32, "max_long_edge": 48}).model
LENGTHS = {"long": 5, "short": 2}


def object_mask(i: int, h: int = 40, w: int = 60) -> np.ndarray:
    """An L-shaped object that moves right with the frame index (asymmetric under flips)."""
    mask = np.zeros((h, w), bool)
    mask[8:30, 6 + 3 * i : 14 + 3 * i] = True
    mask[22:30, 6 + 3 * i : 30 + 3 * i] = True
    return mask


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("root")
    videos, anns = [], []
    (root / "targets").mkdir()
    for vid, (name, length) in enumerate(LENGTHS.items(), start=1):
        (root / "frames" / name).mkdir(parents=True)
        for i in range(length):
            frame = np.zeros((40, 60, 3), np.uint8)
            frame[..., 0] = 220
            frame[object_mask(i)] = (0, 220, 0)
            Image.fromarray(frame).save(root / "frames" / name / f"{i:05d}.png")
        target = np.full((30, 30, 3), 255, np.uint8)
        target[5:25, 5:12] = (0, 220, 0)
        Image.fromarray(target).save(root / "targets" / f"{name}.png")
        videos.append(
            {"id": vid, "name": name, "width": 60, "height": 40, "length": length,
             "file_names": [f"{name}/{i:05d}.png" for i in range(length)],
             "target": f"targets/{name}.png", "source_fps": 20}
        )  # fmt: skip
        segs = [encode_rle(object_mask(i)) for i in range(length)]
        anns.append(
            {"id": vid, "video_id": vid, "category_id": 1, "segmentations": segs,
             "areas": [int(object_mask(i).sum()) for i in range(length)]}
        )  # fmt: skip
    ann = {"videos": videos, "annotations": anns, "categories": [{"id": 1, "name": "relevant"}]}
    (root / "annotations").mkdir()
    (root / "annotations" / "train.json").write_text(json.dumps(ann))
    preprocess(root / "frames", root / "annotations" / "train.json", root / "art", short_edge=40)
    return root / "art"


def pixels(video: torch.Tensor) -> torch.Tensor:
    """Undo ImageNet normalisation: (T, 3, H, W) -> 0..255."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    return video * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255 + mean


def test_sample_contract_and_clip_sampling(artifact):
    data = ClipDataset(artifact, CONFIG)
    assert len(data) == 5 + 2  # one clip per annotated frame
    assert len(ClipDataset(artifact, CONFIG, clips_per_video=3)) == 6
    s = data[0]
    t, (h, w) = CONFIG.num_frames, s["video"].shape[-2:]
    assert s["video"].shape == (t, 3, h, w) and s["video"].dtype == torch.float32
    assert min(h, w) == 32 or max(h, w) == 48
    assert s["target"].dim() == 3 and s["target"].shape[0] == 3
    assert s["masks"].shape == (1, t, h, w) and s["masks"].dtype == torch.bool
    assert s["boxes"].shape == (1, t, 4) and s["present"].shape == (1, t)
    assert s["video_id"] == 1 and s["frame_valid"].all()
    assert [data[i]["frame_index"].tolist() for i in range(5)] == [[0, 1, 2, 3]] * 3 + [
        [1, 2, 3, 4]
    ] * 2  # T consecutive frames around each reference
    short = data[5]
    assert short["video_id"] == 2 and short["frame_index"].tolist() == [0, 1, 0, 1]
    assert short["frame_valid"].tolist() == [True, True, False, False]
    assert torch.equal(short["video"][0], short["video"][2])  # cyclic repeat


@pytest.mark.parametrize("augmented", [True, False])
def test_a_clip_without_objects_keeps_its_frames_and_no_masks(augmented):
    rng = np.random.default_rng(0) if augmented else None
    clip = augment_clip(
        np.zeros((4, 40, 60, 3), np.uint8), np.zeros((0, 4, 40, 60), bool), 32, 48, rng
    )
    h, w = clip["video"].shape[-2:]
    assert clip["masks"].shape == (0, 4, h, w) and clip["boxes"].shape == (0, 4, 4)
    assert clip["present"].shape == (0, 4)


def test_evaluation_mode_is_unaugmented_and_in_order(artifact):
    data = ClipDataset(artifact, CONFIG, train=False)
    assert [(s["video_id"], s["frame_index"].tolist()) for s in data] == [
        (1, [0, 1, 2, 3]),
        (1, [4, 4, 4, 4]),
        (2, [0, 1, 0, 1]),
    ]
    s = data[0]
    assert s["video"].shape == (4, 3, 32, 48) and s["masks"].shape == (1, 4, 32, 48)
    cx0 = s["boxes"][0, 0, 0]
    assert torch.all(s["boxes"][0, 1:, 0] > cx0)  # the object moves right, unflipped


def test_evaluation_mode_leaves_the_target_whole_unflipped_and_the_same_every_epoch(artifact):
    """The 30x30 target (green bar at columns 5-11 on white) resized to short edge 32 only."""
    target = ClipDataset(artifact, CONFIG, train=False)[0]["target"]
    assert target.shape == (3, 32, 32)  # not cropped
    rgb = pixels(target[None])[0]
    columns = torch.nonzero((rgb[1] > 150) & (rgb[0] < 100), as_tuple=True)[1]
    assert columns.min() >= 4 and columns.max() <= 13  # 5-11 scaled by 32/30: not flipped
    for seed, epoch in ((1, 0), (7, 3)):
        data = ClipDataset(artifact, CONFIG, train=False, seed=seed)
        data.set_epoch(epoch)
        assert all(torch.equal(data[i]["target"], target) for i in (0, 1))


def test_augmentation_moves_frames_masks_and_boxes_together(artifact):
    data = ClipDataset(artifact, CONFIG, seed=3)
    flips = set()
    for epoch in range(4):
        data.set_epoch(epoch)
        for index in (0, 4, 6):
            s = data[index]
            rgb = pixels(s["video"])
            green = rgb[:, 1] > rgb[:, 0]  # (T, H, W)
            masks = s["masks"][:, :, :, :].any(0)
            agree = (green == masks).float().mean().item()
            assert agree > 0.97, (epoch, index, agree)
            h, w = masks.shape[-2:]
            for k, t in zip(*torch.nonzero(s["present"], as_tuple=True), strict=True):
                ys, xs = torch.nonzero(s["masks"][k, t], as_tuple=True)
                box = [(xs.min() + xs.max() + 1) / 2 / w, (ys.min() + ys.max() + 1) / 2 / h,
                       (xs.max() + 1 - xs.min()) / w, (ys.max() + 1 - ys.min()) / h]  # fmt: skip
                assert torch.allclose(s["boxes"][k, t], torch.stack(box).float(), atol=1e-6)
            assert not s["boxes"][~s["present"]].any()
            # the L's foot points right unless the clip was flipped
            k, t = 0, 0
            if s["present"][k, t]:
                ys, xs = torch.nonzero(s["masks"][k, t], as_tuple=True)
                top_x = xs[ys == ys.min()].float().mean()
                flips.add(bool(top_x > xs.float().mean()))
    assert flips == {True, False}  # both flipped and unflipped clips occur


def test_deterministic_given_seed_epoch_index(artifact):
    a, b = ClipDataset(artifact, CONFIG, seed=7), ClipDataset(artifact, CONFIG, seed=7)
    a.set_epoch(2)
    b.set_epoch(2)
    for key in ("video", "target", "masks", "boxes", "present"):
        assert torch.equal(a[3][key], b[3][key])
    b.set_epoch(3)
    shapes = {tuple(a[i]["video"].shape) + tuple(a[i]["target"].shape) for i in range(7)}
    others = {tuple(b[i]["video"].shape) + tuple(b[i]["target"].shape) for i in range(7)}
    assert shapes != others  # another epoch draws other crops


def test_every_products_masks_share_the_clips_augmentation(artifact):
    """Products (here the same objects again) are cropped and flipped with the targets, and
    storing them changes nothing else in the samples."""
    root = artifact.parent
    ann = root / "annotations" / "train.json"
    with_products = root / "art_products"
    if not with_products.exists():
        preprocess(root / "frames", ann, with_products, short_edge=40, products=ann)
    plain, both = ClipDataset(artifact, CONFIG, seed=5), ClipDataset(with_products, CONFIG, seed=5)
    assert "products" not in plain[0]
    for epoch in range(2):
        plain.set_epoch(epoch)
        both.set_epoch(epoch)
        for index in range(len(plain)):
            a, b = plain[index], both[index]
            for key in ("video", "target", "masks", "boxes", "present"):
                assert torch.equal(a[key], b[key])
            assert b["products"].shape[0] == 1  # every product, present in the clip or not
            if len(b["masks"]):
                assert torch.equal(b["products"], b["masks"])
            else:
                assert not b["products"].any()
