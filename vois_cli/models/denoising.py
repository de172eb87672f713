"""Box denoising queries (DN-DETR), for training only.

Hungarian matching pairs each object with a different query from one step to the next, so
the decoder's box refinement gets a noisy target early in training. Denoising queries give
it a fixed one: in each of `dn_groups` groups, every object present in a frame gets a query
at a copy of its box with each corner moved by less than `dn_noise` of its half-size,
started like a two-stage query (content and position of the memory token under the noised
centre, the noised box as the reference the decoder refines), and learns the true box (L1
and GIoU; no class term: DINO's contrastive class term, with the look-alikes as negatives,
cost the masks, docs/training-notes.md). Groups and padding are hidden from each other and
from the matching queries by a self-attention mask, so inference is unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import box_convert

MIN_SIDE = 1e-3  # a noised box keeps at least this width and height (normalised)


def noised(boxes: Tensor, noise: float, generator: torch.Generator) -> Tensor:
    """cxcywh boxes (P, 4) with each corner moved, each way, by a uniform draw in [0, noise)
    times half the box's side (drawn on the CPU by `generator`), clipped to the image, at
    least MIN_SIDE wide and high."""
    xyxy = box_convert(boxes, "cxcywh", "xyxy")
    half = boxes[:, 2:].repeat(1, 2) / 2
    sign = torch.randint(0, 2, xyxy.shape, generator=generator) * 2 - 1
    size = torch.rand(xyxy.shape, generator=generator)
    xyxy = xyxy + (sign * noise * size).to(boxes.device) * half
    low = xyxy[:, :2].clamp(0, 1 - MIN_SIDE)
    high = torch.maximum(xyxy[:, 2:], low + MIN_SIDE).clamp(max=1)
    return box_convert(torch.cat([low, high], 1), "xyxy", "cxcywh")


def denoising_queries(samples: list[dict], groups: int, noise: float) -> dict[str, Tensor]:
    """The denoising queries of a batch, group after group, padded to one length M:

    frames (B, M) the frame index, boxes (B, M, 4) the noised cxcywh box, gt_boxes (B, M, 4)
    the true box, group (B, M) the group index, -1 for padding. Each group draws its own
    noise for every box a sample's `present` marks in its `boxes` (K, T, 4), seeded by the
    sample's `noise_seed`: the draws do not depend on the process or batch it lands in.
    """
    per_sample = []
    for sample in samples:
        k, t = sample["present"].bool().nonzero(as_tuple=True)
        gt = sample["boxes"].float()[k, t]
        generator = torch.Generator().manual_seed(sample["noise_seed"])
        per_sample.append(
            {
                "frames": t.repeat(groups),
                "boxes": torch.cat([noised(gt, noise, generator) for _ in range(groups)]),
                "gt_boxes": gt.repeat(groups, 1),
                "group": torch.arange(groups, device=t.device).repeat_interleave(len(t)),
            }
        )
    m = max(len(q["frames"]) for q in per_sample)
    fill = {"frames": 0, "boxes": 0.5, "gt_boxes": 0.5, "group": -1}
    out = {}
    for key, value in fill.items():
        padded = []
        for q in per_sample:
            x = q[key]
            padded.append(torch.cat([x, x.new_full((m - len(x), *x.shape[1:]), value)]))
        out[key] = torch.stack(padded)
    return out


def self_attention_mask(num_matching: int, group: Tensor, heads: int) -> Tensor:
    """Bool (B·heads, L, L), True where a query may not look, L = num_matching + M, for
    `group` (B, M): the matching queries see only each other; a denoising query sees the
    matching queries and its own group; no query sees padding (which sees itself, so that
    no softmax row is empty)."""
    b, m = group.shape
    full = torch.cat([group.new_full((b, num_matching), -2), group], 1)  # matching: -2
    is_dn = full >= -1
    same = (full[:, :, None] == full[:, None, :]) & (full[:, None, :] >= 0)
    blocked = is_dn[:, None, :] & ~same
    blocked &= ~torch.eye(num_matching + m, dtype=torch.bool, device=group.device)
    return blocked.repeat_interleave(heads, 0)
