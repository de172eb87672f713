"""The sequence matcher: the cost of docs/design.md#matching-and-losses, a brute-force optimum."""

import itertools
import math

import pytest
import torch

from vois_cli.models.matcher import SequenceMatcher, as_sequences

WEIGHTS = (1.0, 5.0, 2.0)


def _giou(a, b):
    """Generalized IoU of two cxcywh boxes, from the definition."""
    ax0, ay0, ax1, ay1 = a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2
    bx0, by0, bx1, by1 = b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2
    inter = max(0, min(ax1, bx1) - max(ax0, bx0)) * max(0, min(ay1, by1) - max(ay0, by0))
    union = a[2] * a[3] + b[2] * b[3] - inter
    hull = (max(ax1, bx1) - min(ax0, bx0)) * (max(ay1, by1) - min(ay0, by0))
    return inter / union - (hull - union) / hull


def _pair_cost(logits, boxes, gt, present):
    """One proposal (T, 2), (T, 4) against one object (T, 4), (T,), frame by frame."""
    t_all = len(present)
    shown = [t for t in range(t_all) if present[t]]
    p_true = []
    for t in range(t_all):
        e = [math.exp(v) for v in logits[t]]
        p_true.append(e[0 if present[t] else 1] / sum(e))
    cost = -WEIGHTS[0] * sum(p_true) / t_all
    if shown:
        l1 = sum(sum(abs(boxes[t][c] - gt[t][c]) for c in range(4)) / 4 for t in shown)
        cost += WEIGHTS[1] * l1 / len(shown)
        cost -= WEIGHTS[2] * sum(_giou(boxes[t], gt[t]) for t in shown) / len(shown)
    return cost


def _random_case(seed, n, k, t):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(1, t * n, 2, generator=g)
    boxes = torch.cat(
        [
            torch.rand(1, t * n, 2, generator=g) * 0.6 + 0.2,
            torch.rand(1, t * n, 2, generator=g) * 0.3 + 0.05,
        ],
        -1,
    )
    gt = torch.cat(
        [
            torch.rand(k, t, 2, generator=g) * 0.6 + 0.2,
            torch.rand(k, t, 2, generator=g) * 0.3 + 0.05,
        ],
        -1,
    )
    present = torch.rand(k, t, generator=g) > 0.3
    present[:, 0] = True
    gt = torch.where(present[..., None], gt, 0)  # absent frames carry zero boxes (interfaces.md)
    return {"pred_logits": logits, "pred_boxes": boxes}, [{"boxes": gt, "present": present}]


@pytest.mark.parametrize(
    ("seed", "n", "k", "t"),
    [(s, n, k, 3) for s in range(4) for n, k in ((4, 2), (5, 3), (3, 3), (2, 4))],
)
def test_matches_brute_force_over_permutations(seed, n, k, t):
    outputs, samples = _random_case(seed, n, k, t)
    logits = as_sequences(outputs["pred_logits"], n)[0].tolist()
    boxes = as_sequences(outputs["pred_boxes"], n)[0].tolist()
    gt, present = samples[0]["boxes"].tolist(), samples[0]["present"].tolist()
    cost = [
        [_pair_cost(logits[j], boxes[j], gt[i], present[i]) for i in range(k)] for j in range(n)
    ]
    if k <= n:
        best = min(
            itertools.permutations(range(n), k), key=lambda p: sum(cost[p[i]][i] for i in range(k))
        )
        expected = sorted((best[i], i) for i in range(k))
    else:
        best = min(
            itertools.permutations(range(k), n), key=lambda p: sum(cost[j][p[j]] for j in range(n))
        )
        expected = [(j, best[j]) for j in range(n)]
    rows, cols = SequenceMatcher(*WEIGHTS)(outputs, samples)[0]
    assert list(zip(rows.tolist(), cols.tolist(), strict=True)) == expected


def test_query_layout_is_frame_major():
    x = torch.arange(6).view(1, 6)  # T=3 frames of n=2 queries
    assert as_sequences(x, 2).tolist() == [[[0, 2, 4], [1, 3, 5]]]


def test_absent_frames_are_scored_as_no_object():
    # proposal 0 says "relevant" everywhere, proposal 1 only where the object is present:
    # same boxes, so the class cost alone must pick proposal 1.
    box = [0.5, 0.5, 0.2, 0.2]
    logits = torch.tensor([[[4.0, -4.0], [4.0, -4.0]], [[4.0, -4.0], [-4.0, 4.0]]])  # (T, n, 2)
    outputs = {"pred_logits": logits.reshape(1, 4, 2), "pred_boxes": torch.tensor([box] * 4)[None]}
    samples = [
        {"boxes": torch.tensor([[box, [0.0] * 4]]), "present": torch.tensor([[True, False]])}
    ]
    rows, cols = SequenceMatcher(*WEIGHTS)(outputs, samples)[0]
    assert rows.tolist() == [1] and cols.tolist() == [0]


def test_no_objects_gives_empty_matches():
    outputs, _ = _random_case(0, 3, 1, 2)
    samples = [{"boxes": torch.zeros(0, 2, 4), "present": torch.zeros(0, 2, dtype=torch.bool)}]
    rows, cols = SequenceMatcher(*WEIGHTS)(outputs, samples)[0]
    assert rows.numel() == 0 and cols.numel() == 0
