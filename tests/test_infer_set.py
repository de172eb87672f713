"""`vois infer --set model.F=V`: a field training never reads takes another value for one run."""

import json

import pytest
from PIL import Image
from test_cli_infer import Stop, _live_videos, clip, stop_after_first, vois

from vois_cli.checkpoint import load_checkpoint, load_model, save_checkpoint
from vois_cli.errors import InputError
from vois_cli.infer_files import infer_split, partial_path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_checkpoint):
    """The tiny checkpoint (`mask_guide` 6), a copy saved with `mask_guide` 0, a video, a target."""
    root = tmp_path_factory.mktemp("infer_set")
    saved = load_checkpoint(tiny_checkpoint)
    saved["config"]["model"]["mask_guide"] = 0.0
    copy = root / "unguided.pt"
    save_checkpoint(copy, config=saved["config"], model=saved["model"])
    Image.new("RGB", (40, 60), (220, 30, 30)).save(root / "target.png")
    return tiny_checkpoint, copy, clip(root / "v.mp4"), root / "target.png"


def test_set_gives_what_a_checkpoint_saved_with_the_value_gives(
    inputs, tmp_path, monkeypatch, capsys
):
    ckpt, copy, video, target = inputs
    runs = {
        "own": ["--checkpoint", ckpt],
        "set": ["--checkpoint", ckpt, "--set", "model.mask_guide=0"],
        "copy": ["--checkpoint", copy],
    }
    results = {}
    for name, args in runs.items():
        out = tmp_path / f"{name}.json"
        code, _, _ = vois(monkeypatch, capsys, "infer", video, "--target", target, *args,
                          "--out", out)  # fmt: skip
        assert code == 0
        results[name] = json.loads(out.read_text())
    assert results["set"] == results["copy"] != results["own"]
    _, _, config = load_model(ckpt, "cpu", {"mask_guide": 0})
    assert config.model.mask_guide == 0.0 and load_model(ckpt, "cpu")[2].model.mask_guide == 6.0


@pytest.mark.parametrize(
    "item, says",
    [
        ("model.embed_dim=64", "model.embed_dim is not an inference field"),
        ("train.lr=1", "--set train.* does not apply to inference"),
        ("model.mask_guide=abc", "mask_guide = 'abc' is not a number"),
        ("mask_guide=0", "bad --set 'mask_guide=0'"),
    ],
)
def test_a_field_it_cannot_set_is_one_line_exit_2_and_no_output(
    inputs, tmp_path, monkeypatch, capsys, item, says
):
    ckpt, _, video, target = inputs
    out = tmp_path / "p.json"
    code, _, err = vois(monkeypatch, capsys, "infer", video, "--target", target,
                        "--checkpoint", ckpt, "--out", out, "--set", item)  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and says in err
    assert list(tmp_path.iterdir()) == []


def test_a_split_resumes_only_with_the_same_set(inputs, tmp_path):
    ckpt = inputs[0]
    root = _live_videos(tmp_path / "data")
    out = tmp_path / "p.json"
    with pytest.raises(Stop):
        infer_split(root, "test", ckpt, out, "cpu", stop_after_first, {"mask_guide": 0})
    with pytest.raises(InputError, match="another checkpoint, split or --set"):
        infer_split(root, "test", ckpt, out, "cpu")
    resumed = infer_split(root, "test", ckpt, out, "cpu", None, {"mask_guide": 0})
    fresh = infer_split(root, "test", ckpt, tmp_path / "q.json", "cpu", None, {"mask_guide": 0})
    assert resumed == fresh and not partial_path(out).exists()


def test_eval_data_takes_set_as_infer_does(inputs, tmp_path, monkeypatch, capsys):
    ckpt = inputs[0]
    root = _live_videos(tmp_path / "data")
    code, _, _ = vois(monkeypatch, capsys, "eval", "--data", root, "--checkpoint", ckpt,
                      "--out", tmp_path / "m.json", "--set", "model.mask_guide=0")  # fmt: skip
    assert code == 0
    expected = infer_split(root, "test", ckpt, tmp_path / "q.json", "cpu", None, {"mask_guide": 0})
    own = infer_split(root, "test", ckpt, tmp_path / "r.json", "cpu")
    assert json.loads((tmp_path / "predictions.json").read_text()) == expected != own


def test_eval_set_without_data_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    gt = tmp_path / "gt.json"
    code, _, err = vois(monkeypatch, capsys, "eval", "--gt", gt, "--pred", gt, "--out",
                        tmp_path / "m.json", "--set", "model.mask_guide=0")  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "--set applies to --data only" in err
    assert list(tmp_path.iterdir()) == []
