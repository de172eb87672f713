"""How well a backbone trained from scratch regresses boxes on SynthLive: a fast diagnostic.

The `tiny` model's boxes reach IoU ≈ 0.5 whatever its width, depth, windows or schedule
(docs/training-notes.md). This trains one stride-16 FCOS-style token head (the one of the
two-stage proposals: focal loss on the token under each object's box centre, L1 and GIoU on
its box) on top of a backbone alone, with no target, decoder or mask head, and measures on
every present object and frame the box IoU of the token under its centre (`centre`) and
the best of the frame's 10 top-scored tokens (`top10`):

- `swin`: the `tiny` preset's video path, f3 plus f4 upsampled (the model's memory E);
- `resnet18`: torchvision's ResNet-18 to layer3 (stride 16), from scratch.

    python3 benchmarks/backbone_boxes.py data/preprocessed data/ladder/target/test

One thread each; `--backbones` runs them one after the other.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from provenance import finish, provenance
from torch import Tensor, nn
from torchvision.ops import box_convert, box_iou, generalized_box_iou_loss, sigmoid_focal_loss

from vois_cli.atomic import write_json
from vois_cli.config import ModelConfig, preset
from vois_cli.data.dataset import ClipDataset
from vois_cli.models.backbone import DualPathSwin
from vois_cli.models.mlp import MLP
from vois_cli.models.proposals import cell_priors

HEAD_WIDTH = 64  # the tiny preset's hidden_dim
TOP = 10  # the tiny preset's proposals a frame


class SwinTrunk(nn.Module):
    """The tiny video path: f3 plus a linear of f4 upsampled, (T, 3, H, W) -> (T, h, w, 4C)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.swin = DualPathSwin(cfg)
        self.coarse = nn.Linear(self.swin.memory_channels, self.swin.feature_channels[2])
        self.channels = self.swin.feature_channels[2]

    def forward(self, video: Tensor) -> Tensor:
        out = self.swin(video[None], None)
        fine, coarse = out["features"][2][0], self.coarse(out["memory"][0])
        up = F.interpolate(coarse.permute(0, 3, 1, 2), size=fine.shape[1:3], mode="nearest")
        return fine + up.permute(0, 2, 3, 1)


class ResNetTrunk(nn.Module):
    """ResNet-18 to layer3 (stride 16), (T, 3, H, W) -> (T, h, w, 256)."""

    def __init__(self):
        super().__init__()
        r = torchvision.models.resnet18(weights=None)
        self.layers = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2, r.layer3)
        self.channels = 256

    def forward(self, video: Tensor) -> Tensor:
        return self.layers(video).permute(0, 2, 3, 1)


