"""YouTube-VIS video instance segmentation metrics on one category.

Our own implementation of youtubevos/cocoapi `ytvoseval.py` (evaluate, accumulate,
summarize) with identical numbers: sequence IoU = Σ_t |P∩G| / Σ_t |P∪G| over all frames
(null = empty), top 100 predictions per video by score with a stable sort, greedy matching
per IoU threshold in 0.50:0.05:0.95, 101-point interpolated precision, area ranges on the
mean area of the frames where the object is present, crowd objects ignored. Unlike the
official code, an empty prediction list is scored (0 where there is ground truth).

Speed: the official code merges every (prediction, object, frame) pair in Python; we make
one `pycocotools.mask.iou` call per frame of a video and recover each intersection from the
IoU and the two areas (i = iou·(a+b)/(1+iou), exact after rounding).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from vois_cli.atomic import write_json
from vois_cli.data.ytvis import Annotations, load_annotations, load_predictions

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
MAX_DETS = (1, 10, 100)
AREA_RANGES = {
    "all": (0.0, 1e5**2),
    "s": (0.0, 128.0**2),
    "m": (128.0**2, 256.0**2),
    "l": (256.0**2, 1e5**2),
}
METRIC_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl") + (
    "AR1",
    "AR10",
    "AR100",
    "ARs",
    "ARm",
    "ARl",
)


@dataclass
class Evaluation:
    """Everything `evaluate` measures.

    metrics: flat {AP, ..., ARl: float in [0, 1] or -1 where undefined, num_*: int}.
    per_video: one dict per video of the annotation file, in id order (`_video_report`).
    precision: (10, 101) interpolated precision at each IoU threshold and recall point,
        area `all`, 100 predictions per video; -1 where there is no ground truth.
    """

    metrics: dict
    per_video: list[dict]
    precision: np.ndarray

    def pr_curve(self) -> list[dict]:
        """Rows {recall, precision_iou50, precision_mean} at the 101 recall points, for plots."""
        mean = self.precision.mean(axis=0)  # -1 stays -1: a curve is all defined or none
        return [
            {"recall": float(r), "precision_iou50": float(p50), "precision_mean": float(pm)}
            for r, p50, pm in zip(RECALL_THRESHOLDS, self.precision[0], mean, strict=True)
        ]


def _mean_area(areas) -> float:
    """Mean over frames with a non-null, non-zero area (0 if none), as the official code."""
    present = [a for a in areas if a]
    return float(np.mean(present)) if present else 0.0


def sequence_ious(
    dt_segs: list[list], gt_segs: list[list], dt_area: np.ndarray, gt_area: np.ndarray
) -> np.ndarray:
    """Sequence IoU of every prediction with every object of one video -> (D, G) float64.

    dt_segs / gt_segs: per sequence, one compressed RLE or None per frame; dt_area (D, T)
    and gt_area (G, T) their pixel counts (`mask_areas`).
    """
    inter = np.zeros((len(dt_segs), len(gt_segs)))
    for t in range(dt_area.shape[1]):
        d_idx = [i for i, s in enumerate(dt_segs) if s[t] is not None]
        g_idx = [j for j, s in enumerate(gt_segs) if s[t] is not None]
        if not d_idx or not g_idx:
            continue
        iou = mask_utils.iou(
            [dt_segs[i][t] for i in d_idx], [gt_segs[j][t] for j in g_idx], [0] * len(g_idx)
        )
        both = dt_area[d_idx, t][:, None] + gt_area[g_idx, t][None, :]
        inter[np.ix_(d_idx, g_idx)] += np.rint(iou * both / (1.0 + iou))
    union = dt_area.sum(1)[:, None] + gt_area.sum(1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def mask_areas(seqs: list[list], length: int) -> np.ndarray:
    """(N, T) float64 pixel counts of N mask sequences of T frames; 0 where null."""
    out = np.zeros((len(seqs), length))
    idx = [(i, t) for i, s in enumerate(seqs) for t in range(length) if s[t] is not None]
    rles = [seqs[i][t] for i, t in idx]
    # pycocotools 2.0.11 `area` overflows on lists longer than 255 (a uint8 length)
    areas = [mask_utils.area(rles[k : k + 255]) for k in range(0, len(rles), 255)]
    if idx:
        rows, cols = zip(*idx, strict=True)
        out[rows, cols] = np.concatenate(areas)
    return out


def _match(ious: list[list[float]], gt_ignore: list[bool], gt_crowd: list[bool]) -> np.ndarray:
    """Greedy matching of score-sorted predictions to objects at each IoU threshold.

    ious: (D, G) as lists, objects ordered non-ignored first. Returns (T, D) int: the matched
    object's index or -1. Follows ytvoseval.evaluateVid: crowd objects may match many times,
    a match to a non-ignored object is never traded for an ignored one, ties go to the later.
    """
    num_gt = len(gt_ignore)
    out = np.full((len(IOU_THRESHOLDS), len(ious)), -1)
    for ti, thr in enumerate(IOU_THRESHOLDS):
        taken = [False] * num_gt
        for d, row in enumerate(ious):
            best, m = min(thr, 1 - 1e-10), -1
            for g in range(num_gt):
                if taken[g] and not gt_crowd[g]:
                    continue
                if m > -1 and not gt_ignore[m] and gt_ignore[g]:
                    break
                if row[g] < best:
                    continue
                best, m = row[g], g
            if m > -1:
                taken[m] = True
                out[ti, d] = m
    return out


@dataclass
class _VideoEval:
    """One video's inputs to accumulation, per area range."""

    scores: np.ndarray  # (D,) sorted descending, D ≤ 100
    dt_matched: dict[str, np.ndarray]  # area -> (T, D) bool
    dt_ignore: dict[str, np.ndarray]  # area -> (T, D) bool
    num_gt: dict[str, int]  # area -> non-ignored objects


