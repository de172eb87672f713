"""The training losses of VisTR's sequence set prediction (docs/design.md#matching-and-losses).

After `SequenceMatcher` pairs proposals with objects:
- class: cross-entropy on every frame of every proposal; a matched proposal's target is
  `relevant` where its object is present and `no-object` elsewhere, unmatched proposals
  are `no-object`. As DETR's `empty_weight`, the no-object class weighs `eos_coef` and the
  loss is the class-weighted mean over all queries.
- boxes: L1 (summed over the 4 coordinates, as DETR) and 1 − GIoU on present frames.
- masks: sigmoid focal loss (mean over pixels) and dice on present frames, with the mask
  logits bilinearly upsampled to the input size.
- one-to-many masks (`loss_mask_o2m` > 0): in each frame, every query whose predicted box
  centre lies on an object's mask also gets that object's mask as a target (focal and dice as
  above, their mean over such pairs); the objects are the sample's `products` (every placed
  product) when it has them, else its targets. The instances a mask must tell apart are then
  seen by every query near them, not only by the one the matcher picked.
- target map (`loss_target_map` > 0): BCE of each memory token's "target here" logit
  against the fraction of the token that the relevant objects' union covers, mean over
  tokens (dense supervision of the comparison with the target).
- two-stage token proposals (`token_*` keys): each present object is assigned the memory
  token its box centre falls in (with `token_on_mask`, the token covered by it at least half,
  or as much as any, nearest its mask's centre of mass); sigmoid focal loss on every token's
  score, L1 and GIoU on the assigned tokens' boxes (weighted as the class and box terms).
Box and mask terms are summed and divided by (objects × T) over the batch (at least 1;
averaged over DDP ranks, as DETR). Class and box terms are repeated for every earlier
decoder layer (keys suffixed `_{i}`), each with its own matching; masks use the last layer.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import box_convert, generalized_box_iou_loss, sigmoid_focal_loss

from vois_cli.config import ModelConfig
from vois_cli.models.matcher import NO_OBJECT, RELEVANT, SequenceMatcher, as_sequences

Matches = list[tuple[Tensor, Tensor]]


def dice_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Summed dice loss of P masks: logits, targets (P, H, W) -> scalar (DETR's +1 smoothing)."""
    prob = logits.sigmoid().flatten(1)
    targets = targets.flatten(1)
    numerator = 2 * (prob * targets).sum(1) + 1
    denominator = prob.sum(1) + targets.sum(1) + 1
    return (1 - numerator / denominator).sum()


