"""benchmarks/backbone_boxes.py: the centre-token assignment, both trunks, the IoU it reports."""

import backbone_boxes
import pytest
import torch


def _sample(frames: int = 2, height: int = 64, width: int = 128) -> dict:
    """One object, present in frame 0 only, its box centred at (0.55, 0.3)."""
    boxes = torch.zeros(1, frames, 4)
    boxes[0, 0] = torch.tensor([0.55, 0.3, 0.25, 0.2])
    present = torch.zeros(1, frames, dtype=torch.bool)
    present[0, 0] = True
    return {"video": torch.randn(frames, 3, height, width), "boxes": boxes, "present": present}


def test_each_present_object_is_assigned_the_token_under_its_box_centre():
    t, rows, cols, boxes = backbone_boxes.centre_tokens(_sample(), 4, 8)
    assert t.tolist() == [0] and rows.tolist() == [1] and cols.tolist() == [4]
    torch.testing.assert_close(boxes, torch.tensor([[0.55, 0.3, 0.25, 0.2]]))


@pytest.mark.parametrize("name", ["swin", "resnet18"])
def test_both_trunks_give_a_stride_16_token_grid_and_a_finite_loss(name):
    torch.manual_seed(0)
    model = backbone_boxes.build(name)
    sample = _sample()
    logits, boxes = model(sample["video"])
    assert logits.shape == (2, 4, 8) and boxes.shape == (2, 4, 8, 4)
    value = backbone_boxes.loss(model, sample)
    value.backward()
    assert torch.isfinite(value) and model.score.weight.grad.abs().sum() > 0


def test_box_quality_is_one_for_exact_boxes_and_lower_for_a_shifted_one():
    sample = _sample()

    class Exact(torch.nn.Module):
        def __init__(self, shift: float):
            super().__init__()
            self.shift = shift

        def forward(self, video):
            logits = torch.zeros(2, 4, 8)
            boxes = sample["boxes"][0, :, None, None].expand(2, 4, 8, 4).clone()
            boxes[..., 0] += self.shift
            return logits, boxes

    assert backbone_boxes.box_quality(Exact(0.0), [sample]) == {"centre": 1.0, "top10": 1.0}
    # shifted by half its width: intersection 1/2 of the box, union 3/2 -> IoU 1/3
    assert backbone_boxes.box_quality(Exact(0.125), [sample]) == {"centre": 0.333, "top10": 0.333}