def _evaluate_video(gts: list[dict], scores: np.ndarray, dt_area: np.ndarray, ious: np.ndarray):
    """Match one video's top predictions to its objects for every area range.

    scores (D,) sorted descending, dt_area (D,) mean present areas, ious (D, G). Returns the
    `_VideoEval` and the (T, D) match matrix of area `all` (object indices in `gts` order,
    -1 unmatched) for the per-video report.
    """
    gt_area = [_mean_area(g["areas"]) for g in gts]
    crowd = [bool(g["iscrowd"]) for g in gts]
    cache: dict[tuple, np.ndarray] = {}
    ev = _VideoEval(scores, {}, {}, {})
    match_all = None
    for name, (lo, hi) in AREA_RANGES.items():
        ignore = [c or a < lo or a > hi for c, a in zip(crowd, gt_area, strict=True)]
        order = sorted(range(len(gts)), key=lambda j: ignore[j])  # stable: non-ignored first
        key = tuple(order), tuple(ignore)
        if key not in cache:
            cols = ious[:, order].tolist() if len(scores) else []
            m = _match(cols, [ignore[j] for j in order], [crowd[j] for j in order])
            cache[key] = np.where(m >= 0, np.array(order + [-1])[m], -1)
        matched = cache[key]
        hit = matched >= 0
        ig = np.array(ignore + [False])[matched] & hit
        out_of_range = (dt_area < lo) | (dt_area > hi)
        ev.dt_matched[name] = hit
        ev.dt_ignore[name] = ig | (~hit & out_of_range[None, :])
        ev.num_gt[name] = len(ignore) - sum(ignore)
        if name == "all":
            match_all = matched
    return ev, match_all


def _accumulate(evals: list[_VideoEval], area: str, max_det: int):
    """Precision (T, R) and recall (T,) over all videos, as ytvoseval.accumulate; -1 if no GT."""
    num_t, num_r = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
    npig = sum(e.num_gt[area] for e in evals)
    if npig == 0:
        return -np.ones((num_t, num_r)), -np.ones(num_t)
    scores = np.concatenate([e.scores[:max_det] for e in evals])
    order = np.argsort(-scores, kind="mergesort")
    matched = np.concatenate([e.dt_matched[area][:, :max_det] for e in evals], axis=1)[:, order]
    ignore = np.concatenate([e.dt_ignore[area][:, :max_det] for e in evals], axis=1)[:, order]
    tp = np.cumsum(matched & ~ignore, axis=1).astype(float)
    fp = np.cumsum(~matched & ~ignore, axis=1).astype(float)
    nd = tp.shape[1]
    precision = np.zeros((num_t, num_r))
    recall = np.zeros(num_t)
    if nd == 0:
        return precision, recall
    rc = tp / npig
    pr = tp / (fp + tp + np.spacing(1))
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
    recall[:] = rc[:, -1]
    for t in range(num_t):
        inds = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
        ok = inds < nd
        precision[t, ok] = pr[t, inds[ok]]
    return precision, recall


