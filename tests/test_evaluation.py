"""`vois_cli.evaluation` reproduces the official YouTube-VIS evaluation (youtubevos/cocoapi).

tests/data/eval/<case>.{gt,pred}.json are reference cases; expected.json holds the official
code's numbers for each (for `empty_predictions`, where the official code crashes, the
numbers of one all-null prediction, which scores the same).
"""

import contextlib
import copy
import importlib
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from vois_cli.data.ytvis import encode_rle, validate_annotations, validate_predictions
from vois_cli.evaluation import METRIC_KEYS, RECALL_THRESHOLDS, evaluate

DATA = Path(__file__).parent / "data" / "eval"
EXPECTED = json.loads((DATA / "expected.json").read_text())


def _rect(h, w, y, x, bh, bw):
    m = np.zeros((h, w), dtype=bool)
    m[max(y, 0) : max(y + bh, 0), max(x, 0) : max(x + bw, 0)] = True
    return m


def random_case(seed: int) -> tuple[dict, list]:
    """A seeded annotation file and prediction list with every corner mixed in: null frames,
    empty masks, crowd, tied scores, several resolutions (small to large areas), videos with
    no objects or no predictions, and now and then more than 100 predictions in a video."""
    rng = np.random.default_rng(seed)
    sizes = [(12, 16), (20, 10), (1, 1), (140, 150), (270, 260)]
    videos, anns, preds = [], [], []
    for vid in range(1, int(rng.integers(3, 8)) + 1):
        h, w = sizes[int(rng.integers(len(sizes)))]
        length = int(rng.integers(1, 6))
        videos.append(
            {"id": vid, "name": f"v{vid}", "width": w, "height": h, "length": length,
             "file_names": [f"v{vid}/{i:05d}.jpg" for i in range(length)]}
        )  # fmt: skip
        tracks = []
        for _ in range(int(rng.integers(0, 4))):
            y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
            bh, bw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
            frames = []
            for _ in range(length):
                r = rng.random()
                if r < 0.2:
                    frames.append(None)
                elif r < 0.25:
                    frames.append(np.zeros((h, w), dtype=bool))
                else:
                    y, x = y + int(rng.integers(-2, 3)), x + int(rng.integers(-2, 3))
                    frames.append(_rect(h, w, y, x, bh, bw))
            tracks.append(frames)
            segs = [None if m is None else encode_rle(m) for m in frames]
            anns.append(
                {"id": len(anns) + 1, "video_id": vid, "category_id": 1,
                 "iscrowd": int(rng.random() < 0.1), "segmentations": segs,
                 "areas": [None if m is None else int(m.sum()) for m in frames],
                 "bboxes": [None] * length}
            )  # fmt: skip
        n_fp = 105 if rng.random() < 0.1 else int(rng.integers(0, 5))
        for frames in tracks + [None] * n_fp:
            if frames is not None and rng.random() < 0.3:
                continue
            segs = []
            for t in range(length):
                if frames is not None and frames[t] is not None and rng.random() < 0.85:
                    m = np.roll(frames[t], (int(rng.integers(-1, 2)), int(rng.integers(-1, 2))))
                elif rng.random() < 0.3:
                    m = None
                else:
                    y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
                    m = _rect(h, w, y, x, int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1)))
                segs.append(None if m is None else encode_rle(m))
            score = (
                float(rng.choice([0.1, 0.3, 0.5, 0.7, 0.9])) if rng.random() < 0.5 else rng.random()
            )
            preds.append({"video_id": vid, "category_id": 1, "score": score, "segmentations": segs})
    order = rng.permutation(len(preds))
    gt = {"videos": videos, "annotations": anns, "categories": [{"id": 1, "name": "relevant"}]}
    return gt, [preds[i] for i in order]


def _score(gt: dict, preds: list):
    annotations = validate_annotations(gt, "gt.json")
    return evaluate(annotations, validate_predictions(preds, "pred.json", annotations))


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_reference_case_matches_the_official_numbers(case):
    gt = json.loads((DATA / f"{case}.gt.json").read_text())
    preds = json.loads((DATA / f"{case}.pred.json").read_text())
    result = _score(gt, preds)
    expected = EXPECTED[case]
    for key in METRIC_KEYS:
        assert result.metrics[key] == pytest.approx(expected["metrics"][key], abs=1e-4), key
    np.testing.assert_allclose(result.precision[0], expected["precision_iou50"], atol=1e-4)
    np.testing.assert_allclose(result.precision.mean(0), expected["precision_mean"], atol=1e-4)


