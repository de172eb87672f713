"""Postprocess: scores over the real frames, thresholds, empty proposals, order, original size,
and the scores `tiny` deviates with (target map, mask score)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vois_cli.config import preset
from vois_cli.models.postprocess import PostProcess, binary_masks

PLAIN = preset("tiny", model={"score_mask": False}).model  # the paper's score: prob(relevant)


def _logit(p):
    return math.log(p / (1 - p))


def _outputs(probs, masks):
    """probs (n, T) of relevant -> pred_logits (1, T·n, 2) in the frame-major query order."""
    p = torch.tensor(probs, dtype=torch.float64)
    logits = torch.stack([torch.log(p), torch.log(1 - p)], -1)  # softmax gives back p
    return {"pred_logits": logits.transpose(0, 1).reshape(1, -1, 2).float(), "pred_masks": masks}


def test_scores_masks_thresholds_and_order():
    half = torch.tensor([[5.0, 5.0], [-5.0, -5.0]])  # top row on: the top half after resizing
    masks = torch.full((1, 4, 3, 2, 2), -5.0)
    masks[0, 0] = half
    masks[0, 1] = half
    masks[0, 2, 0] = half  # only in its first frame
    masks[0, 3, 2] = half  # only in the padded third frame: empty over the real frames
    probs = [[0.2, 0.4, 0.99], [0.5, 0.7, 0.0], [0.0005, 0.001, 0.9], [0.9, 0.9, 0.9]]
    (result,) = PostProcess(PLAIN)(_outputs(probs, masks), [2], [(4, 6)])
    # proposal 2 scores 0.00075 <= 0.001, proposal 3 has no mask in the real frames
    assert [r["score"] for r in result] == pytest.approx([0.6, 0.3])
    expected = np.zeros((2, 4, 6), bool)
    expected[:, :2] = True
    for r in result:
        assert r["masks"].dtype == np.bool_ and r["masks"].shape == (2, 4, 6)
        assert np.array_equal(r["masks"], expected)


def test_ties_keep_proposal_order_and_batches_use_their_own_sizes():
    masks = torch.full((2, 3, 1, 2, 2), 3.0)
    probs = [[0.5], [0.8], [0.5]]
    outputs = _outputs(probs, masks)
    outputs["pred_logits"] = outputs["pred_logits"].repeat(2, 1, 1)
    results = PostProcess(PLAIN)(outputs, [1, 1], [(5, 7), (3, 2)])
    first = [r["score"] for r in results[0]]
    assert first == pytest.approx([0.8, 0.5, 0.5])
    assert [r["masks"].shape for r in results[1]] == [(1, 3, 2)] * 3
    # stable: the two 0.5 proposals come in proposal order; mark them to tell them apart
    masks[0, 2] = -3.0
    masks[0, 2, 0, 0, 0] = 3.0
    (tied, _) = PostProcess(PLAIN)(
        {"pred_logits": outputs["pred_logits"], "pred_masks": masks}, [1, 1], [(2, 2), (2, 2)]
    )
    assert tied[1]["masks"].all() and not tied[2]["masks"].all()


def test_mask_threshold_comes_from_the_config():
    masks = torch.full((1, 1, 1, 2, 2), _logit(0.6))
    outputs = _outputs([[0.9]], masks)
    assert len(PostProcess(PLAIN)(outputs, [1], [(2, 2)])[0]) == 1
    strict = PostProcess(preset("tiny", model={"score_mask": False, "mask_threshold": 0.7}).model)
    assert strict(outputs, [1], [(2, 2)]) == [[]]


def test_mask_score_weights_each_proposal_by_its_mean_probability_where_it_is_on():
    """tiny's score: prob × the mean sigmoid over the pixels above the mask threshold."""
    masks = torch.full((1, 2, 2, 2, 2), -30.0)  # two proposals, two real frames
    masks[0, 0, 0, 0] = torch.tensor([_logit(0.6), _logit(0.55)])  # on in 2 pixels of frame 0
    masks[0, 0, 1, 1, 1] = _logit(0.65)  # and 1 of frame 1
    masks[0, 1, :, 0, 0] = _logit(0.99)  # one sure pixel in each frame
    outputs = _outputs([[0.9, 0.9], [0.6, 0.6]], masks)
    assert preset("tiny").model.score_mask
    (kept,) = PostProcess(preset("tiny").model)(outputs, [2], [(2, 2)])
    assert [k["score"] for k in kept] == pytest.approx([0.6 * 0.99, 0.9 * (0.6 + 0.55 + 0.65) / 3])
    (plain,) = PostProcess(PLAIN)(outputs, [2], [(2, 2)])
    assert [k["score"] for k in plain] == pytest.approx([0.9, 0.6])
    for a, b in zip(kept, plain[::-1], strict=True):  # the masks do not change
        assert np.array_equal(a["masks"], b["masks"])


@pytest.mark.parametrize("threshold", [0.0, 1.5, math.inf])
def test_plane_by_plane_masks_equal_one_batched_resize(threshold):
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 9, 13) * 4
    if math.isfinite(threshold):  # planes none of whose pixels passes, some only just
        logits[0, 1] = logits[0, 1].clamp(max=threshold - 1e-6)
        logits[1, 2] = logits[1, 2].clamp(max=threshold)
        logits[2, :3] = logits[2, :3].clamp(max=threshold - 0.5)
    batched = F.interpolate(logits, size=(37, 61), mode="bilinear", align_corners=False)
    assert np.array_equal(binary_masks(logits, (37, 61), threshold), (batched > threshold).numpy())