class SetCriterion(nn.Module):
    """Weighted loss terms `loss_ce`, `loss_bbox`, `loss_giou`, `loss_mask`, `loss_dice` (+ aux)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.matcher = SequenceMatcher(cfg.cost_class, cfg.cost_bbox, cfg.cost_giou)
        self.cfg = cfg
        class_weight = torch.ones(2)
        class_weight[NO_OBJECT] = cfg.eos_coef
        self.register_buffer("class_weight", class_weight)

    def forward(self, outputs: dict, samples: list[dict]) -> dict[str, Tensor]:
        """outputs: the model's dict (pred_logits (B, n·T, 2), pred_boxes (B, n·T, 4),
        pred_masks (B, n, T, h, w), aux_outputs); samples: B dicts with masks (K, T, H, W),
        boxes (K, T, 4), present (K, T). Returns the weighted scalar terms.
        """
        device = outputs["pred_logits"].device
        num_boxes = self._normaliser(samples, device)
        matches = self.matcher(outputs, samples)
        losses = self._class_and_box_losses(outputs, samples, matches, num_boxes)
        losses.update(self._mask_losses(outputs["pred_masks"], samples, matches, num_boxes))
        if self.cfg.loss_mask_o2m > 0:
            losses.update(self._one_to_many_mask_losses(outputs, samples))
        if "token_logits" in outputs:
            losses.update(self._token_losses(outputs, samples, num_boxes))
        if "target_logits" in outputs:
            losses["loss_target_map"] = self.cfg.loss_target_map * self._target_map_loss(
                outputs["target_logits"], samples
            )
        if self.cfg.aux_loss:
            for i, aux in enumerate(outputs["aux_outputs"]):
                aux_matches = self.matcher(aux, samples)
                terms = self._class_and_box_losses(aux, samples, aux_matches, num_boxes)
                losses.update({f"{k}_{i}": v for k, v in terms.items()})
        return losses

    @staticmethod
    def _normaliser(samples: list[dict], device: torch.device) -> Tensor:
        """objects × T summed over the batch, averaged over DDP ranks, at least 1."""
        count = sum(s["present"].shape[0] * s["present"].shape[1] for s in samples)
        num_boxes = torch.tensor(float(count), device=device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(num_boxes)
            num_boxes = num_boxes / dist.get_world_size()
        return num_boxes.clamp(min=1)

    def _class_and_box_losses(
        self, outputs: dict, samples: list[dict], matches: Matches, num_boxes: Tensor
    ) -> dict[str, Tensor]:
        num_frames = samples[0]["present"].shape[1]
        n = outputs["pred_logits"].shape[1] // num_frames
        logits = as_sequences(outputs["pred_logits"], n)  # (B, n, T, 2)
        boxes = as_sequences(outputs["pred_boxes"].float(), n)  # (B, n, T, 4)
        labels = torch.full(logits.shape[:3], NO_OBJECT, dtype=torch.int64, device=logits.device)
        src, gt = [], []
        for b, (rows, cols) in enumerate(matches):
            present = samples[b]["present"].to(logits.device, torch.bool)[cols]  # (M, T)
            labels[b, rows] = torch.where(present, RELEVANT, NO_OBJECT)
            src.append(boxes[b, rows][present])
            gt.append(samples[b]["boxes"].to(boxes.device, boxes.dtype)[cols][present])
        src, gt = torch.cat(src), torch.cat(gt)  # (P, 4)
        loss_ce = F.cross_entropy(
            logits.reshape(-1, 2).float(), labels.flatten(), weight=self.class_weight
        )
        loss_bbox = F.l1_loss(src, gt, reduction="sum") / num_boxes
        giou = generalized_box_iou_loss(
            box_convert(src, "cxcywh", "xyxy"), box_convert(gt, "cxcywh", "xyxy"), reduction="sum"
        )
        return {
            "loss_ce": self.cfg.loss_ce * loss_ce,
            "loss_bbox": self.cfg.loss_bbox * loss_bbox,
            "loss_giou": self.cfg.loss_giou * giou / num_boxes,
        }

    def _token_losses(
        self, outputs: dict, samples: list[dict], num_boxes: Tensor
    ) -> dict[str, Tensor]:
        logits = outputs["token_logits"].float()  # (B, T, h, w)
        boxes = outputs["token_boxes"].float()  # (B, T, h, w, 4)
        h, w = logits.shape[-2:]
        hit = torch.zeros_like(logits)
        src, gt = [], []
        for b, sample in enumerate(samples):
            present = sample["present"].to(logits.device, torch.bool)  # (K, T)
            k, t = present.nonzero(as_tuple=True)
            gt_boxes = sample["boxes"].to(logits.device, torch.float32)[k, t]  # (P, 4)
            if self.cfg.token_on_mask:
                y, x = tokens_on_masks(sample["masks"].to(logits.device)[k, t], (h, w))
            else:
                x = (gt_boxes[:, 0] * w).long().clamp(0, w - 1)
                y = (gt_boxes[:, 1] * h).long().clamp(0, h - 1)
            hit[b, t, y, x] = 1
            src.append(boxes[b, t, y, x])
            gt.append(gt_boxes)
        src, gt = torch.cat(src), torch.cat(gt)
        focal = sigmoid_focal_loss(
            logits, hit, alpha=self.cfg.focal_alpha, gamma=self.cfg.focal_gamma, reduction="sum"
        )
        giou = generalized_box_iou_loss(
            box_convert(src, "cxcywh", "xyxy"), box_convert(gt, "cxcywh", "xyxy"), reduction="sum"
        )
        return {
            "loss_token_ce": self.cfg.loss_ce * focal / num_boxes,
            "loss_token_bbox": self.cfg.loss_bbox * F.l1_loss(src, gt, reduction="sum") / num_boxes,
            "loss_token_giou": self.cfg.loss_giou * giou / num_boxes,
        }

    def _target_map_loss(self, logits: Tensor, samples: list[dict]) -> Tensor:
        """logits (B, T, h, w) at `memory_stride` -> BCE against token coverage, a scalar."""
        coverage = torch.stack(
            [token_coverage(s["masks"].to(logits.device), logits.shape[-2:]) for s in samples]
        )
        return F.binary_cross_entropy_with_logits(logits.float(), coverage)

    def _mask_losses(
        self, pred_masks: Tensor, samples: list[dict], matches: Matches, num_boxes: Tensor
    ) -> dict[str, Tensor]:
        focal = dice = pred_masks.new_zeros(())
        for b, (rows, cols) in enumerate(matches):
            present = samples[b]["present"].to(pred_masks.device, torch.bool)[cols]  # (M, T)
            gt = samples[b]["masks"].to(pred_masks.device)[cols][present].float()  # (P, H, W)
            src = pred_masks[b, rows][present]  # (P, h, w)
            if not len(src):
                continue
            terms = self._focal_and_dice(src, gt)
            focal, dice = focal + terms[0], dice + terms[1]
        return {
            "loss_mask": self.cfg.loss_mask * focal / num_boxes,
            "loss_dice": self.cfg.loss_dice * dice / num_boxes,
        }

    def _one_to_many_mask_losses(self, outputs: dict, samples: list[dict]) -> dict[str, Tensor]:
        pred_masks = outputs["pred_masks"]  # (B, n, T, h, w)
        n, t = pred_masks.shape[1:3]
        centres = outputs["pred_boxes"].detach().unflatten(1, (t, n))[..., :2]  # (B, T, n, 2)
        focal = dice = pred_masks.sum() * 0
        pairs = 0
        for b, sample in enumerate(samples):
            objects = sample.get("products", sample["masks"]).to(pred_masks.device)  # (K, T, H, W)
            height, width = objects.shape[-2:]
            x = (centres[b, ..., 0] * width).long().clamp(0, width - 1)  # (T, n)
            y = (centres[b, ..., 1] * height).long().clamp(0, height - 1)
            frame = torch.arange(t, device=x.device)[:, None]
            k, f, j = objects[:, frame, y, x].nonzero(as_tuple=True)  # object k under query j in f
            if not len(k):
                continue
            terms = self._focal_and_dice(pred_masks[b, j, f], objects[k, f].float())
            focal, dice = focal + terms[0], dice + terms[1]
            pairs += len(k)
        w = self.cfg.loss_mask_o2m / max(pairs, 1)
        return {
            "loss_mask_o2m": w * self.cfg.loss_mask * focal,
            "loss_dice_o2m": w * self.cfg.loss_dice * dice,
        }

    def _focal_and_dice(self, logits: Tensor, gt: Tensor) -> tuple[Tensor, Tensor]:
        """Mask logits (P, h, w) upsampled bilinearly to gt (P, H, W) -> the sums over the P
        masks of the focal loss (mean over pixels) and of the dice loss."""
        src = F.interpolate(
            logits[:, None].float(), gt.shape[-2:], mode="bilinear", align_corners=False
        )[:, 0]
        per_pixel = sigmoid_focal_loss(
            src, gt, alpha=self.cfg.focal_alpha, gamma=self.cfg.focal_gamma, reduction="none"
        )
        return per_pixel.flatten(1).mean(1).sum(), dice_loss(src, gt)


def tokens_on_masks(masks: Tensor, grid: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """masks (P, H, W), each non-empty -> (y, x) token indices (P,) of an (h, w) grid tiled as
    in `token_coverage`: among the tokens the mask covers at least half (or as much as any
    token, if none), the one whose centre is nearest the mask's centre of mass."""
    h, w = grid
    cover = token_coverage(masks[None], grid)  # (P, h, w): each mask its own frame
    sy, sx = math.ceil(masks.shape[-2] / h), math.ceil(masks.shape[-1] / w)
    weight = masks.float()
    area = weight.flatten(1).sum(1).clamp(min=1)
    ys = torch.arange(masks.shape[-2], device=masks.device, dtype=torch.float32)
    xs = torch.arange(masks.shape[-1], device=masks.device, dtype=torch.float32)
    cy = (weight.sum(2) @ (ys + 0.5)) / area / sy  # mass centre in token units
    cx = (weight.sum(1) @ (xs + 0.5)) / area / sx
    ty = torch.arange(h, device=masks.device, dtype=torch.float32) + 0.5
    tx = torch.arange(w, device=masks.device, dtype=torch.float32) + 0.5
    dist = (ty[None, :, None] - cy[:, None, None]) ** 2 + (tx[None, None] - cx[:, None, None]) ** 2
    enough = cover >= cover.flatten(1).amax(1).clamp(max=0.5)[:, None, None]
    best = torch.where(enough, dist, torch.inf).flatten(1).argmin(1)
    return best // w, best % w


def token_coverage(masks: Tensor, grid: tuple[int, int]) -> Tensor:
    """masks (K, T, H, W) -> (T, h, w) fraction of each token of an (h, w) grid covered by
    their union; the grid's tokens tile the image from the top left, the last ones padded."""
    union = masks.any(0).float() if len(masks) else masks.new_zeros(masks.shape[1:]).float()
    h, w = grid
    sy, sx = math.ceil(union.shape[-2] / h), math.ceil(union.shape[-1] / w)
    union = F.pad(union, (0, w * sx - union.shape[-1], 0, h * sy - union.shape[-2]))
    return F.avg_pool2d(union[:, None], (sy, sx))[:, 0]