def _summary(values: np.ndarray) -> float:
    defined = values[values > -1]
    return float(defined.mean()) if defined.size else -1.0


def _video_report(video, gts: list[dict], num_predictions: int, ious, match_all) -> dict:
    """Where a model fails on one video: best IoU per object, matched / missed at IoU 0.5."""
    matched50 = set(match_all[0][match_all[0] >= 0].tolist())
    objects = [
        {
            "id": g["id"],
            "iscrowd": int(g["iscrowd"]),
            "mean_area": _mean_area(g["areas"]),
            "best_iou": float(ious[:, j].max()) if len(ious) else 0.0,
            "matched": j in matched50,
        }
        for j, g in enumerate(gts)
    ]
    real = [o for o in objects if not o["iscrowd"]]
    return {
        "video_id": video.id,
        "name": video.name,
        "num_gt": len(real),
        "num_predictions": num_predictions,
        "matched": sum(o["matched"] for o in real),
        "missed": sum(not o["matched"] for o in real),
        "unmatched_predictions": int((match_all[0] < 0).sum()),
        "objects": objects,
    }


def evaluate(
    annotations: Annotations,
    predictions: list[dict],
    progress: Callable[..., None] | None = None,
) -> Evaluation:
    """Score validated predictions (`load_predictions`) against validated annotations.

    Videos are taken in id order and predictions within a video by descending score, ties
    in file order; only the top 100 per video count.
    """
    preds: dict[int, list[dict]] = {v.id: [] for v in annotations.videos}
    for p in predictions:
        preds[p["video_id"]].append(p)
    gts_by_video = annotations.by_video()
    videos = sorted(annotations.videos, key=lambda v: v.id)
    evals, reports = [], []
    for done, video in enumerate(videos, 1):
        gts = gts_by_video[video.id]
        dts = sorted(preds[video.id], key=lambda p: -p["score"])[: MAX_DETS[-1]]
        if gts or dts:
            dt_segs = [d["segmentations"] for d in dts]
            gt_segs = [g["segmentations"] for g in gts]
            dt_area = mask_areas(dt_segs, video.length)
            ious = sequence_ious(dt_segs, gt_segs, dt_area, mask_areas(gt_segs, video.length))
            scores = np.array([d["score"] for d in dts])
            mean_area = np.array([_mean_area(a) for a in dt_area])
            ev, match_all = _evaluate_video(gts, scores, mean_area, ious)
            evals.append(ev)
        else:
            ious, match_all = np.zeros((0, 0)), np.full((len(IOU_THRESHOLDS), 0), -1)
        reports.append(_video_report(video, gts, len(preds[video.id]), ious, match_all))
        if progress is not None:
            progress(done, len(videos))
    precision, recall = {}, {}
    for area in AREA_RANGES:
        for max_det in MAX_DETS:
            precision[area, max_det], recall[area, max_det] = _accumulate(evals, area, max_det)
    top = MAX_DETS[-1]
    metrics = {
        "AP": _summary(precision["all", top]),
        "AP50": _summary(precision["all", top][0]),
        "AP75": _summary(precision["all", top][5]),  # IOU_THRESHOLDS[5] == 0.75 exactly
        **{f"AP{a}": _summary(precision[a, top]) for a in ("s", "m", "l")},
        **{f"AR{m}": _summary(recall["all", m]) for m in MAX_DETS},
        **{f"AR{a}": _summary(recall[a, top]) for a in ("s", "m", "l")},
        "num_videos": len(videos),
        "num_gt": sum(r["num_gt"] for r in reports),
        "num_predictions": len(predictions),
    }
    return Evaluation(metrics, reports, precision["all", top])


def score_files(
    gt: str | Path,
    pred: str | Path,
    out: str | Path,
    per_video: str | Path | None = None,
    pr_curve: str | Path | None = None,
    progress: Callable[..., None] | None = None,
) -> Evaluation:
    """Validate and score a prediction file; write metrics (and optionally the breakdowns)."""
    annotations = load_annotations(gt)
    result = evaluate(annotations, load_predictions(pred, annotations), progress=progress)
    write_json(out, result.metrics, indent=2)
    if per_video is not None:
        write_json(per_video, result.per_video, indent=2)
    if pr_curve is not None:
        write_json(pr_curve, result.pr_curve(), indent=2)
    return result
