"""Learned association: which query is on which object, its loss by hand, re-linking."""

import math

import pytest
import torch

import vois_cli.models.vois as vois_module
from vois_cli.config import preset
from vois_cli.models.association import association_loss, objects_under, relink
from vois_cli.models.vois import build_model


def test_objects_under_names_the_first_object_holding_each_centre():
    objects = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    objects[0, 0, :2, :2] = True  # top left
    objects[1, 0, :, 1:] = True  # right three columns, overlapping object 0 at column 1
    centres = torch.tensor([[[0.1, 0.1], [0.3, 0.1], [0.9, 0.9], [0.1, 0.9]]])  # (T=1, n=4, 2)
    assert objects_under(centres, objects).tolist() == [[0, 0, 1, -1]]
    assert objects_under(centres, objects[:0]).tolist() == [[-1] * 4]


def _sample(objects):
    return {"masks": objects, "present": objects.flatten(2).any(-1)}


def test_association_loss_equals_the_hand_computed_softmax():
    # T = 2, n = 2, one object: under query 0 in frame 0, under query 1 in frame 1
    objects = torch.zeros(1, 2, 4, 4, dtype=torch.bool)
    objects[0, 0, :2, :2] = True
    objects[0, 1, 2:, 2:] = True
    centres = torch.tensor([[0.1, 0.1], [0.9, 0.1], [0.1, 0.1], [0.9, 0.9]])  # query t·n + j
    a, b, c, d = 1.0, -2.0, 0.5, 3.0  # frame 0's embeddings a, b; frame 1's c, d (dim 1)
    w = 2.0  # the centre distance's weight; query 0 is 0 from query 2, 1.6 from query 3 (L1)
    outputs = {
        "pred_embeddings": torch.tensor([a, b, c, d]).view(1, 4, 1),
        "pred_boxes": torch.cat([centres, torch.full((4, 2), 0.2)], -1)[None],
        "distance_weight": torch.tensor(w),
    }
    to_c, to_d = a * c, a * d - w * 1.6
    expected = -(to_d - math.log(math.exp(to_c) + math.exp(to_d)))
    loss = association_loss(outputs, [_sample(objects)])
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # the object leaves: no next-frame query to find, nothing to learn
    gone = objects.clone()
    gone[0, 1] = False
    assert association_loss(outputs, [_sample(gone)]).item() == 0.0


def test_relink_makes_each_slot_follow_the_query_its_embedding_matches():
    n, t = 3, 3
    objects = torch.eye(n) * 5  # one embedding per object
    placed = [torch.arange(n), torch.tensor([2, 0, 1]), torch.tensor([1, 2, 0])]  # query -> object
    embeddings = torch.stack([objects[p] for p in placed]).view(1, t * n, n)
    which = torch.stack(placed).float()  # (T, n): the object each query is on
    outputs = {
        "pred_embeddings": embeddings,
        "distance_weight": torch.tensor(1.0),
        "pred_logits": which.view(1, t * n, 1).expand(-1, -1, 2),
        "pred_boxes": which.view(1, t * n, 1).expand(-1, -1, 4) / 10,
        "pred_masks": which.T[None, ..., None, None].expand(-1, -1, -1, 2, 2),
    }
    linked = relink(outputs)
    per_slot = torch.arange(n).float()[:, None].expand(n, t)
    assert torch.equal(linked["pred_masks"][0, :, :, 0, 0], per_slot)
    assert torch.equal(linked["pred_logits"].view(t, n, 2)[..., 0], per_slot.T)
    assert torch.equal(linked["pred_boxes"].view(t, n, 4)[..., 3] * 10, per_slot.T)


def test_evaluated_model_only_reorders_each_frames_queries(monkeypatch):
    cfg = preset("tiny", model={"loss_association": 1.0, "match_per_frame": True})
    model = build_model(cfg)[0].eval()
    video, target = torch.randn(1, 8, 3, 64, 96), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        linked = model(video, target)
        monkeypatch.setattr(vois_module, "relink", lambda outputs: outputs)
        chained = model(video, target)
    assert linked["pred_embeddings"].shape == (1, 8 * cfg.model.num_queries, 32)
    for f in range(8):  # the same planes, in another order
        a = sorted(map(tuple, linked["pred_masks"][0, :, f].flatten(1).tolist()))
        b = sorted(map(tuple, chained["pred_masks"][0, :, f].flatten(1).tolist()))
        assert a == b


def test_off_by_default_adds_no_head_and_no_output():
    model = build_model(preset("tiny"))[0].eval()
    assert model.association is None
    with torch.no_grad():
        out = model(torch.randn(1, 8, 3, 64, 96), torch.randn(1, 3, 64, 64))
    assert "pred_embeddings" not in out