class TokenBoxes(nn.Module):
    """A trunk and the two-stage proposals' head: per token a score and a cxcywh box."""

    def __init__(self, trunk: nn.Module):
        super().__init__()
        self.trunk = trunk
        self.proj = nn.Linear(trunk.channels, HEAD_WIDTH)
        self.score = nn.Linear(HEAD_WIDTH, 1)
        self.box = MLP(HEAD_WIDTH, HEAD_WIDTH, 4, 3)

    def forward(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """(T, 3, H, W) -> logits (T, h, w), boxes (T, h, w, 4) sigmoid cxcywh."""
        x = self.proj(self.trunk(video))
        h, w = x.shape[1:3]
        prior = cell_priors(h, w, x.device).logit()
        return self.score(x).squeeze(-1), (self.box(x) + prior).sigmoid()


def build(name: str) -> TokenBoxes:
    if name == "swin":
        return TokenBoxes(SwinTrunk(preset("tiny", model={"use_target": False}).model))
    if name == "resnet18":
        return TokenBoxes(ResNetTrunk())
    raise ValueError(f"unknown backbone {name!r}; choose swin or resnet18")


def centre_tokens(sample: dict, h: int, w: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Every present (object, frame): its frame, the row and column of the token its box
    centre falls in, and its cxcywh box."""
    k, t = sample["present"].nonzero(as_tuple=True)
    boxes = sample["boxes"][k, t]
    rows = (boxes[:, 1] * h).long().clamp(0, h - 1)
    cols = (boxes[:, 0] * w).long().clamp(0, w - 1)
    return t, rows, cols, boxes


def loss(model: TokenBoxes, sample: dict) -> Tensor:
    """The two-stage token loss (criterion.py's weights), per object."""
    logits, boxes = model(sample["video"])
    t, rows, cols, gt = centre_tokens(sample, *logits.shape[1:])
    hit = torch.zeros_like(logits)
    hit[t, rows, cols] = 1
    src = boxes[t, rows, cols]
    giou = generalized_box_iou_loss(
        box_convert(src, "cxcywh", "xyxy"), box_convert(gt, "cxcywh", "xyxy"), reduction="sum"
    )
    focal = sigmoid_focal_loss(logits, hit, reduction="sum")
    return (focal + 5 * F.l1_loss(src, gt, reduction="sum") + 2 * giou) / len(gt)


@torch.no_grad()
def box_quality(model: TokenBoxes, dataset: ClipDataset) -> dict[str, float]:
    """Mean IoU of the centre token's box and of the best of the frame's top-10 boxes."""
    model.eval()
    centre, top = [], []
    for i in range(len(dataset)):
        sample = dataset[i]
        logits, boxes = model(sample["video"])
        t, rows, cols, gt = centre_tokens(sample, *logits.shape[1:])
        gt, boxes = box_convert(gt, "cxcywh", "xyxy"), box_convert(boxes, "cxcywh", "xyxy")
        centre += box_iou(boxes[t, rows, cols], gt).diagonal().tolist()
        for frame, g in zip(t.tolist(), gt, strict=True):
            best = logits[frame].flatten().topk(TOP).indices
            top.append(box_iou(boxes[frame].flatten(0, 1)[best], g[None]).max().item())
    model.train()
    return {"centre": round(float(np.mean(centre)), 3), "top10": round(float(np.mean(top)), 3)}


def _prefixed(prefix: str, figures: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{k}": v for k, v in figures.items()}


def run(name: str, train_dir: Path, test_dir: Path, steps: int, seed: int) -> dict:
    torch.manual_seed(seed)
    model = build(name)
    cfg = preset("tiny").model
    train = ClipDataset(train_dir, cfg, train=True, clips_per_video=4, seed=seed)
    tiny = preset("tiny").train
    optimizer = torch.optim.AdamW(model.parameters(), lr=tiny.lr, weight_decay=tiny.weight_decay)
    order = np.random.default_rng(seed)
    losses, start = [], time.perf_counter()
    for step in range(steps):
        train.set_epoch(step // len(train))
        sample = train[int(order.integers(len(train)))]
        if not sample["present"].any():
            continue
        value = loss(model, sample)
        optimizer.zero_grad()
        value.backward()
        nn.utils.clip_grad_norm_(model.parameters(), tiny.clip_max_norm)
        optimizer.step()
        losses.append(value.item())
    seconds = time.perf_counter() - start
    fitted = ClipDataset(train_dir, cfg, train=False)
    return {
        "backbone": name,
        "parameters": sum(p.numel() for p in model.trunk.parameters()),
        "steps": steps,
        "train_s": round(seconds, 1),
        "loss_last_quarter": round(float(np.mean(losses[-max(1, len(losses) // 4) :])), 3),
        **_prefixed("train", box_quality(model, fitted)),
        **_prefixed("test", box_quality(model, ClipDataset(test_dir, cfg, train=False))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train", type=Path, help="a preprocessed training artifact")
    parser.add_argument("test", type=Path, help="a preprocessed artifact to measure on")
    parser.add_argument("--backbones", nargs="+", default=["swin", "resnet18"])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/backbone_boxes.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    inputs = {"train": str(args.train), "test": str(args.test), "seed": args.seed}
    meta = provenance(inputs, torch_threads=args.threads)
    rows = [run(b, args.train, args.test, args.steps, args.seed) for b in args.backbones]
    for row in rows:
        print(json.dumps(row))
    write_json(args.out, {"rows": rows, "meta": finish(meta)}, indent=1)


if __name__ == "__main__":
    main()
