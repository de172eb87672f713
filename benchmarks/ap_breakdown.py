"""Where a model's AP is lost: masks, boxes, tracks and ranking, each beside its ceiling.

YouTube-VIS AP counts a predicted track only if its sequence IoU with a target instance
reaches 0.5 and ranks it by its score, so a model at AP 0 can fail at any of four steps.
This measures each one on a benchmark split, for a checkpoint and its predictions:

- `frame`: per target instance and present frame, the best IoU any prediction reaches
  (the ladder's `frame_iou`): mask quality before linking.
- `mask_failures`: the same best masks, each below IoU 0.5 named by how it fails: `missed`
  (IoU under 0.1), `spill` (it holds 3/4 of the instance, but under 3/4 of it is the
  instance), `partial` (3/4 of it is the instance, but it holds under 3/4 of it) or `both`;
  `spill_onto`: where the spilled pixels lie, as shares (another target instance, a
  look-alike, clutter, the background).
- `oracle_track`: per target, the sequence IoU of the track a perfect linker would build
  from the same masks (each frame's best prediction, nothing where the target is absent):
  the most any linking of these masks can give.
- `best_track`: per target, the best sequence IoU of a predicted track: what AP sees.
- `oracle_metrics`: YouTube-VIS AP of the perfect linker's tracks, each scored by its IoU:
  the AP these masks would give with perfect linking and ranking.
- `ranked_metrics`: YouTube-VIS AP of the predicted tracks themselves, each scored by its
  best sequence IoU with a target of its video: what perfect ranking alone would give.
- `top_track`: per video, the role (target, negative look-alike, clutter) of the placed
  product its best-scored track overlaps most (`none` below sequence IoU 0.1), as shares of
  the videos: whether the comparison with the target picks the right product at all.
- `box`: per target instance and frame, the best IoU of the model's query boxes, by how
  much of the instance is visible (its area over its largest area in the clip).
- `box_size`: the same best boxes' widths and heights against the instances' true ones: their
  correlation and the ratio of their standard deviations (a box head that finds centres but
  not sizes has both near 0, and its masks, placed in box units, inherit the one size).
- `mask_in_true_box`: per target instance and frame, the mask head's masks (before any cut
  to a predicted box) cut to the instance's true box instead: the best query's mask, the
  union of all the frame's query masks, and the union of every placed product's true mask
  (the ceiling of masks that find products but not instances).
- `query_spread`: per clip, the standard deviation over its n·T queries of the class logit
  margin (relevant minus no-object) and of the log box side (½ log w·h), averaged over the
  clips: near 0 when the decoder gives every query the same output whatever its start (a
  collapsed decoder: then the scores cannot rank and the boxes differ only by where their
  references put them).
- `slot_links`: per clip, how often a proposal that lies on a placed product in one frame
  (its box centre on the product's mask) still lies on the same product in the next frame,
  among the links that lie on some product in both (`on_target`: the links leaving a target
  instance): who is who inside a clip, before the clips are joined.
- `token_auc`: how the dense target map (`loss_target_map` > 0), or else the two-stage token
  scores, rank memory tokens half covered by a target instance against tokens on
  look-alikes, on unrelated products and on the background (0.5 is chance); and against
  the look-alikes that differ from the target in each attribute alone (`negative_shape`,
  `negative_pattern`, `negative_colour`): which difference the comparison misses.

    python3 benchmarks/ap_breakdown.py runs/train/last.pt runs/predictions.json \
        [--root data/synthlive] [--frames data/frames] [--split test] [--cache DIR]

Figures go to benchmarks/results/ap_breakdown.json with their provenance.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from provenance import finish, provenance
from pycocotools import mask as mask_utils
from scipy.stats import rankdata
from torch import Tensor
from torchvision.ops import box_convert, box_iou

from vois_cli.atomic import write_json
from vois_cli.checkpoint import load_model
from vois_cli.data.dataset import ClipDataset
from vois_cli.data.preprocess import preprocess
from vois_cli.data.products import ATTRIBUTES
from vois_cli.data.ytvis import CATEGORY_ID, load_annotations, load_predictions
from vois_cli.evaluation import evaluate
from vois_cli.models.criterion import token_coverage
from vois_cli.models.matcher import NO_OBJECT, RELEVANT

ROLES = ("target", "negative", "clutter")
ON_PRODUCT = 0.1  # a track under this sequence IoU with every product is on none
MISSED = 0.1  # a best frame mask under this IoU has missed its instance
HELD = 0.75  # `spill` / `partial`: the share of the instance held, of the mask on it
VISIBLE = ((0.8, 1.01, "visible > 0.8"), (0.5, 0.8, "visible 0.5-0.8"), (0.0, 0.5, "visible < 0.5"))


def track_ious(truth: list[dict], predicted: list[dict], length: int) -> dict:
    """One true object against a video's predicted tracks: `frames` (the best IoU in each
    present frame), `oracle` and `best` sequence IoU, `ious` (each track's sequence IoU) and
    `oracle_track` (the masks a perfect linker picks, RLE or None per frame)."""
    inter_o = union_o = 0.0
    inter_b, union_b = np.zeros(len(predicted)), np.zeros(len(predicted))
    frames, picked = [], []
    for t in range(length):
        gt = truth[t]
        segs = [p["segmentations"][t] for p in predicted]
        areas = np.array([mask_utils.area(s) if s else 0 for s in segs], float)
        if gt is None:
            union_b += areas
            picked.append(None)
            continue
        gt_area = float(mask_utils.area(gt))
        inter = np.array(
            [mask_utils.area(mask_utils.merge([s, gt], intersect=True)) if s else 0 for s in segs],
            float,
        )
        inter_b += inter
        union_b += areas + gt_area - inter
        ious = inter / np.maximum(areas + gt_area - inter, 1)
        k = int(ious.argmax()) if len(ious) and ious.max() > 0 else None
        frames.append(float(ious[k]) if k is not None else 0.0)
        picked.append(segs[k] if k is not None else None)
        inter_o += inter[k] if k is not None else 0.0
        union_o += areas[k] + gt_area - inter[k] if k is not None else gt_area
    ious = inter_b / np.maximum(union_b, 1)
    return {
        "frames": frames,
        "oracle": inter_o / max(union_o, 1.0),
        "best": float(ious.max()) if len(predicted) else 0.0,
        "ious": ious,
        "oracle_track": picked,
    }


def top_track_role(products: list[dict], predicted: list[dict], length: int) -> str:
    """The role of the product (an annotation with `role`) that the best-scored predicted
    track overlaps most, "none" if that IoU is below ON_PRODUCT or there is no track."""
    if not predicted:
        return "none"
    top = max(predicted, key=lambda p: p["score"])
    ious = [track_ious(o["segmentations"], [top], length)["best"] for o in products]
    best = int(np.argmax(ious)) if ious else None
    return products[best]["role"] if best is not None and ious[best] >= ON_PRODUCT else "none"


def mask_failures(pairs: list[tuple[dict, dict]], every: dict[int, list[dict]]) -> dict:
    """How the best frame masks below IoU 0.5 fail (module docstring). pairs: (true target
    object, its `track_ious` figures); every: a video's placed products (with `role`), the
    object itself among them (recognised by its segmentations), by video id."""
    counts = dict.fromkeys(("good", "missed", "spill", "partial", "both"), 0)
    onto = dict.fromkeys((*ROLES, "background"), 0.0)
    for obj, figures in pairs:
        others = [p for p in every[obj["video_id"]] if p["segmentations"] != obj["segmentations"]]
        present = [t for t, s in enumerate(obj["segmentations"]) if s is not None]
        for t, iou in zip(present, figures["frames"], strict=True):
            if iou >= 0.5 or iou < MISSED:
                counts["good" if iou >= 0.5 else "missed"] += 1
                continue
            truth = mask_utils.decode(obj["segmentations"][t]).astype(bool)
            mask = mask_utils.decode(figures["oracle_track"][t]).astype(bool)
            inter = (truth & mask).sum()
            held, own = inter / truth.sum(), inter / mask.sum()
            covers, within = held >= HELD, own >= HELD
            kind = "both" if covers == within else "spill" if covers else "partial"
            counts[kind] += 1
            if kind != "spill":
                continue
            spilled = mask & ~truth
            for product in others:
                seg = product["segmentations"][t]
                if seg is None:
                    continue
                on = spilled & mask_utils.decode(seg).astype(bool)
                onto[product["role"]] += on.sum()
                spilled &= ~on
            onto["background"] += spilled.sum()
    total, spilled_total = sum(counts.values()), sum(onto.values())
    return {
        "n": total,
        **{k: round(v / max(total, 1), 4) for k, v in counts.items()},
        "spill_onto": {k: round(v / max(spilled_total, 1), 4) for k, v in onto.items()},
    }


def predictions_by_video(predictions: list[dict]) -> dict[int, list[dict]]:
    """Predicted tracks grouped by their video id."""
    grouped: dict[int, list[dict]] = {}
    for p in predictions:
        grouped.setdefault(p["video_id"], []).append(p)
    return grouped


def tracks(root: Path, split: str, predictions: Path) -> dict:
    """The track figures; `oracle_metrics`: AP/AR of the perfect linker's tracks, each
    scored by its IoU, i.e. what these masks give with perfect linking and ranking;
    `ranked_metrics`: AP/AR of the predicted tracks scored by their best IoU with a target;
    `top_track`: the share of videos whose best-scored track is on each role's products."""
    ann = load_annotations(root / "annotations" / f"{split}.json")
    by_video, objects = predictions_by_video(load_predictions(predictions, ann)), ann.by_video()
    pairs = [
        (obj, track_ious(obj["segmentations"], by_video.get(video.id, []), video.length))
        for video in ann.videos
        for obj in objects[video.id]
    ]
    figures = [(obj["video_id"], f) for obj, f in pairs]
    oracle = [
        {
            "video_id": v,
            "category_id": CATEGORY_ID,
            "score": f["oracle"],
            "segmentations": f["oracle_track"],
        }
        for v, f in figures
        if any(f["oracle_track"])
    ]
    metrics = evaluate(ann, oracle).metrics
    best = {v.id: np.zeros(len(by_video.get(v.id, []))) for v in ann.videos}
    for v, f in figures:
        best[v] = np.maximum(best[v], f["ious"])
    ranked = [
        {**p, "score": float(iou)}
        for v, preds in by_video.items()
        for p, iou in zip(preds, best[v], strict=True)
    ]
    ranked_metrics = evaluate(ann, ranked).metrics
    every = load_annotations(root / "annotations" / f"{split}_all.json").by_video()
    roles = [top_track_role(every[v.id], by_video.get(v.id, []), v.length) for v in ann.videos]
    return {
        "frame": _summary([x for _, f in figures for x in f["frames"]]),
        "mask_failures": mask_failures(pairs, every),
        "oracle_track": _summary([f["oracle"] for _, f in figures]),
        "best_track": _summary([f["best"] for _, f in figures]),
        "oracle_metrics": _headline(metrics),
        "ranked_metrics": _headline(ranked_metrics),
        "top_track": {r: round(roles.count(r) / len(roles), 4) for r in (*ROLES, "none")},
    }


def _headline(metrics: dict) -> dict:
    return {k: round(metrics[k], 4) for k in ("AP", "AP50", "AP75", "AR10")}


def _summary(values: list[float]) -> dict:
    v = np.asarray(values, float)
    return {
        "n": len(v),
        "mean": round(float(v.mean()), 4) if len(v) else None,
        "at_0.5": round(float((v >= 0.5).mean()), 4) if len(v) else None,
        "at_0.75": round(float((v >= 0.75).mean()), 4) if len(v) else None,
    }


def role_data(root: Path, frames: Path, split: str, cache: Path, every: dict) -> dict[str, Path]:
    """Preprocessed copies of the split holding only the objects of each role (made once),
    from `every`, the split's `<split>_all.json`."""
    out = {}
    for role in ROLES:
        out[role] = cache / split / role
        if out[role].exists():
            continue
        subset = dict(every, annotations=[a for a in every["annotations"] if a["role"] == role])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{split}_{role}.json"
            path.write_text(json.dumps(subset))
            preprocess(frames, path, out[role], 224, 400, root=root)
    return out


def look_alike_attributes(every: dict) -> dict[int, list[str]]:
    """Video id -> the attribute each of its look-alikes differs in from its target, in file
    order (the order of the `negative` artifact's objects); from a `<split>_all.json`."""
    target = {a["video_id"]: a["product"] for a in every["annotations"] if a["role"] == "target"}
    out: dict[int, list[str]] = {v["id"]: [] for v in every["videos"]}
    for a in every["annotations"]:
        if a["role"] == "negative":
            wanted = target[a["video_id"]]
            out[a["video_id"]].append(next(k for k in ATTRIBUTES if a["product"][k] != wanted[k]))
    return out


def true_box_ious(queries: Tensor, products: Tensor, truth: Tensor) -> dict[str, float]:
    """queries (Q, H, W), products (H, W) (every placed product), truth (H, W), all bool ->
    the IoU with `truth` of the best query, of all queries' union and of `products`, each
    cut to the bounding box of `truth`."""
    rows, cols = truth.any(1).nonzero()[:, 0], truth.any(0).nonzero()[:, 0]
    box = torch.zeros_like(truth)
    box[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] = True

    def iou(masks: Tensor) -> Tensor:
        masks = masks & box
        inter = (masks & truth).flatten(-2).sum(-1)
        return inter / (masks | truth).flatten(-2).sum(-1)

    return {
        "best_query": float(iou(queries).max()),
        "all_queries": float(iou(queries.any(0))),
        "every_product": float(iou(products)),
    }


@torch.no_grad()
def model_figures(checkpoint: Path, data: dict[str, Path], differs: dict[int, list[str]]) -> dict:
    """Query-box IoU per target instance and frame, masks in the true box, the token AUCs."""
    model, _, config = load_model(checkpoint, "cpu")
    # masks as the head makes them, before the dot head's cut to each proposal's own box
    # (boxes, scores and the target map do not depend on it)
    if hasattr(model.mask_head, "windowed"):
        model.mask_head.windowed = False
    sets = {r: ClipDataset(p, config.model, train=False) for r, p in data.items()}
    n = config.model.num_queries
    boxes: dict[str, list[float]] = {name: [] for *_, name in VISIBLE}
    in_box: dict[str, list[float]] = {"best_query": [], "all_queries": [], "every_product": []}
    looks = [f"negative_{a}" for a in ATTRIBUTES]
    tokens: dict[str, list[Tensor]] = {r: [] for r in (*ROLES, "background", *looks)}
    spreads, sizes = [], []
    links = {"all": [0, 0], "on_target": [0, 0]}  # [stayed, links]
    key = None
    for i in range(len(sets["target"])):
        clips = {r: s[i] for r, s in sets.items()}
        clip = clips["target"]
        out = model(clip["video"][None], clip["target"][None])
        spreads.append(query_spread(out["pred_logits"][0], out["pred_boxes"][0]))
        t_len, _, height, width = clip["video"].shape
        scale = torch.tensor([width, height, width, height], dtype=torch.float32)
        predicted = box_convert(out["pred_boxes"][0].view(t_len, n, 4) * scale, "cxcywh", "xyxy")
        largest = clip["masks"].flatten(2).sum(2).amax(1).clamp(min=1)  # (K,)
        masks = F.interpolate(
            out["pred_masks"][0], size=(height, width), mode="bilinear", align_corners=False
        )  # (n, T, H, W) logits
        products = torch.stack([c["masks"].bool().any(0) for c in clips.values()]).any(0)
        placed = torch.cat([clips[r]["masks"].bool() for r in ROLES])  # targets first
        real = int(clip["frame_valid"].sum())
        centres = out["pred_boxes"][0].view(t_len, n, 4)[:real, :, :2]
        for part, (stayed, count) in slot_links(
            centres, placed[:, :real], len(clip["masks"])
        ).items():
            links[part][0] += stayed
            links[part][1] += count
        for k, t in clip["present"].nonzero().tolist():
            if not clip["frame_valid"][t]:
                continue
            truth = box_convert(clip["boxes"][k, t][None] * scale, "cxcywh", "xyxy")
            visible = float(clip["masks"][k, t].sum() / largest[k])
            name = next(name for lo, hi, name in VISIBLE if lo <= visible < hi)
            ious = box_iou(predicted[t], truth)[:, 0]
            boxes[name].append(float(ious.max()))
            best = predicted[t, ious.argmax()]
            sizes.append([*(best[2:] - best[:2]).tolist(), *(truth[0, 2:] - truth[0, :2]).tolist()])
            ious = true_box_ious(masks[:, t] > 0, products[t], clip["masks"][k, t].bool())
            for part, value in ious.items():
                in_box[part].append(value)
        key = key or next((k for k in ("target_logits", "token_logits") if k in out), None)
        if key is None:
            continue
        logits = out[key][0][clip["frame_valid"]]  # (T_real, h, w)
        cover = {
            r: token_coverage(c["masks"], tuple(logits.shape[-2:]))[clip["frame_valid"]]
            for r, c in clips.items()
        }
        for r in ROLES:
            tokens[r].append(logits[cover[r] >= 0.5])
        tokens["background"].append(logits[sum(cover.values()) < 0.1])
        negatives = sets["negative"]
        video = negatives.index["videos"][negatives.items[i][0]]["id"]
        for a, name in zip(ATTRIBUTES, looks, strict=True):
            which = [j for j, x in enumerate(differs[video]) if x == a]
            masks = clips["negative"]["masks"][which]
            part = token_coverage(masks, tuple(logits.shape[-2:]))[clip["frame_valid"]]
            tokens[name].append(logits[part >= 0.5])
    every = [x for v in boxes.values() for x in v]
    figures = {
        "slot_links": {
            k: {"stay": _rounded(stayed / count if count else None), "n": count}
            for k, (stayed, count) in links.items()
        },
        "box": {"all": _summary(every), **{k: _summary(v) for k, v in boxes.items()}},
        "box_size": size_agreement(np.array(sizes)),
        "mask_in_true_box": {k: _summary(v) for k, v in in_box.items()},
        "query_spread": dict(
            zip(("class_logit", "box_log_side"), np.mean(spreads, 0).round(4).tolist(), strict=True)
        ),
    }
    if key is not None:
        scores = {r: torch.cat(v).numpy() for r, v in tokens.items()}
        figures["token_auc"] = {
            "scores": key,
            **{
                f"target_vs_{r}": _rounded(auc(scores["target"], scores[r]))
                for r in scores
                if r != "target"
            },
        }
    return figures


def objects_under(centres: Tensor, objects: Tensor) -> Tensor:
    """centres (T, n, 2) normalised (x, y), objects (K, T, H, W) bool -> (T, n) int64: the first
    object whose mask holds the centre's pixel (centres beyond the frame clamped to its edge),
    -1 for none."""
    k, t, height, width = objects.shape
    x = (centres[..., 0] * width).long().clamp(0, width - 1)
    y = (centres[..., 1] * height).long().clamp(0, height - 1)
    if k == 0:
        return torch.full(x.shape, -1, dtype=torch.int64)
    hit = objects[:, torch.arange(t)[:, None], y, x]  # (K, T, n)
    return torch.where(hit.any(0), hit.float().argmax(0), -1)


def slot_links(centres: Tensor, objects: Tensor, targets: int) -> dict[str, tuple[int, int]]:
    """centres (T, n, 2) of one clip's proposals (slot j of every frame), objects (K, T, H, W)
    bool, the first `targets` of them target instances -> per part ("all", "on_target") the
    links from frame t to t + 1 that stay on their product, and the links on a product in both
    frames."""
    ids = objects_under(centres, objects)  # (T, n)
    both = (ids[:-1] >= 0) & (ids[1:] >= 0)
    stayed = both & (ids[:-1] == ids[1:])
    on_target = both & (ids[:-1] < targets)
    return {
        "all": (int(stayed.sum()), int(both.sum())),
        "on_target": (int((stayed & on_target).sum()), int(on_target.sum())),
    }


def size_agreement(sizes: np.ndarray) -> dict[str, float | None]:
    """(P, 4) rows of predicted width, height and true width, height -> per side the
    correlation of predicted with true and the ratio of their standard deviations."""
    figures: dict[str, float | None] = {}
    for side, (pred, true) in {"w": (0, 2), "h": (1, 3)}.items():
        p, t = sizes[:, pred], sizes[:, true]
        ok = len(p) > 1 and p.std() > 0 and t.std() > 0
        figures[f"corr_{side}"] = _rounded(float(np.corrcoef(p, t)[0, 1])) if ok else None
        figures[f"std_ratio_{side}"] = _rounded(float(p.std() / t.std())) if t.std() > 0 else None
    return figures


def query_spread(logits: Tensor, boxes: Tensor) -> tuple[float, float]:
    """One clip's pred_logits (N, 2) and pred_boxes (N, 4) cxcywh -> the standard deviation
    over its N queries of the logit margin of the relevant class and of ½ log(w·h)."""
    margin = logits[:, RELEVANT] - logits[:, NO_OBJECT]
    side = 0.5 * (boxes[:, 2] * boxes[:, 3]).clamp(min=1e-8).log()
    return float(margin.std()), float(side.std())


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def auc(positives, negatives) -> float | None:
    """P(a positive outranks a negative), ties half (Mann-Whitney U from average ranks)."""
    if not len(positives) or not len(negatives):
        return None
    ranks = rankdata(np.concatenate([positives, negatives]))
    n_pos, n_neg = len(positives), len(negatives)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("predictions", type=Path, help="the checkpoint's predictions of --split")
    parser.add_argument("--root", type=Path, default=Path("data/synthlive"))
    parser.add_argument("--frames", type=Path, default=Path("data/frames"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--cache", type=Path, default=Path("data/ap_breakdown"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ap_breakdown.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    meta = provenance(vars(args), torch_threads=1)
    every = json.loads((args.root / "annotations" / f"{args.split}_all.json").read_text())
    figures = {
        **tracks(args.root, args.split, args.predictions),
        **model_figures(
            args.checkpoint,
            role_data(args.root, args.frames, args.split, args.cache, every),
            look_alike_attributes(every),
        ),
    }
    print(json.dumps(figures, indent=1))
    write_json(args.out, {"meta": finish(meta), **figures}, indent=1)


if __name__ == "__main__":
    main()
