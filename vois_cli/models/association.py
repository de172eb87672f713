"""Learned frame-to-frame association of a clip's proposals (GTR, Zhou et al. 2022; a deviation).

Chained by their boxes' centres, the slots of a clip hop between identical instances that
pass each other (docs/training-notes.md). With `loss_association` > 0 every query also gets an
embedding (an MLP of its decoder output, which has attended to every frame's queries), and the
affinity of query i in frame t with query j in frame t + 1 is their dot product over √dim
minus a learned multiple of their boxes' centre distance (L1): at the start the chain by
centres, which the embeddings learn to correct.

- Training: each query whose box centre lies on an object learns which queries of the next
  frame lie on the same one, by a softmax over them (where one does); the objects are every
  placed product when the sample has them, else the targets.
- Inference: each frame's queries are re-ordered to follow the previous frame's by Hungarian
  matching on the affinities, so that proposal j is one object through the clip.
"""

from __future__ import annotations

import math

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from vois_cli.models.mlp import MLP

PER_QUERY = ("pred_logits", "pred_boxes", "pred_embeddings")  # (B, T·n, ...), query t·n + j


class AssociationHead(nn.Module):
    """Decoder output (B, T·n, d) -> association embeddings (B, T·n, dim)."""

    def __init__(self, d: int, dim: int):
        super().__init__()
        self.embed = MLP(d, d, dim, 2)
        # log of the weight of the centre distance: 10 per unit of the frame's side at the start
        self.log_distance_weight = nn.Parameter(torch.tensor(math.log(10.0)))

    def forward(self, hs: Tensor) -> dict[str, Tensor]:
        """-> pred_embeddings (B, T·n, dim) and distance_weight (a scalar)."""
        return {
            "pred_embeddings": self.embed(hs),
            "distance_weight": self.log_distance_weight.exp(),
        }


def affinities(embeddings: Tensor, centres: Tensor, distance_weight: Tensor) -> Tensor:
    """embeddings (T, n, D), centres (T, n, 2) of one clip -> (T - 1, n, n): frame t's queries
    against t + 1's."""
    similarity = embeddings[:-1] @ embeddings[1:].transpose(1, 2) / math.sqrt(embeddings.shape[-1])
    return similarity - distance_weight * torch.cdist(centres[:-1], centres[1:], p=1)


def objects_under(centres: Tensor, objects: Tensor) -> Tensor:
    """centres (T, n, 2) normalised (x, y), objects (K, T, H, W) bool -> (T, n) int64: the first
    object whose mask holds the centre's pixel, -1 for none."""
    k, t, height, width = objects.shape
    x = (centres[..., 0] * width).long().clamp(0, width - 1)
    y = (centres[..., 1] * height).long().clamp(0, height - 1)
    if k == 0:
        return torch.full(x.shape, -1, dtype=torch.int64, device=x.device)
    frame = torch.arange(t, device=x.device)[:, None]
    hit = objects[:, frame, y, x]  # (K, T, n)
    first = hit.float().argmax(0)
    return torch.where(hit.any(0), first, -1)


def association_loss(outputs: dict, samples: list[dict]) -> Tensor:
    """outputs with pred_embeddings (B, T·n, D), distance_weight, pred_boxes (B, T·n, 4) cxcywh;
    samples with masks (K, T, H, W) and
    optionally products -> the mean, over the queries of frames 0..T-2 that lie on an object
    some query of the next frame lies on too, of the cross-entropy of their softmax over the
    next frame's queries whose targets are the queries on the same object (probabilities summed).
    """
    embeddings, boxes = outputs["pred_embeddings"], outputs["pred_boxes"]
    t = samples[0]["present"].shape[1]
    b, queries, dim = embeddings.shape
    n = queries // t
    total, count = embeddings.sum() * 0, 0
    for i, sample in enumerate(samples):
        objects = sample.get("products", sample["masks"]).to(embeddings.device)
        centres = boxes[i].detach().float().view(t, n, 4)[..., :2]
        ids = objects_under(centres, objects.bool())  # (T, n)
        logits = affinities(embeddings[i].view(t, n, dim), centres, outputs["distance_weight"])
        positive = (ids[:-1, :, None] == ids[1:, None, :]) & (ids[:-1, :, None] >= 0)
        on = positive.any(-1)  # (T-1, n): on an object that a next-frame query is on too
        if not on.any():
            continue
        log_prob = logits.log_softmax(-1)
        picked = log_prob.masked_fill(~positive, -math.inf).logsumexp(-1)  # (T-1, n)
        total = total - picked[on].sum()
        count += int(on.sum())
    return total / max(count, 1)


@torch.no_grad()
def relink(outputs: dict) -> dict:
    """Re-order each frame's queries of every clip to follow the previous frame's by Hungarian
    matching on their affinities (slot j of frame t + 1 is the query most associated with slot
    j of frame t); per-query outputs and the masks (B, n, T, h, w) move with them."""
    masks = outputs["pred_masks"]
    b, n, t = masks.shape[:3]
    order = torch.arange(n, device=masks.device).repeat(b, t, 1)  # (B, T, n)
    embeddings = outputs["pred_embeddings"].float().view(b, t, n, -1)
    centres = outputs["pred_boxes"].float().view(b, t, n, 4)[..., :2]
    for i in range(b):
        for f in range(1, t):
            previous = order[i, f - 1]
            pair = (
                torch.stack([embeddings[i, f - 1, previous], embeddings[i, f]]),
                torch.stack([centres[i, f - 1, previous], centres[i, f]]),
            )
            score = affinities(*pair, outputs["distance_weight"])[0]
            _, cols = linear_sum_assignment(-score.cpu().numpy())
            order[i, f] = torch.as_tensor(cols, device=masks.device)
    index = (torch.arange(t, device=masks.device)[:, None] * n + order).flatten(1)  # (B, T·n)
    moved = {
        key: outputs[key].gather(1, index[..., None].expand(-1, -1, outputs[key].shape[-1]))
        for key in PER_QUERY
    }
    frames = order.transpose(1, 2)[..., None, None].expand(-1, -1, -1, *masks.shape[3:])
    return {**outputs, **moved, "pred_masks": masks.gather(1, frames)}