def test_perfect_predictions_score_one_and_areas_without_objects_are_undefined():
    gt = json.loads((DATA / "resolutions.gt.json").read_text())
    preds = [
        {"video_id": a["video_id"], "category_id": 1, "score": 0.9,
         "segmentations": a["segmentations"]}
        for a in gt["annotations"]
    ]  # fmt: skip
    m = _score(gt, preds).metrics
    assert [m[k] for k in ("AP", "AP50", "AP75", "AR1", "AR10", "AR100")] == [1.0] * 6
    assert m["APl"] == -1.0 and m["ARl"] == -1.0  # no object has a mean area ≥ 256²


def test_empty_prediction_list_scores_zero_where_there_is_ground_truth():
    gt = json.loads((DATA / "empty_predictions.gt.json").read_text())
    result = _score(gt, [])
    assert result.metrics["AP"] == 0.0 and result.metrics["AR100"] == 0.0
    assert result.metrics["num_predictions"] == 0
    assert all(v["matched"] == 0 and v["missed"] == v["num_gt"] for v in result.per_video)


def test_per_video_report_gives_best_iou_and_matches_at_iou_half():
    h, w = 10, 10
    obj = _rect(h, w, 0, 0, 4, 5)  # 20 px
    half = _rect(h, w, 0, 0, 4, 3)  # 12 px inside obj: IoU 12/20 over one frame
    gt = {
        "videos": [{"id": 7, "name": "a", "width": w, "height": h, "length": 2,
                    "file_names": ["a/00000.jpg", "a/00001.jpg"]}],
        "annotations": [{"id": 1, "video_id": 7, "category_id": 1, "iscrowd": 0,
                         "segmentations": [encode_rle(obj), None], "areas": [20, None]}],
        "categories": [{"id": 1, "name": "relevant"}],
    }  # fmt: skip
    preds = [
        {"video_id": 7, "category_id": 1, "score": 0.5, "segmentations": [encode_rle(half), None]},
        {"video_id": 7, "category_id": 1, "score": 0.4, "segmentations": [None, encode_rle(obj)]},
    ]
    result = _score(gt, preds)
    (report,) = result.per_video
    assert report["objects"][0]["best_iou"] == pytest.approx(0.6)
    assert (report["matched"], report["missed"], report["unmatched_predictions"]) == (1, 0, 1)
    assert result.metrics["AP50"] == pytest.approx(1.0)
    # IoU 0.6 matches at 0.50, 0.55, 0.60 only: AR100 = 3/10
    assert result.metrics["AR100"] == pytest.approx(0.3)


def test_pr_curve_rows_are_the_official_precision_at_the_101_recall_points():
    gt = json.loads((DATA / "area_ranges.gt.json").read_text())
    preds = json.loads((DATA / "area_ranges.pred.json").read_text())
    curve = _score(gt, preds).pr_curve()
    assert [row["recall"] for row in curve] == pytest.approx(RECALL_THRESHOLDS.tolist())
    expected = EXPECTED["area_ranges"]
    got50 = [row["precision_iou50"] for row in curve]
    assert got50 == pytest.approx(expected["precision_iou50"], abs=1e-4)
    got_mean = [row["precision_mean"] for row in curve]
    assert got_mean == pytest.approx(expected["precision_mean"], abs=1e-4)


def _official(gt: dict, preds: list):
    """Stats and (10, 101) precision from the official code, when VOIS_YTVOS_API names a folder
    with its ytvos.py and ytvoseval.py (imports patched to `from pycocotools import mask`)."""
    folder = os.environ.get("VOIS_YTVOS_API")
    if not folder or not (Path(folder) / "ytvoseval.py").is_file():
        pytest.skip("official youtubevos/cocoapi not importable (set VOIS_YTVOS_API)")
    sys.path.insert(0, folder)
    ytvos, ytvoseval = importlib.import_module("ytvos"), importlib.import_module("ytvoseval")
    with contextlib.redirect_stdout(io.StringIO()):
        api = ytvos.YTVOS()
        api.dataset = copy.deepcopy(gt)
        api.createIndex()
        ev = ytvoseval.YTVOSeval(api, api.loadRes(copy.deepcopy(preds)), "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = dict(zip(METRIC_KEYS, map(float, ev.stats), strict=True))
    return stats, ev.eval["precision"][:, :, 0, 0, 2]  # area all, 100 detections


@pytest.mark.parametrize("seed", range(100, 106))
def test_unseen_random_cases_match_the_official_code(seed):
    gt, preds = random_case(seed)
    if not preds:
        pytest.skip("seed drew no predictions, which the official code cannot load")
    stats, precision = _official(gt, preds)
    result = _score(gt, preds)
    for key in METRIC_KEYS:
        assert result.metrics[key] == pytest.approx(stats[key], abs=1e-4), key
    np.testing.assert_allclose(result.precision, precision, atol=1e-4)
