"""The set criterion on a two-object case whose every term is computed by hand."""

import dataclasses
import math

import pytest
import torch

from vois_cli.config import preset
from vois_cli.models.criterion import SetCriterion

# weights ce 1, bbox 5, giou 2, mask 1, dice 1 (VisTR's; tiny weighs masks 5); eos 0.1; α .25, γ 2;
# no one-to-many mask loss (its off position; tested on its own below)
CFG = preset("tiny", model={"loss_mask": 1.0, "loss_dice": 1.0, "loss_mask_o2m": 0.0}).model
BIG = 6.0  # logit margin that makes the matching unambiguous

# n = 3 proposals, T = 2 frames, K = 2 objects, 8×8 input, 2×2 mask logits.
# object 0: present in both frames, box A; object 1: present in frame 0 only, box B.
A, B = [0.5, 0.5, 0.2, 0.2], [0.25, 0.25, 0.1, 0.1]
PRED_A = [0.5, 0.5, 0.4, 0.4]  # contains A: IoU 0.25, hull = itself -> GIoU 0.25
PRED_B = [0.3, 0.25, 0.1, 0.1]  # B shifted by 0.05: IoU 0.05/0.15 = 1/3, hull 0.15×0.1


def _case():
    # proposal 2 <-> object 0, proposal 0 <-> object 1, proposal 1 unmatched
    logits = torch.zeros(2, 3, 2)  # (T, n, 2)
    logits[:, 2] = torch.tensor([BIG, 0.0])  # says relevant in both frames
    logits[0, 0] = torch.tensor([BIG, 0.0])
    logits[1, 0] = torch.tensor([0.0, 1.0])  # absent frame: no-object, weakly
    logits[:, 1] = torch.tensor([0.0, 2.0])
    boxes = torch.tensor([[0.8, 0.8, 0.1, 0.1]]).repeat(2, 3, 1)
    boxes[:, 2] = torch.tensor(PRED_A)
    boxes[0, 0] = torch.tensor(PRED_B)
    masks = torch.zeros(1, 3, 2, 2, 2)  # (B, n, T, h, w)
    masks[0, 2] = 2.0  # constant logits: bilinear upsampling keeps them constant
    masks[0, 0, 0] = -1.0
    outputs = {
        "pred_logits": logits.reshape(1, 6, 2),
        "pred_boxes": boxes.reshape(1, 6, 4),
        "pred_masks": masks,
    }
    gt_masks = torch.zeros(2, 2, 8, 8, dtype=torch.bool)
    gt_masks[0, :, 2:6, 2:6] = True  # 16 pixels
    gt_masks[1, 0, 1:3, 1:3] = True  # 4 pixels
    sample = {
        "masks": gt_masks,
        "boxes": torch.tensor([[A, A], [B, [0.0] * 4]]),
        "present": torch.tensor([[True, True], [True, False]]),
    }
    return outputs, [sample]


def _nll(logits, label):
    return -(logits[label] - math.log(sum(math.exp(v) for v in logits)))


def _focal(logit, target):
    p = 1 / (1 + math.exp(-logit))
    if target:
        return 0.25 * (1 - p) ** 2 * -math.log(p)
    return 0.75 * p**2 * -math.log(1 - p)


def _mask_terms(logit, area, pixels=64):
    p = 1 / (1 + math.exp(-logit))
    focal = (area * _focal(logit, 1) + (pixels - area) * _focal(logit, 0)) / pixels
    dice = 1 - (2 * p * area + 1) / (p * pixels + area + 1)
    return focal, dice


def _expected():
    # class: (logits, label, weight) for all 6 queries, no-object weighs 0.1
    terms = [
        ([BIG, 0.0], 0, 1.0),
        ([BIG, 0.0], 0, 1.0),  # proposal 2, both frames present
        ([BIG, 0.0], 0, 1.0),
        ([0.0, 1.0], 1, 0.1),  # proposal 0, frame 1 absent
        ([0.0, 2.0], 1, 0.1),
        ([0.0, 2.0], 1, 0.1),  # proposal 1, unmatched
    ]
    ce = sum(w * _nll(x, y) for x, y, w in terms) / sum(w for _, _, w in terms)
    num_boxes = 2 * 2  # objects × T
    l1 = (2 * 0.4 + 0.05) / num_boxes  # |Δw| + |Δh| = 0.4 per frame for A; Δcx 0.05 for B
    giou_b = 1 / 3 - (0.015 - 0.015) / 0.015  # hull equals the union: no penalty
    giou = (2 * (1 - 0.25) + (1 - giou_b)) / num_boxes
    focal_a, dice_a = _mask_terms(2.0, 16)
    focal_b, dice_b = _mask_terms(-1.0, 4)
    return {
        "loss_ce": ce,
        "loss_bbox": 5 * l1,
        "loss_giou": 2 * giou,
        "loss_mask": (2 * focal_a + focal_b) / num_boxes,
        "loss_dice": (2 * dice_a + dice_b) / num_boxes,
    }


