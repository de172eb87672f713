"""Two-stage queries (Deformable DETR §4.2, adapted to clips): start every query at an object.

Every memory token scores how likely an object of interest is centred in it and predicts a
box relative to its cell. The n best tokens of each frame become that frame's n queries:
the token's feature is the query's content, its position encoding is added to the learned
query embedding, and its box is the reference the decoder's boxes refine. Queries are
linked across the clip's frames (slot j of frame t+1 is the top token nearest to slot j of
frame t, Hungarian on centre distance), so that slot j of every frame is one proposal
sequence for VisTR's sequence matcher and the 3D mask head.

The token head is trained densely (CenterNet / FCOS): each present object is assigned the
token its box centre falls in; focal loss on the scores, L1 and GIoU on assigned boxes.
"""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from vois_cli.models.mlp import MLP

CELL_BOX_SIDE = 2.0  # a token's prior box is this many cells wide and high


class TokenProposals(nn.Module):
    """Per-token score and box over the memory E, and the top-n tokens per frame as queries."""

    def __init__(self, d: int, num_queries: int):
        super().__init__()
        self.num_queries = num_queries
        self.score = nn.Linear(d, 1)
        self.box = MLP(d, d, 4, 3)

    def forward(self, memory: Tensor, pos: Tensor) -> dict[str, Tensor]:
        """memory, pos (B, T, h, w, d) ->

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
        top = link_slots(top, boxes.detach().flatten(2, 3)).flatten(1)  # (B, T·n)
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
