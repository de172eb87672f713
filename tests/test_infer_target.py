"""The target image at inference: `vois preprocess`'s minimum side holds for `vois infer` too
(exit 2, one line naming the file and the fix, nothing written), and pixels that NumPy holds
read-only (decoded frames, PIL images) reach torch without a library warning."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from vois_cli.checkpoint import save_checkpoint
from vois_cli.cli import main
from vois_cli.config import preset
from vois_cli.data.preprocess import MIN_TARGET_SIDE, _target
from vois_cli.data.video import VideoWriter
from vois_cli.errors import InputError
from vois_cli.models import build_model


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """(checkpoint, video): seed-0 `tiny` weights and 8 grey 5 fps frames."""
    root = tmp_path_factory.mktemp("target")
    torch.manual_seed(0)
    config = preset("tiny")
    model, _, _ = build_model(config)
    save_checkpoint(root / "tiny.pt", config=config.to_dict(), model=model.state_dict())
    with VideoWriter(root / "v.mp4", 64, 48, 5) as writer:
        for f in range(8):
            writer.write(np.full((48, 64, 3), 40 + 10 * f, np.uint8))
    return root / "tiny.pt", root / "v.mp4"


def infer(monkeypatch, capsys, *args) -> tuple[int, str]:
    """(exit code, stderr) of `vois infer *args`, in-process."""
    monkeypatch.setattr(sys, "argv", ["vois", "infer", *map(str, args)])
    with pytest.raises(SystemExit) as exit_:
        main()
    return exit_.value.code, capsys.readouterr().err


@pytest.mark.parametrize("size", [(1, 1), (MIN_TARGET_SIDE - 1, 40), (40, MIN_TARGET_SIDE - 1)])
def test_a_target_under_the_minimum_side_is_refused_as_preprocess_refuses_it(
    inputs, tmp_path, monkeypatch, capsys, size
):
    ckpt, video = inputs
    target = tmp_path / "tiny-target.png"
    Image.new("RGB", size, (220, 30, 30)).save(target)
    with pytest.raises(InputError) as refused:
        _target(target, 224, None)  # the rule of `vois preprocess`
    out = tmp_path / "out"
    code, err = infer(
        monkeypatch, capsys, video, "--target", target, "--checkpoint", ckpt, "--out",
        out / "p.json", "--overlay", out / "o.mp4", "--masks", out / "m",
    )  # fmt: skip
    assert code == 2 and err == f"vois: error: {refused.value}\n"
    assert f"at least {MIN_TARGET_SIDE}x{MIN_TARGET_SIDE}" in err and str(target) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-target.png"]


def test_a_target_at_the_minimum_side_runs_without_any_warning(
    inputs, tmp_path, monkeypatch, capsys
):
    ckpt, video = inputs
    target = tmp_path / "t.png"
    Image.new("RGB", (MIN_TARGET_SIDE, MIN_TARGET_SIDE), (220, 30, 30)).save(target)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, err = infer(
            monkeypatch, capsys, video, "--target", target, "--checkpoint", ckpt, "--out",
            tmp_path / "p.json", "--overlay", tmp_path / "o.mp4",
        )  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "p.json").is_file() and (tmp_path / "o.mp4").is_file()


def test_read_only_pixels_reach_torch_without_a_warning():
    # torch warns once per process, so a fresh one; a 1x1 image is contiguous after the
    # channel transpose, so no copy used to be made of the read-only pixels
    code = """if True:
        import numpy as np, torch
        from PIL import Image
        from vois_cli.data.transforms import (
            IMAGENET_MEAN, IMAGENET_STD, Geometry, augment_target, to_model_input)
        pixel = np.asarray(Image.new("RGB", (1, 1), (200, 100, 50)))
        x = to_model_input(pixel[None], (2, 2), Geometry.identity(1, 1))
        target = augment_target(pixel, 4, None, None)
        assert x.shape == (1, 3, 2, 2) and target.shape == (3, 4, 4)
        want = (torch.tensor([200, 100, 50]) / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(
            IMAGENET_STD)
        assert torch.allclose(x[0, :, 0, 0], want) and not pixel.flags.writeable
    """
    run = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True
    )
    assert run.returncode == 0 and not run.stderr, run.stderr
