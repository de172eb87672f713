"""Two-stage queries: the token heads, the slot linking through a clip, the dense token loss."""

import dataclasses

import pytest
import torch
from torchvision.ops import sigmoid_focal_loss

from vois_cli.config import preset
from vois_cli.models.criterion import SetCriterion, tokens_on_masks
from vois_cli.models.proposals import (
    TokenProposals,
    carry_slots,
    cell_priors,
    link_slots,
    patch_shift,
)

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


def _cells(h: int, w: int, frames: int) -> torch.Tensor:
    """(1, frames, h, w, 4) boxes centred on their cells."""
    return cell_priors(h, w, torch.device("cpu"))[None, None].expand(1, frames, h, w, 4)


def test_a_carried_slot_stays_on_its_object_when_the_object_loses_a_top_token():
    # 4 x 8 cells; object A covers cells 9 and 10 (row 1), object B cells 14 and 22 (column 6).
    # Frame 0's top tokens: 9, 10 (A), 14 (B); frame 1's: 10 (A), 14, 22 (B): A lost a token.
    top = torch.tensor([[[9, 10, 14], [10, 14, 22]]])
    logits = torch.full((1, 2, 4, 8), -5.0)
    logits[0, 1].view(-1)[top[0, 1]] = 1.0
    boxes = _cells(4, 8, 2)
    # one to one, one of A's slots has to take one of B's tokens
    linked = link_slots(top, boxes.flatten(2, 3))
    assert set(linked[0, 1, :2].tolist()) & {14, 22}
    # carried, it shares A's best token instead (the cell next to its own)
    assert carry_slots(top, boxes, logits, gate=2.5).tolist() == [[[9, 10, 14], [10, 10, 14]]]


def test_a_carried_slot_takes_the_nearest_top_token_within_the_gate():
    top = torch.tensor([[[9, 14], [15, 10]]])  # both objects move one cell right
    logits = torch.zeros(1, 2, 4, 8)
    logits[0, 1, 2, 2] = 1.0  # the best cell next to 9, but no top token
    boxes = _cells(4, 8, 2)
    assert carry_slots(top, boxes, logits, gate=1.5).tolist() == [[[9, 14], [10, 15]]]
    # with a gate under one cell, no top token is near enough: each slot follows its best neighbour
    assert carry_slots(top, boxes, logits, gate=0.5)[0, 1, 0] == 18


def test_the_patch_shift_finds_how_far_the_image_moved():
    torch.manual_seed(0)
    previous = torch.randn(48, 64)
    current = torch.roll(previous, shifts=(-3, 5), dims=(0, 1))  # 5 px right, 3 px up
    centres = torch.tensor([[20.0, 24.0], [40.0, 20.0]])
    assert patch_shift(previous, current, centres, patch=12).tolist() == [[5, -3], [5, -3]]
    # a flat patch has nothing to match: no shift
    flat = torch.zeros(48, 64)
    assert patch_shift(flat, current, centres, patch=12).tolist() == [[0, 0], [0, 0]]


def test_a_carried_slot_moved_by_the_image_keeps_to_its_object():
    # 4 x 8 cells of 8 px. A textured square (object A, cells 9/10) moves two cells right
    # between frames 0 and 1; its look-alike C, at cell 9's place one row down in frame 1
    # (cell 17), is nearer A's old centre than A's new one (cell 11)
    torch.manual_seed(0)
    texture = torch.randn(3, 8, 8)
    frames = torch.zeros(1, 2, 3, 32, 64)
    frames[0, 0, :, 8:16, 8:16] = texture
    frames[0, 1, :, 8:16, 24:32] = texture
    top = torch.tensor([[[9, 31], [17, 11]]])
    logits, boxes = torch.zeros(1, 2, 4, 8), _cells(4, 8, 2)
    assert carry_slots(top, boxes, logits, gate=1.5)[0, 1, 0] == 17
    moved = carry_slots(top, boxes, logits, gate=1.5, frames=frames, patch=16)
    assert moved[0, 1, 0] == 11


@pytest.mark.parametrize("training", [True, False])
def test_the_slot_gate_is_off_at_zero_and_in_training(training):
    torch.manual_seed(0)
    memory, pos = torch.randn(2, 4, 3, 5, 8), torch.randn(2, 4, 3, 5, 8)
    video = torch.randn(2, 4, 3, 48, 80)
    plain = TokenProposals(8, num_queries=3)
    gated = TokenProposals(8, num_queries=3, slot_gate=2.5)
    moved = TokenProposals(8, num_queries=3, slot_gate=2.5, slot_motion=16)
    for heads in (gated, moved):
        heads.load_state_dict(plain.state_dict())
    for heads in (plain, gated, moved):
        heads.train(training)
    a, b, c = plain(memory, pos), gated(memory, pos), moved(memory, pos, video)
    for other in (b, c):
        same = all(torch.equal(a[k], other[k]) for k in ("content", "query_pos", "reference"))
        assert same == training


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
    crit = SetCriterion(dataclasses.replace(CFG, token_on_mask=False))
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


def test_token_on_mask_trains_a_token_that_shows_the_object():
    """An L-shaped object (an occluder covers its box's middle): its box centre's token shows
    the occluder, so `token_on_mask` trains the token it covers nearest its mass centre."""
    crit = SetCriterion(dataclasses.replace(CFG, token_on_mask=True))
    mask = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
    mask[0, 0, :, :8] = True  # the left column of tokens ...
    mask[0, 0, 8:, :] = True  # ... and the bottom row: token (0, 1) holds the box centre
    box = torch.tensor([0.5, 0.5, 1.0, 1.0])
    logits = torch.full((1, 1, 2, 2), -4.0)
    boxes = torch.full((1, 1, 2, 2, 4), 0.5)
    boxes[0, 0, 1, 0] = box
    sample = {"boxes": box.view(1, 1, 4), "masks": mask, "present": torch.ones(1, 1).bool()}
    out = {"token_logits": logits, "token_boxes": boxes}
    losses = crit._token_losses(out, [sample], torch.tensor(1.0))
    assert losses["loss_token_bbox"] == 0
    hit = torch.zeros(1, 1, 2, 2)
    hit[0, 0, 1, 0] = 1  # the mass centre (x 6.8, y 9.5 px) is nearest token (1, 0)'s centre
    expected = sigmoid_focal_loss(logits, hit, alpha=0.25, gamma=2.0, reduction="sum")
    assert torch.isclose(losses["loss_token_ce"], expected)


def test_tokens_on_masks_falls_back_to_the_most_covered_token():
    mask = torch.zeros(2, 16, 24, dtype=torch.bool)
    mask[0, 9:11, 17:19] = True  # a speck inside token (1, 2)
    mask[1, 6:10, 6:10] = True  # 4 pixels in each of 4 tokens around their corner: the first
    y, x = tokens_on_masks(mask, (2, 3))
    assert y.tolist() == [1, 0] and x.tolist() == [2, 0]


def test_a_memory_smaller_than_the_queries_is_refused():
    heads = TokenProposals(8, num_queries=7)
    memory = torch.randn(1, 2, 2, 3, 8)  # 6 tokens a frame
    with pytest.raises(ValueError, match="fewer tokens than the 7 queries"):
        heads(memory, torch.zeros_like(memory))
