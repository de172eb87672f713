"""Two-stage queries: the token heads, the slot linking through a clip, the dense token loss."""

import pytest
import torch
from torchvision.ops import sigmoid_focal_loss

from vois_cli.config import preset
from vois_cli.models.criterion import SetCriterion
from vois_cli.models.proposals import TokenProposals, cell_priors, link_slots

CFG = preset("tiny", model={"two_stage": True}).model


def test_cell_priors_centre_each_cell_two_cells_wide():
    priors = cell_priors(2, 4, torch.device("cpu"))
    assert priors.shape == (2, 4, 4)
    assert torch.allclose(priors[1, 2], torch.tensor([0.625, 0.75, 0.5, 0.99]))


def test_a_slot_follows_its_object_when_the_score_order_flips():
    # frame 0: token 0 at the left (best), token 3 at the right; frame 1: the right one is best
    boxes = torch.zeros(1, 2, 4, 4)
    boxes[0, :, 0, :2] = torch.tensor([0.1, 0.5])
    boxes[0, :, 3, :2] = torch.tensor([0.9, 0.5])
    top = torch.tensor([[[0, 3], [3, 0]]])
    assert link_slots(top, boxes).tolist() == [[[0, 3], [0, 3]]]


def test_the_best_tokens_of_each_frame_become_the_queries():
    torch.manual_seed(0)
    heads = TokenProposals(8, num_queries=2)
    memory, pos = torch.randn(1, 3, 2, 3, 8), torch.randn(1, 3, 2, 3, 8)
    out = heads(memory, pos)
    assert out["token_logits"].shape == (1, 3, 2, 3)
    assert out["token_boxes"].shape == (1, 3, 2, 3, 4)
    assert out["content"].shape == out["query_pos"].shape == (1, 6, 8)
    for t in range(3):
        best = set(out["token_logits"][0, t].flatten().topk(2).indices.tolist())
        chosen = out["content"][0, 2 * t : 2 * t + 2]
        tokens = memory[0, t].flatten(0, 1)
        picked = {int((tokens - q).abs().sum(1).argmin()) for q in chosen}
        assert picked == best
    chosen_boxes = out["reference"][0, :2].sigmoid()
    assert all(
        (out["token_boxes"][0, 0].flatten(0, 1) - b).abs().sum(1).min() < 1e-4 for b in chosen_boxes
    )


def test_each_object_trains_the_token_its_centre_falls_in():
    crit = SetCriterion(CFG)
    logits = torch.full((1, 1, 2, 2), -4.0)
    boxes = torch.full((1, 1, 2, 2, 4), 0.5)
    box = torch.tensor([0.7, 0.2, 0.3, 0.2])  # centre in row 0, column 1
    boxes[0, 0, 0, 1] = box
    sample = {"boxes": box.view(1, 1, 4), "present": torch.ones(1, 1, dtype=torch.bool)}
    out = {"token_logits": logits, "token_boxes": boxes}
    losses = crit._token_losses(out, [sample], torch.tensor(1.0))
    assert losses["loss_token_bbox"] == 0 and losses["loss_token_giou"].abs() < 1e-5
    hit = torch.zeros(1, 1, 2, 2)
    hit[0, 0, 0, 1] = 1
    expected = sigmoid_focal_loss(logits, hit, alpha=0.25, gamma=2.0, reduction="sum")
    assert torch.isclose(losses["loss_token_ce"], expected)


def test_a_memory_smaller_than_the_queries_is_refused():
    heads = TokenProposals(8, num_queries=7)
    memory = torch.randn(1, 2, 2, 3, 8)  # 6 tokens a frame
    with pytest.raises(ValueError, match="fewer tokens than the 7 queries"):
        heads(memory, torch.zeros_like(memory))
