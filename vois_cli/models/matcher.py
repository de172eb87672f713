"""Hungarian matching between object proposals (sequences of T queries) and true objects.

The cost of pairing proposal j with object k (VisTR; docs/design.md#matching-and-losses):

    cost_class * -(mean over all T frames of prob(the frame's true label))
  + cost_bbox  *   mean over present frames of the L1 distance (mean over the 4 coordinates)
  + cost_giou  * -(mean over present frames of the generalized IoU)

The true label of a frame is `relevant` where the object is present and `no-object` where
it is absent, so absent frames are scored rather than given placeholder boxes. Instead
of a plain −IoU, like VisTR we use the generalized IoU (`torchvision.ops.generalized_box_iou`),
which still ranks disjoint boxes by how far apart they are. An object present in no frame
has zero box costs.
"""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor
from torchvision.ops import box_convert, generalized_box_iou

RELEVANT, NO_OBJECT = 0, 1


def as_sequences(x: Tensor, num_proposals: int) -> Tensor:
    """Regroup per-query values (B, T·n, ...) as proposals (B, n, T, ...): query t·n+j is (j, t)."""
    b, queries = x.shape[:2]
    return x.view(b, queries // num_proposals, num_proposals, *x.shape[2:]).transpose(1, 2)


def sequence_cost(
    logits: Tensor, boxes: Tensor, gt_boxes: Tensor, present: Tensor, weights: tuple[float, ...]
) -> Tensor:
    """The matching cost of every (proposal, object) pair of one clip.

    logits (n, T, 2), boxes (n, T, 4) cxcywh; gt_boxes (K, T, 4), present (K, T) bool;
    weights (class, bbox, giou) -> cost (n, K).
    """
    w_class, w_bbox, w_giou = weights
    prob = logits.softmax(-1)  # (n, T, 2)
    p_true = torch.where(present[None], prob[:, None, :, RELEVANT], prob[:, None, :, NO_OBJECT])
    cost_class = -p_true.mean(-1)  # (n, K)

    frames = present.sum(1).clamp(min=1)  # (K,)
    l1 = (boxes[:, None] - gt_boxes[None]).abs().mean(-1)  # (n, K, T)
    cost_bbox = torch.where(present[None], l1, 0).sum(-1) / frames
    pred_xyxy = box_convert(boxes.transpose(0, 1), "cxcywh", "xyxy")  # (T, n, 4)
    gt_xyxy = box_convert(gt_boxes.transpose(0, 1), "cxcywh", "xyxy")  # (T, K, 4)
    giou = torch.stack(
        [generalized_box_iou(p, g) for p, g in zip(pred_xyxy, gt_xyxy, strict=True)], -1
    )
    cost_giou = -torch.where(present[None], giou, 0).sum(-1) / frames
    return w_class * cost_class + w_bbox * cost_bbox + w_giou * cost_giou


class SequenceMatcher:
    """Assign each true object one proposal, minimising the summed `sequence_cost`."""

    def __init__(self, cost_class: float, cost_bbox: float, cost_giou: float):
        self.weights = (cost_class, cost_bbox, cost_giou)

    @torch.no_grad()
    def __call__(self, outputs: dict, samples: list[dict]) -> list[tuple[Tensor, Tensor]]:
        """outputs: pred_logits (B, n·T, 2), pred_boxes (B, n·T, 4); samples: boxes (K, T, 4),
        present (K, T). Returns per clip (proposal indices, object indices), int64, each of
        length min(n, K), sorted by proposal.
        """
        n = outputs["pred_logits"].shape[1] // samples[0]["present"].shape[1]
        logits = as_sequences(outputs["pred_logits"].float(), n)
        boxes = as_sequences(outputs["pred_boxes"].float(), n)
        matches = []
        for b, sample in enumerate(samples):
            gt_boxes = sample["boxes"].to(boxes.device, torch.float32)
            present = sample["present"].to(boxes.device, torch.bool)
            cost = sequence_cost(logits[b], boxes[b], gt_boxes, present, self.weights)
            rows, cols = linear_sum_assignment(cost.cpu().numpy())
            matches.append(
                (torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64))
            )
        return matches
