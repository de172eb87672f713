"""CondInst masks: each query's own network over pixel features and offsets from its box."""

import pytest
import torch

from vois_cli.config import preset
from vois_cli.models import build_model
from vois_cli.models.condinst_mask_head import LAYERS, box_offsets, mask_extent_boxes

# the head alone, on hand-made f1..f3 (no similarity channels)
CFG = preset(
    "tiny", model={"mask_head": "condinst", "mask_cut_training": False, "mask_similarity": False}
).model


def _inputs(n=2, t=2):
    sizes = zip((1, 2, 4), (24, 48, 96), strict=True)
    feats = [torch.randn(1, t, 16 // s, 24 // s, c) for s, c in sizes]
    memory = torch.randn(1, t, 1, 2, CFG.hidden_dim)
    return torch.randn(1, t, n, CFG.hidden_dim), memory, feats


def test_box_offsets_are_in_box_units_from_its_centre():
    box = torch.tensor([0.5, 0.25, 0.5, 0.25])  # cxcywh on a 4 x 2 grid (h = 2, w = 4)
    offsets = box_offsets(box, 2, 4)
    assert offsets.shape == (2, 2, 4)
    # cell centres x = 0.125, 0.375, 0.625, 0.875 -> (x - 0.5) / 0.5
    assert offsets[0, 0].tolist() == [-0.75, -0.25, 0.25, 0.75]
    # cell centres y = 0.25, 0.75 -> (y - 0.25) / 0.25
    assert offsets[1, :, 0].tolist() == [0.0, 2.0]
    tiny = box_offsets(torch.tensor([0.5, 0.5, 0.0, 0.0]), 1, 2)  # sides floored at 0.05
    assert tiny[0, 0].tolist() == pytest.approx([-5.0, 5.0])


def test_each_query_writes_its_own_network_and_sees_its_box():
    torch.manual_seed(0)
    model = build_model(CFG)[0].eval()
    head = model.mask_head
    assert head.params.out_features == sum(o * i + o for o, i in LAYERS)
    with torch.no_grad():
        out = model(torch.randn(1, CFG.num_frames, 3, 64, 96), torch.randn(1, 3, 64, 64))
    assert out["pred_masks"].shape == (1, CFG.num_queries, CFG.num_frames, 16, 24)
    hs, memory, feats = _inputs()
    hs[0, :, 1] = hs[0, :, 0]  # two identical queries...
    whole = torch.tensor([0.5, 0.5, 1.0, 1.0])
    boxes = torch.stack([whole, torch.tensor([0.3, 0.5, 0.5, 1.0])])[None, :, None].expand(
        1, 2, 2, 4
    )
    with torch.no_grad():
        masks = head.train()(hs, memory, None, feats, boxes)  # training with the cut off (tiny)
        same_box = head(hs, memory, None, feats, whole.expand(1, 2, 2, 4))
    # ...with different boxes give different masks, with the same box the same ones
    assert not torch.allclose(masks[0, 0], masks[0, 1])
    assert torch.equal(same_box[0, 0], same_box[0, 1])
    assert torch.equal(masks[0, 0], same_box[0, 0])
    # gradients reach the query (through its network's weights) and the pixel features
    hs.requires_grad_()
    head(hs, memory, None, feats, boxes).sum().backward()
    assert hs.grad.abs().sum() > 0 and head.reduce.weight.grad.abs().sum() > 0


def test_condinst_needs_two_stage_boxes():
    with pytest.raises(ValueError, match="needs two_stage"):
        build_model(preset("tiny", model={"mask_head": "condinst", "two_stage": False}))


def test_mask_extent_boxes_read_the_part_connected_to_the_box_centre():
    logits = torch.full((3, 6, 8), -1.0)  # three masks on a 6 × 8 grid
    logits[:, 1:4, 1:3] = 1.0  # blob A: rows 1-3, columns 1-2
    logits[:, 2, 3] = 1.0  # joined to A by one cell
    logits[:, 4:6, 6:8] = 1.0  # blob B: rows 4-5, columns 6-7, apart from A
    boxes = torch.tensor(
        [
            [0.2, 0.4, 0.1, 0.1],  # centre on cell (2, 1): A
            [0.9, 0.9, 0.5, 0.5],  # centre on cell (5, 7): B
            [0.6, 0.1, 0.3, 0.2],  # centre on cell (0, 4), which is off: kept
        ]
    )
    read = mask_extent_boxes(logits, boxes)
    # A spans columns 1-3 and rows 1-3: x 1/8..4/8, y 1/6..4/6
    assert read[0].tolist() == pytest.approx([2.5 / 8, 2.5 / 6, 3 / 8, 3 / 6])
    assert read[1].tolist() == pytest.approx([7 / 8, 5 / 6, 2 / 8, 2 / 6])
    assert torch.equal(read[2], boxes[2])


def test_mask_boxes_cut_each_mask_to_the_box_read_from_it_at_inference_only():
    torch.manual_seed(0)
    head = build_model(preset("tiny", model={"mask_similarity": False}).model)[0].mask_head
    hs, memory, feats = _inputs()
    boxes = torch.tensor([0.5, 0.5, 0.2, 0.2]).expand(1, 2, 2, 4)
    with torch.no_grad():
        trained = head.train()(hs, memory, None, feats, boxes)
        off = {"mask_boxes": False, "mask_similarity": False}  # mask_boxes on in tiny
        plain = build_model(preset("tiny", model=off).model)[0].mask_head
        plain.load_state_dict(head.state_dict())
        assert torch.equal(trained, plain.train()(hs, memory, None, feats, boxes))
        read = mask_extent_boxes(head.masks(hs, head.pixel_features(memory, feats), boxes), boxes)
        assert torch.equal(
            head.eval()(hs, memory, None, feats, boxes), plain.eval()(hs, memory, None, feats, read)
        )
