"""Box denoising queries (`dn_groups`): the boxes they start at, the mask that hides them
from the matching queries, and their losses on a hand-computed case."""

import pytest
import torch

from vois_cli.config import preset
from vois_cli.models import build_model
from vois_cli.models.criterion import SetCriterion
from vois_cli.models.denoising import denoising_queries, noised, self_attention_mask


def _corners(b):
    return torch.cat([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], 1)


def test_noise_moves_each_corner_by_less_than_noise_times_its_half_side():
    box = torch.tensor([[0.5, 0.5, 0.2, 0.1]]).repeat(1000, 1)
    out = noised(box, 0.4, torch.Generator().manual_seed(0))
    moved = (_corners(out) - _corners(box)).abs() / torch.tensor([0.1, 0.05, 0.1, 0.05])
    assert (moved <= 0.4 + 1e-5).all()
    assert moved.max() > 0.36 and moved.min() < 0.04  # the whole band is drawn


def test_noised_boxes_stay_in_the_image_and_never_vanish():
    edge = torch.tensor([[0.01, 0.99, 0.02, 0.02]]).repeat(200, 1)
    out = noised(edge, 2.0, torch.Generator().manual_seed(0))
    assert (_corners(out) > -1e-6).all() and (_corners(out) < 1 + 1e-6).all()
    assert (out[:, 2:] > 1e-3 - 1e-6).all()


def _sample():
    """Two objects over T = 2 frames: object 0 in both, object 1 in frame 1 only."""
    boxes = torch.tensor(
        [[[0.3, 0.4, 0.2, 0.4], [0.3, 0.4, 0.2, 0.4]], [[0.0, 0.0, 0.0, 0.0], [0.75, 0.5, 0.5, 1]]]
    )
    present = torch.tensor([[True, True], [False, True]])
    return {"boxes": boxes, "present": present, "noise_seed": 0}


def test_each_group_holds_every_present_box_once_and_a_batch_is_padded():
    one = _sample()
    lone = {"boxes": one["boxes"][:1], "present": one["present"][:1], "noise_seed": 1}
    q = denoising_queries([one, lone], groups=2, noise=0.4)
    assert q["group"].tolist() == [[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, -1, -1]]
    assert q["frames"][0].tolist() == [0, 1, 1, 0, 1, 1]
    torch.testing.assert_close(q["gt_boxes"][0, 2], torch.tensor([0.75, 0.5, 0.5, 1.0]))
    torch.testing.assert_close(q["gt_boxes"][0, 3:], q["gt_boxes"][0, :3])
    assert not torch.equal(q["boxes"][0, :3], q["boxes"][0, 3:])  # each group its own noise


def test_the_noise_is_the_samples_own_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    first = denoising_queries([_sample()], groups=2, noise=0.4)["boxes"]
    assert torch.equal(torch.get_rng_state(), state)
    again = denoising_queries([{**_sample(), "noise_seed": 5}, _sample()], 2, 0.4)["boxes"]
    torch.testing.assert_close(again[1], first[0], rtol=0, atol=0)  # wherever it lands
    assert not torch.equal(again[0], first[0])


def test_self_attention_mask_hides_groups_and_padding():
    group = torch.tensor([[0, 0, 1, -1]])  # two matching queries, then these four
    blocked = self_attention_mask(2, group, heads=3)
    assert blocked.shape == (3, 6, 6) and (blocked == blocked[:1]).all()
    x, o = True, False
    expected = [  # row: who looks; column: at whom
        [o, o, x, x, x, x],  # matching queries see only each other
        [o, o, x, x, x, x],
        [o, o, o, o, x, x],  # group 0 sees the matching queries and itself
        [o, o, o, o, x, x],
        [o, o, x, x, o, x],  # group 1
        [o, o, x, x, x, o],  # padding sees itself, and no one sees it
    ]
    assert blocked[0].tolist() == expected


def _clip(cfg):
    torch.manual_seed(0)
    t = cfg.num_frames
    boxes = torch.tensor([0.35, 0.3, 0.3, 0.3]).repeat(1, t, 1)
    sample = {"boxes": boxes, "present": torch.ones(1, t, dtype=torch.bool), "noise_seed": 0}
    return torch.randn(1, t, 3, 64, 96), torch.randn(1, 3, 48, 40), sample


def test_matching_outputs_do_not_see_the_denoising_queries():
    cfg = preset("tiny").model
    assert cfg.dn_groups == 3
    video, target, sample = _clip(cfg)
    model = build_model(cfg)[0]
    plain = model(video, target)
    with_dn = model(video, target, samples=[sample])
    for key in ("pred_logits", "pred_boxes", "pred_masks"):
        torch.testing.assert_close(with_dn[key], plain[key], rtol=0, atol=0)
    assert "denoising" not in plain
    boxes = with_dn["denoising"]["pred_boxes"]
    assert boxes.shape == (cfg.dec_layers, 1, 3 * cfg.num_frames, 4)
    assert "denoising" not in model.eval()(video, target, samples=[sample])  # training only


def test_off_is_the_model_without_denoising():
    torch.manual_seed(0)
    on = build_model(preset("tiny").model)[0]
    off = build_model(preset("tiny", model={"dn_groups": 0}).model)[0]
    off.load_state_dict(on.state_dict())  # no parameters of its own
    video, target, sample = _clip(preset("tiny").model)
    out = off(video, target, samples=[sample])
    assert "denoising" not in out
    torch.testing.assert_close(out["pred_boxes"], on(video, target)["pred_boxes"], rtol=0, atol=0)


def test_denoising_needs_two_stage_queries():
    with pytest.raises(ValueError, match="two_stage"):
        build_model(preset("small", model={"dn_groups": 1}).model)


def test_denoising_losses_on_a_hand_computed_case():
    cfg = preset("tiny", model={"dn_groups": 1, "loss_bbox": 5.0, "loss_giou": 2.0}).model
    box = torch.tensor([0.5, 0.5, 0.2, 0.2])
    pred = torch.tensor([0.55, 0.5, 0.2, 0.2])  # shifted by 0.05: L1 0.05, IoU 0.15/0.25
    far = torch.tensor([0.9, 0.9, 0.1, 0.1])  # padding: ignored
    dn = {
        "pred_boxes": torch.stack([pred, far])[None, None].repeat(2, 1, 1, 1),  # 2 layers
        "gt_boxes": torch.stack([box, box])[None],
        "group": torch.tensor([[0, -1]]),
    }
    losses = SetCriterion(cfg)._denoising_losses(dn, torch.tensor(2.0))
    assert set(losses) == {"loss_dn_bbox", "loss_dn_giou", "loss_dn_bbox_0", "loss_dn_giou_0"}
    assert losses["loss_dn_bbox"].item() == pytest.approx(5 * 0.05 / 2, rel=1e-5)
    iou = (0.15 * 0.2) / (0.25 * 0.2)  # the hull is the union: GIoU = IoU
    assert losses["loss_dn_giou"].item() == pytest.approx(2 * (1 - iou) / 2, rel=1e-5)
