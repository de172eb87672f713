"""`vois train` on bad input: one line naming the file, exit 2, nothing created or overwritten."""

import subprocess
import sys

import pytest
import torch
from timm.models.swin_transformer import SwinTransformer
from typer.testing import CliRunner

from vois_cli.checkpoint import save_checkpoint
from vois_cli.cli import app
from vois_cli.config import preset
from vois_cli.errors import InputError


@pytest.fixture
def dirs(tmp_path):
    """A non-empty (but not preprocessed) data folder and a run folder that does not exist yet."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text("not an artifact")
    return data, tmp_path / "run"


def _error(*args) -> InputError:
    """Run `vois train` in process; the InputError that main() would print."""
    result = CliRunner().invoke(app, ["train", *map(str, args)])
    assert isinstance(result.exception, InputError), result.output
    return result.exception


def _tiny_run(run):
    """A run folder holding a `tiny` checkpoint; returns its bytes."""
    save_checkpoint(run / "last.pt", config=preset("tiny").to_dict(), model={})
    return (run / "last.pt").read_bytes()


def test_missing_data_dir_is_one_line_and_exit_2_and_creates_nothing(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "vois_cli",
            "train",
            "--data",
            str(tmp_path / "none"),
            "--out",
            str(tmp_path / "run"),
            "--preset",
            "tiny",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        f"vois: error: {tmp_path / 'none'}: missing or empty data directory; "
        "pass the output folder of `vois preprocess`"
    ]
    assert not (tmp_path / "run").exists()


def test_empty_data_dir(tmp_path):
    (tmp_path / "empty").mkdir()
    err = _error("--data", tmp_path / "empty", "--out", tmp_path / "run", "--preset", "tiny")
    assert (err.path, err.problem) == (tmp_path / "empty", "missing or empty data directory")
    assert not (tmp_path / "run").exists()


def test_a_folder_that_is_not_a_preprocessed_artifact(dirs):
    data, run = dirs
    err = _error("--data", data, "--out", run, "--preset", "tiny")
    assert err.problem == "has no index.json"
    assert not run.exists()


def test_unwritable_out_dir(dirs, tmp_path):
    data, _ = dirs
    (tmp_path / "file").write_text("x")
    err = _error("--data", data, "--out", tmp_path / "file" / "run", "--preset", "tiny")
    assert err.path == tmp_path / "file" / "run"
    assert "cannot create or write the run directory" in err.problem


def test_an_existing_run_is_not_overwritten_without_resume(dirs):
    data, run = dirs
    before = _tiny_run(run)
    err = _error("--data", data, "--out", run, "--preset", "tiny")
    assert (err.path, err.problem) == (run / "last.pt", "a run already exists here")
    assert (run / "last.pt").read_bytes() == before


def test_resume_needs_a_checkpoint(dirs):
    data, run = dirs
    err = _error("--data", data, "--out", run, "--preset", "tiny", "--resume")
    assert err.problem == "no checkpoint to resume from"


def test_resume_with_another_preset_names_the_checkpoint_preset(dirs):
    data, run = dirs
    before = _tiny_run(run)
    err = _error("--data", data, "--out", run, "--preset", "small", "--resume")
    assert err.path == run / "last.pt"
    assert err.problem.startswith("was trained with another configuration (preset tiny; differs in")
    assert "model.embed_dim" in err.problem
    assert (run / "last.pt").read_bytes() == before


def test_resume_with_other_epochs_is_a_mismatch(dirs):
    data, run = dirs
    _tiny_run(run)
    err = _error("--data", data, "--out", run, "--preset", "tiny", "--epochs", "3", "--resume")
    assert "train.epochs, train.lr_drop_epoch" in err.problem


def test_resume_from_a_corrupt_checkpoint(dirs):
    data, run = dirs
    run.mkdir()
    (run / "last.pt").write_bytes(b"\x00" * 64)
    err = _error("--data", data, "--out", run, "--preset", "tiny", "--resume")
    assert err.problem.startswith("not a readable torch checkpoint")


def test_pretrained_weights_cannot_be_combined_with_resume(dirs, tmp_path):
    data, run = dirs
    _tiny_run(run)
    err = _error(
        "--data",
        data,
        "--out",
        run,
        "--preset",
        "tiny",
        "--resume",
        "--pretrained-image",
        tmp_path / "swin.pth",
    )
    assert err.problem == "pretrained weights only initialise a fresh run"


@pytest.mark.parametrize("option", ["--pretrained-image", "--pretrained-video"])
def test_pretrained_files_of_another_architecture(dirs, tmp_path, option):
    data, run = dirs
    torch.save(torch.nn.Linear(4, 2).state_dict(), tmp_path / "linear.pth")
    err = _error("--data", data, "--out", run, "--preset", "tiny", option, tmp_path / "linear.pth")
    assert err.path == tmp_path / "linear.pth"
    assert err.problem.startswith("not a 2D Swin checkpoint")
    wide = SwinTransformer(
        img_size=96,
        embed_dim=32,
        depths=(1, 1, 2, 1),
        num_heads=(1, 2, 4, 8),
        window_size=3,
        num_classes=0,
    )
    torch.save(wide.state_dict(), tmp_path / "swin32.pth")
    err = _error("--data", data, "--out", run, "--preset", "tiny", option, tmp_path / "swin32.pth")
    assert err.problem.startswith("does not fit this model's Swin")
    assert "patch_embed.proj.weight (32, 3, " in err.problem
    assert not run.exists()


def test_unknown_preset_and_device(dirs):
    data, run = dirs
    assert (
        "unknown preset 'huge'" in _error("--data", data, "--out", run, "--preset", "huge").problem
    )
    err = _error("--data", data, "--out", run, "--preset", "tiny", "--device", "tpu")
    assert err.problem == "unknown device 'tpu'"


def test_pretrained_image_weights_need_an_image_path(dirs, tmp_path):
    data, run = dirs
    torch.save({}, tmp_path / "swin.pth")
    args = ["--data", data, "--out", run, "--preset", "tiny", "--set", "model.use_target=false"]
    err = _error(*args, "--pretrained-image", tmp_path / "swin.pth")
    assert (err.path, err.problem) == (
        tmp_path / "swin.pth",
        "this model has no Swin image path (no target or vistr_r50)",
    )


def test_bad_config_overrides(dirs):
    data, run = dirs
    err = _error("--data", data, "--out", run, "--preset", "tiny", "--set", "model.nope=1")
    assert err.problem == "bad --set override (unknown ModelConfig fields: nope)"
    err = _error("--data", data, "--out", run, "--preset", "tiny", "--set", "epochs=3")
    assert err.problem == "bad --set 'epochs=3'"
    err = _error("--data", data, "--out", run, "--preset", "tiny", "--set", "train.lr=fast")
    assert err.problem == "bad --set override (TrainConfig.lr = 'fast' is not a number)"
    assert not run.exists()
