"""`vois eval` end to end: outputs, the --min-ap gate, and every bad input (exit 2, one line)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vois_cli.cli import main

DATA = Path(__file__).parent / "data" / "eval"
EXPECTED = json.loads((DATA / "expected.json").read_text())
GT = DATA / "area_ranges.gt.json"
PRED = DATA / "area_ranges.pred.json"


def _vois(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """Run `vois ARGS` in-process through main() (which turns InputError into exit 2)."""
    monkeypatch.setattr(sys, "argv", ["vois", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (0 if code is None else code), captured.out, captured.err


def test_eval_writes_flat_metrics_equal_to_the_official_numbers(tmp_path):
    out, per_video, curve = (
        tmp_path / "m" / "metrics.json",
        tmp_path / "pv.json",
        tmp_path / "pr.json",
    )
    run = subprocess.run(
        [sys.executable, "-m", "vois_cli", "eval", "--gt", GT, "--pred", PRED, "--out", out,
         "--per-video", per_video, "--pr-curve", curve],
        capture_output=True, text=True, env={**os.environ, "CI": "1"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    metrics = json.loads(out.read_text())
    for key, value in EXPECTED["area_ranges"]["metrics"].items():
        assert metrics[key] == pytest.approx(value, abs=1e-4)
    assert (metrics["num_videos"], metrics["num_gt"], metrics["num_predictions"]) == (4, 4, 6)
    assert "AP=0.4558" in run.stdout
    videos = json.loads(per_video.read_text())
    assert [v["video_id"] for v in videos] == [1, 2, 3, 4]
    assert set(videos[0]) >= {"name", "num_gt", "matched", "missed", "objects"}
    assert videos[0]["objects"][0]["best_iou"] == pytest.approx(1.0)
    rows = json.loads(curve.read_text())
    assert len(rows) == 101 and rows[0]["recall"] == 0.0


def test_min_ap_gate_exits_1_below_and_0_at_or_above(monkeypatch, capsys, tmp_path):
    ap = EXPECTED["area_ranges"]["metrics"]["AP"]
    args = ("eval", "--gt", GT, "--pred", PRED, "--out", tmp_path / "m.json")
    code, _, err = _vois(monkeypatch, capsys, *args, "--min-ap", ap + 0.01)
    assert code == 1 and "below --min-ap" in err
    assert (tmp_path / "m.json").is_file()  # the metrics are still written
    code, _, _ = _vois(monkeypatch, capsys, *args, "--min-ap", ap - 0.01)
    assert code == 0


def test_empty_prediction_list_is_valid_and_scores_zero(monkeypatch, capsys, tmp_path):
    pred = tmp_path / "pred.json"
    pred.write_text("[]")
    gt = DATA / "empty_predictions.gt.json"
    code, _, _ = _vois(
        monkeypatch, capsys, "eval", "--gt", gt, "--pred", pred, "--out", tmp_path / "m.json"
    )
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert code == 0 and metrics["AP"] == 0.0 and metrics["AR100"] == 0.0 and metrics["APl"] == -1.0


def _good_preds() -> list:
    return json.loads(PRED.read_text())


def _bad(preds_edit):
    preds = _good_preds()
    preds_edit(preds)
    return json.dumps(preds)


BAD_PREDICTIONS = {
    "not_json": ("{video_id: 1", "is not valid JSON", "give a JSON file"),
    "wrong_shape": ('{"video_id": 1}', "top level is not a list", "give a JSON list"),
    "item_not_object": ("[1, 2]", "prediction 0 is not an object", "give {video_id"),
    "unknown_video": (
        _bad(lambda p: p[2].update(video_id=99)),
        "prediction 2: video_id 99 is not in the annotation file",
        "predict only for the annotation file's videos",
    ),
    "wrong_length": (
        _bad(lambda p: p[1]["segmentations"].pop()),
        "prediction 1: 2 segmentations but video 2 has 3 frames",
        "give one RLE or null per annotated frame",
    ),
    "rle_wrong_size": (
        _bad(lambda p: p[1]["segmentations"][1].update(size=[300, 299])),
        "prediction 1 frame 1: RLE size [300, 299] is not the video's [height, width] [300, 300]",
        "encode masks at the video's original size",
    ),
    "score_nan": (_bad(lambda p: p[3].update(score=math.nan)), "score nan", "[0, inf)"),
    "score_inf": (_bad(lambda p: p[3].update(score=math.inf)), "score inf", "[0, inf)"),
    "score_negative": (_bad(lambda p: p[3].update(score=-0.5)), "score -0.5", "[0, inf)"),
    "category_not_1": (
        _bad(lambda p: p[4].update(category_id=2)),
        "prediction 4: category_id is 2, not 1",
        "use the one category 1",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_PREDICTIONS))
def test_bad_prediction_file_is_one_line_exit_2_and_no_output(monkeypatch, capsys, tmp_path, case):
    text, problem, fix = BAD_PREDICTIONS[case]
    pred, out, per_video = tmp_path / "pred.json", tmp_path / "metrics.json", tmp_path / "pv.json"
    pred.write_text(text)
    code, stdout, err = _vois(
        monkeypatch,
        capsys,
        "eval",
        "--gt",
        GT,
        "--pred",
        pred,
        "--out",
        out,
        "--per-video",
        per_video,
    )
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"vois: error: {pred}: ")
    assert problem in err and fix in err
    assert not out.exists() and not per_video.exists()
    assert list(tmp_path.iterdir()) == [pred]  # no temp file left behind either


BAD_ANNOTATIONS = {
    "missing": (None, "file not found", "check the path"),
    "not_json": ("not json", "is not valid JSON", "give a JSON file"),
    "wrong_shape": ("[]", "top level is not an object", "give a YouTube-VIS file"),
    "no_videos": ('{"annotations": [], "categories": []}', "has no 'videos' list", "add 'videos'"),
}


@pytest.mark.parametrize("case", sorted(BAD_ANNOTATIONS))
def test_bad_annotation_file_is_one_line_exit_2_and_no_output(monkeypatch, capsys, tmp_path, case):
    text, problem, fix = BAD_ANNOTATIONS[case]
    gt, out = tmp_path / "gt.json", tmp_path / "metrics.json"
    if text is not None:
        gt.write_text(text)
    code, _, err = _vois(monkeypatch, capsys, "eval", "--gt", gt, "--pred", PRED, "--out", out)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"vois: error: {gt}: ")
    assert problem in err and fix in err
    assert not out.exists()


def test_bad_input_leaves_an_existing_output_untouched(monkeypatch, capsys, tmp_path):
    pred, out = tmp_path / "pred.json", tmp_path / "metrics.json"
    pred.write_text(BAD_PREDICTIONS["score_nan"][0])
    out.write_text('{"AP": 0.5}')
    code, _, _ = _vois(monkeypatch, capsys, "eval", "--gt", GT, "--pred", pred, "--out", out)
    assert code == 2 and out.read_text() == '{"AP": 0.5}'


def test_missing_pred_option_is_a_usage_error_naming_the_fix(monkeypatch, capsys, tmp_path):
    code, _, err = _vois(monkeypatch, capsys, "eval", "--gt", GT, "--out", tmp_path / "m.json")
    assert (
        code == 2 and err == "vois: error: --pred is missing; pass --gt ANN.json --pred PRED.json\n"
    )
