"""Two-stage queries (Deformable DETR §4.2, adapted to clips): start every query at an object.

Every memory token scores how likely an object of interest is centred in it and predicts a
box relative to its cell. The n best tokens of each frame become that frame's n queries:
the token's feature is the query's content, its position encoding is added to the learned
query embedding, and its box is the reference the decoder's boxes refine. Queries are
linked across the clip's frames (slot j of frame t+1 is the top token nearest to slot j of
frame t, Hungarian on centre distance), so that slot j of every frame is one proposal
sequence for VisTR's sequence matcher and the 3D mask head.

With a `slot_gate` (at inference only) a slot is carried rather than reassigned: it takes a
top token only within `slot_gate` cells of its own, and where none is left it follows the
best-scored token next to its own (shared if need be). An object often holds several of
the n best tokens, and how many changes from frame to frame; the plain one-to-one pairing
then has to move some slot to another object whenever its object loses a token. With
`slot_motion` p px a slot is looked for where the image around its centre went: the
shift that maximises the normalised cross-correlation of the p × p patch there with the next
input frame, within p px (the template matching of classic trackers). A measured shift lets
the gate be tighter than a predicted one.

The token head is trained densely (CenterNet / FCOS): each present object is assigned the
token its box centre falls in; focal loss on the scores, L1 and GIoU on assigned boxes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from vois_cli.models.box_sums import box_sums
from vois_cli.models.mlp import MLP

CELL_BOX_SIDE = 2.0  # a token's prior box is this many cells wide and high
OUT_OF_GATE = 1e6  # the cost of a pair beyond `slot_gate` (finite: the assignment stays feasible)


class TokenProposals(nn.Module):
    """Per-token score and box over the memory E, and the top-n tokens per frame as queries."""

    def __init__(
        self,
        d: int,
        num_queries: int,
        slot_gate: float = 0.0,
        slot_motion: int = 0,
    ):
        super().__init__()
        self.num_queries, self.slot_gate, self.slot_motion = num_queries, slot_gate, slot_motion
        self.score = nn.Linear(d, 1)
        self.box = MLP(d, d, 4, 3)

    def forward(
        self, memory: Tensor, pos: Tensor, video: Tensor | None = None
    ) -> dict[str, Tensor]:
        """memory, pos (B, T, h, w, d), video (B, T, 3, H, W) (read only with `slot_motion`) ->

        token_logits (B, T, h, w), token_boxes (B, T, h, w, 4) sigmoid cxcywh;
        content, query_pos (B, T·n, d) and reference (B, T·n, 4) logits of the chosen tokens,
        query t·n + j being slot j in frame t.
        """
        t, h, w = memory.shape[1:4]
        logits = self.score(memory).squeeze(-1)
        boxes = (self.box(memory) + cell_priors(h, w, memory.device).logit()).sigmoid()
        n = self.num_queries
        if h * w < n:
            raise ValueError(f"a {h}x{w} memory has fewer tokens than the {n} queries a frame")
        top = logits.detach().flatten(2).topk(n, dim=2).indices  # (B, T, n)
        if self.slot_gate > 0 and not self.training:
            frames = video if self.slot_motion else None
            top = carry_slots(
                top, boxes.detach(), logits.detach(), self.slot_gate, frames, self.slot_motion
            )
        else:
            top = link_slots(top, boxes.detach().flatten(2, 3))
        top = top.flatten(1)  # (B, T·n)
        frame = torch.arange(t, device=memory.device).repeat_interleave(n)
        index = (frame * h * w)[None] + top  # into the (B, T·h·w) tokens

        def gather(x: Tensor) -> Tensor:
            flat = x.flatten(1, 3)
            return flat.gather(1, index[..., None].expand(-1, -1, flat.shape[-1]))

        return {
            "token_logits": logits,
            "token_boxes": boxes,
            "content": gather(memory),
            "query_pos": gather(pos),
            "reference": gather(boxes.detach()).logit(eps=1e-4),
        }


def cell_priors(h: int, w: int, device: torch.device) -> Tensor:
    """(h, w, 4) cxcywh prior box of every cell: its centre, CELL_BOX_SIDE cells wide."""
    ys = (torch.arange(h, device=device) + 0.5) / h
    xs = (torch.arange(w, device=device) + 0.5) / w
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")
    side = torch.tensor([CELL_BOX_SIDE / w, CELL_BOX_SIDE / h], device=device).clamp(max=0.99)
    return torch.cat([torch.stack([cx, cy], -1), side.expand(h, w, 2)], -1)


@torch.no_grad()
def link_slots(top: Tensor, boxes: Tensor) -> Tensor:
    """Reorder each frame's top tokens (B, T, n) so slot j follows one object through the clip:
    frame t+1's tokens are assigned to frame t's slots by their boxes' centre distance."""
    linked = top.clone()
    for b in range(top.shape[0]):
        for t in range(1, top.shape[1]):
            previous = boxes[b, t - 1, linked[b, t - 1], :2]  # (n, 2)
            current = boxes[b, t, top[b, t], :2]
            cost = torch.cdist(previous.float(), current.float(), p=1).cpu().numpy()
            _, cols = linear_sum_assignment(cost)
            linked[b, t] = top[b, t, torch.as_tensor(cols, device=top.device)]
    return linked