def test_two_object_case_equals_hand_computed_losses():
    outputs, samples = _case()
    outputs["aux_outputs"] = []
    losses = SetCriterion(CFG)(outputs, samples)
    expected = _expected()
    assert set(losses) == set(expected)
    for key, value in expected.items():
        assert losses[key].item() == pytest.approx(value, rel=1e-4), key


def test_aux_layers_get_class_and_box_terms_only():
    outputs, samples = _case()
    outputs["aux_outputs"] = [
        {"pred_logits": outputs["pred_logits"], "pred_boxes": outputs["pred_boxes"]}
    ] * 2
    losses = SetCriterion(CFG)(outputs, samples)
    for i in range(2):
        for key in ("loss_ce", "loss_bbox", "loss_giou"):
            assert losses[f"{key}_{i}"].item() == pytest.approx(losses[key].item())
    assert "loss_mask_0" not in losses and len(losses) == 5 + 2 * 3
    no_aux = SetCriterion(dataclasses.replace(CFG, aux_loss=False))(outputs, samples)
    assert set(no_aux) == {"loss_ce", "loss_bbox", "loss_giou", "loss_mask", "loss_dice"}


def test_a_clip_without_objects_trains_every_query_towards_no_object():
    outputs, _ = _case()
    outputs["aux_outputs"] = []
    outputs["pred_logits"].requires_grad_()
    samples = [
        {
            "masks": torch.zeros(0, 2, 8, 8, dtype=torch.bool),
            "boxes": torch.zeros(0, 2, 4),
            "present": torch.zeros(0, 2, dtype=torch.bool),
        }
    ]
    losses = SetCriterion(CFG)(outputs, samples)
    assert losses["loss_bbox"].item() == losses["loss_mask"].item() == 0.0
    sum(losses.values()).backward()
    grad = outputs["pred_logits"].grad[0]
    assert (grad[:, 1] <= 0).all() and (grad[:, 1] < 0).any()  # raising no-object lowers the loss


def test_one_to_many_masks_teach_every_query_whose_centre_lies_on_an_object():
    # proposal 2 (centre 0.5, 0.5 -> pixel (4, 4)) lies on object 0 in both frames; proposal 0
    # in frame 0 (centre (0.3, 0.25) -> pixel (2, 2)) on objects 0 and 1; the rest on nothing
    outputs, samples = _case()
    outputs["aux_outputs"] = []
    cfg = dataclasses.replace(CFG, loss_mask_o2m=0.5)
    losses = SetCriterion(cfg)(outputs, samples)
    pairs = [
        _mask_terms(2.0, 16),
        _mask_terms(2.0, 16),
        _mask_terms(-1.0, 16),
        _mask_terms(-1.0, 4),
    ]
    assert losses["loss_mask_o2m"].item() == pytest.approx(
        0.5 * sum(f for f, _ in pairs) / 4, rel=1e-4
    )
    assert losses["loss_dice_o2m"].item() == pytest.approx(
        0.5 * sum(d for _, d in pairs) / 4, rel=1e-4
    )
    # with every placed product given, those are the objects: here only object 1
    samples[0]["products"] = samples[0]["masks"][1:]
    losses = SetCriterion(cfg)(outputs, samples)
    focal, dice = _mask_terms(-1.0, 4)
    assert losses["loss_mask_o2m"].item() == pytest.approx(0.5 * focal, rel=1e-4)
    assert losses["loss_dice_o2m"].item() == pytest.approx(0.5 * dice, rel=1e-4)
    # no query on any product: zero terms that still backpropagate
    samples[0]["products"] = torch.zeros(1, 2, 8, 8, dtype=torch.bool)
    losses = SetCriterion(cfg)(outputs, samples)
    assert losses["loss_mask_o2m"].item() == losses["loss_dice_o2m"].item() == 0.0
