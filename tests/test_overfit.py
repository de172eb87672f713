"""A `tiny` model overfits one clip: both relevant objects segmented, the look-alike not.

No proposal ends on the look-alike, so the proposal scores alone cannot show that the model
tells it apart; the dense target map (`loss_target_map`, on in `tiny`) can, and is checked
to light up under each relevant object and stay dark under the look-alike.

The clip: a textured background, two moving copies of the target product (a red ellipse
with cream stripes) and a hard negative that differs only in colour (blue). Training uses
the real criterion, parameter groups and postprocess; only the clip (T=2, 64×96 rather than
T=8 at a short edge of 96, 6× the cost), the decoder width (128) and the learning rates
differ from the preset, to converge in a CPU minute. The rest group, the mask head
included, runs at 1e-3 (at 1e-2 the memory collapses: every position's E alike, all
proposals the same box). The slots are linked at inference as in training (`slot_gate` 0):
carrying them is an inference setting tuned on SynthLive's motion, and on this clip's 4 × 6
memory `tiny`'s one-cell gate hands the second object's slot a token its training chain never
held (IoU 0.68 instead of 0.92), which says nothing about what the model learnt.
"""

import numpy as np
import pytest
import torch

from vois_cli.config import preset
from vois_cli.models import build_model, parameter_groups
from vois_cli.models.criterion import token_coverage

T, H, W = 2, 64, 96
OBJ_H, OBJ_W = 22, 30
STEPS = 200
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
RED, CREAM, BLUE = (0.85, 0.15, 0.2), (0.98, 0.96, 0.92), (0.15, 0.3, 0.85)


def _product(base):
    """(OBJ_H, OBJ_W, 3) diagonal stripes and the ellipse mask (OBJ_H, OBJ_W)."""
    y, x = np.mgrid[:OBJ_H, :OBJ_W]
    img = np.empty((OBJ_H, OBJ_W, 3))
    img[:] = base
    img[(y + x) % 8 < 4] = CREAM
    shape = ((y - (OBJ_H - 1) / 2) / (OBJ_H / 2)) ** 2 + ((x - (OBJ_W - 1) / 2) / (OBJ_W / 2)) ** 2
    return img, shape <= 1


def _normalise(img):
    """(..., H, W, 3) in [0, 1] -> float32 (..., 3, H, W), ImageNet statistics."""
    return torch.tensor((img - MEAN) / STD, dtype=torch.float32).movedim(-1, -3)


def make_clip():
    """Sample dict (interfaces.md) with 2 relevant objects, and the negative's masks (T, H, W)."""
    rng = np.random.default_rng(0)
    coarse = rng.standard_normal((H // 8, W // 8, 3)).repeat(8, 0).repeat(8, 1)
    background = np.clip(0.5 + 0.15 * coarse + 0.05 * rng.standard_normal((H, W, 3)), 0, 1)
    relevant, ellipse = _product(RED)
    negative, _ = _product(BLUE)
    # the 64×96 input has a 2×3 memory at stride 32: each object moves inside its own cell so
    # the queries' attention maps over that memory can tell the two instances apart
    tracks = [((4, 1), (2, 1)), ((38, 64), (-2, 1)), ((36, 33), (-2, -1))]  # (y, x), velocity
    frames = np.repeat(background[None], T, 0)
    masks = np.zeros((3, T, H, W), bool)
    for k, ((y0, x0), (vy, vx)) in enumerate(tracks):
        for t in range(T):
            y, x = y0 + vy * t, x0 + vx * t
            masks[k, t, y : y + OBJ_H, x : x + OBJ_W] = ellipse
            frames[t][masks[k, t]] = (relevant if k < 2 else negative)[ellipse]
    boxes = torch.zeros(2, T, 4)
    for k in range(2):
        for t in range(T):
            ys, xs = np.nonzero(masks[k, t])
            x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
            boxes[k, t] = torch.tensor(
                [(x0 + x1) / 2 / W, (y0 + y1) / 2 / H, (x1 - x0) / W, (y1 - y0) / H]
            )
    target = np.ones((48, 48, 3))
    target[13 : 13 + OBJ_H, 9 : 9 + OBJ_W][ellipse] = relevant[ellipse]
    sample = {
        "video": _normalise(frames),
        "target": _normalise(target),
        "masks": torch.from_numpy(masks[:2]),
        "boxes": boxes,
        "present": torch.ones(2, T, dtype=torch.bool),
    }
    return sample, masks[2]


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def _map_under(target_logits, masks):
    """Mean target-map probability over the tokens of masks (T, H, W), weighted by coverage."""
    coverage = token_coverage(torch.from_numpy(masks)[None], tuple(target_logits.shape[-2:]))
    return float((target_logits.sigmoid() * coverage).sum() / coverage.sum())


@pytest.fixture
def deterministic_one_thread():
    """The pinned numbers need one code path: deterministic kernels on one thread."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(deterministic)
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_tiny_model_overfits_one_clip_and_scores_the_negative_lower(deterministic_one_thread):
    torch.manual_seed(0)
    cfg = preset(
        "tiny",
        model={"num_frames": T, "hidden_dim": 128, "slot_gate": 0.0},
        train={"lr": 1e-3, "lr_backbone": 1e-4},
    )
    model, criterion, postprocess = build_model(cfg)
    groups = parameter_groups(model, cfg.model, cfg.train)
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.train.weight_decay)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=STEPS * 3 // 4, gamma=0.1)
    sample, negative = make_clip()
    video, target = sample["video"][None], sample["target"][None]
    for _ in range(STEPS):
        loss = sum(criterion(model(video, target), [sample]).values())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    model.eval()
    with torch.no_grad():
        outputs = model(video, target)
    (proposals,) = postprocess(outputs, [T], [(H, W)])
    masks = sample["masks"].numpy()
    best = [max(proposals, key=lambda p, k=k: _iou(p["masks"], masks[k])) for k in range(2)]
    ious = [float(_iou(p["masks"], masks[k])) for k, p in enumerate(best)]
    # measured 0.91 / 0.90 (CondInst masks; the dot-product head reached 0.9 and more)
    assert min(ious) >= 0.88, ious
    assert best[0] is not best[1]
    lowest_relevant = min(p["score"] for p in best)
    on_negative = [p["score"] for p in proposals if _iou(p["masks"], negative) > 0.3]
    assert all(score < lowest_relevant for score in on_negative), (on_negative, lowest_relevant)
    # the map (0.52 and 0.53 under the relevant objects, 0.005 under the look-alike when
    # written) can fail where the proposal check above cannot
    on_relevant = [_map_under(outputs["target_logits"][0], masks[k]) for k in range(2)]
    under_negative = _map_under(outputs["target_logits"][0], negative)
    assert min(on_relevant) > 0.3 > 0.1 > under_negative, (on_relevant, under_negative)