@torch.no_grad()
def carry_slots(
    top: Tensor,
    boxes: Tensor,
    logits: Tensor,
    gate: float,
    frames: Tensor | None = None,
    patch: int = 0,
) -> Tensor:
    """Carry each frame's slots (B, T, n top-token indices) to the next frame: Hungarian on
    centre distance in cells over the pairs within `gate` cells, from each slot's centre, moved
    (given `frames`) by the shift `patch_shift` measures between the two frames; a slot left
    without a top token takes the best-scored token among its own and the 8 around it.

    boxes (B, T, h, w, 4) sigmoid cxcywh, logits (B, T, h, w), frames (B, T, 3, H, W)."""
    h, w = logits.shape[2:4]
    cells = torch.tensor([w, h], dtype=torch.float32, device=boxes.device)
    if frames is not None:
        grey = F.avg_pool2d(frames.float().mean(2), 2)  # (B, T, H/2, W/2): compared at half size
        pixels_per_cell = torch.tensor(grey.shape[:1:-1], device=boxes.device) / cells
    centres = boxes[..., :2].flatten(2, 3).float() * cells  # (B, T, h·w, 2)
    window = F.pad(logits.float(), (1, 1, 1, 1), value=-torch.inf)
    window = window.unfold(2, 3, 1).unfold(3, 3, 1).flatten(-2)  # (B, T, h, w, 9)
    step = window.argmax(-1).flatten(2)  # (B, T, h·w): where each token's neighbourhood peaks
    carried = top.clone()
    for b in range(top.shape[0]):
        for t in range(1, top.shape[1]):
            own = carried[b, t - 1]
            ahead = centres[b, t - 1, own]
            if frames is not None:
                shift = patch_shift(grey[b, t - 1], grey[b, t], ahead * pixels_per_cell, patch // 2)
                ahead = ahead + shift / pixels_per_cell
            cost = torch.cdist(ahead, centres[b, t, top[b, t]]).cpu().numpy()
            rows, cols = linear_sum_assignment(np.where(cost <= gate, cost, OUT_OF_GATE))
            kept = cost[rows, cols] <= gate
            k = step[b, t, own]  # the best of the 3 × 3 cells around each slot's own cell
            follow = own + (k // 3 - 1) * w + (k % 3 - 1)
            follow[torch.as_tensor(rows[kept], device=top.device)] = top[
                b, t, torch.as_tensor(cols[kept], device=top.device)
            ]
            carried[b, t] = follow
    return carried


def patch_shift(previous: Tensor, current: Tensor, centres: Tensor, patch: int) -> Tensor:
    """(n, 2) x, y shift in px of the `patch` × `patch` image around each of `centres` (n, 2)
    px from `previous` (H, W) to `current` (H, W): the argmax of the normalised
    cross-correlation within `patch` px each way (a flat patch correlates 0 everywhere: no
    shift)."""
    half, radius = patch // 2, patch
    pad = half + radius
    corners = centres.round().long() + pad - half  # top-left of each patch in the padded frames

    def crops(image: Tensor, side: int, shift: int) -> Tensor:
        padded = F.pad(image[None, None], (pad, pad, pad, pad), mode="replicate")[0, 0]
        span = torch.arange(side, device=image.device)
        ys = (corners[:, 1, None] - shift + span).clamp(0, padded.shape[0] - 1)
        xs = (corners[:, 0, None] - shift + span).clamp(0, padded.shape[1] - 1)
        return padded[ys[:, :, None], xs[:, None, :]]  # (n, side, side)

    template = crops(previous, patch, 0)
    template = template - template.mean((1, 2), keepdim=True)
    template = template / template.flatten(1).norm(dim=1).clamp(min=1e-6)[:, None, None]
    window = crops(current, patch + 2 * radius, radius)  # (n, S, S)
    n = len(centres)
    dot = F.conv2d(window[None], template[:, None], groups=n)[0]  # (n, 2r+1, 2r+1)
    # the sum and the sum of squares over every patch-sized box of the window (integral images)
    sums = [box_sums(x.double(), patch).float() for x in (window, window**2)]
    energy = sums[1] - sums[0] ** 2 / patch**2
    ncc = torch.where(energy > 1e-4, dot / energy.clamp(min=1e-4).sqrt(), 0)
    best = ncc.flatten(1).argmax(1)
    side = 2 * radius + 1
    shift = torch.stack([best % side, best // side], 1) - radius
    return torch.where(ncc.flatten(1).amax(1, keepdim=True) > 0, shift, 0).float()
