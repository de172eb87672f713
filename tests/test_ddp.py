"""DDP by torchrun: 2 gloo processes x 1 clip == 1 process accumulating 2 clips per step, and
the same bits on a second run (the committed dvc.lock's training stages run this way)."""

import os
import subprocess
import sys

import pytest
import torch
from test_engine import FAST, _log, _weights, one_thread, one_video_artifact  # noqa: F401

from vois_cli.config import preset
from vois_cli.data.dataset import ClipDataset
from vois_cli.engine import train, with_epochs


@pytest.mark.slow
def test_two_processes_with_one_clip_each_equal_one_process_accumulating_two(
    tmp_path_factory, tmp_path
):
    # the criterion normalises by objects x T averaged over ranks (DETR), accumulation by each
    # clip's own count: the two agree when the clips carry as many objects, so pick such a video
    train_fields = {"clips_per_video": 4}
    config = with_epochs(preset("tiny", model=FAST, train=train_fields), 1)
    base = tmp_path_factory.getbasetemp()
    videos = (one_video_artifact(base, position) for position in range(4))
    data = next(d for d in videos if _equal_objects(d, config))

    sets = [f"model.{k}={v}" for k, v in FAST.items()] + ["train.clips_per_video=4"]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "vois_cli",
        "train",
        "--data",
        str(data),
        "--preset",
        "tiny",
        "--epochs",
        "1",
        "--device",
        "cpu",
    ]
    command += [a for s in sets for a in ("--set", s)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for out in ("ddp", "ddp_again"):
        run = subprocess.run(
            [*command, "--out", str(tmp_path / out)],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        assert "trained 1 epochs, 2 steps on 2 process(es)" in run.stdout

    accumulated = with_epochs(
        preset("tiny", model=FAST, train={**train_fields, "accumulate": 2}), 1
    )
    summary = train(data, tmp_path / "single", accumulated, device="cpu")
    assert summary["steps"] == 2

    ckpt = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    assert (ckpt["world_size"], len(ckpt["rng"]), ckpt["step"]) == (2, 2, 2)
    ddp, single = _weights(tmp_path / "ddp"), _weights(tmp_path / "single")
    again = _weights(tmp_path / "ddp_again")
    assert all(torch.equal(w, again[k]) for k, w in ddp.items())  # the same bits again
    assert list(ddp) == list(single)
    worst = max((ddp[k].float() - single[k].float()).abs().max().item() for k in single)
    assert worst < 1e-5, worst
    ddp_log, single_log = _log(tmp_path / "ddp"), _log(tmp_path / "single")
    assert [r["step"] for r in ddp_log] == ["1", "2"]  # rank 0 alone writes the log
    for a, b in zip(ddp_log, single_log, strict=True):
        assert abs(float(a["loss"]) - float(b["loss"])) < 1e-4 * float(b["loss"])


def _equal_objects(data, config):
    """Whether the artifact's 4 clips of epoch 0 carry the same number (≥ 1) of objects."""
    dataset = ClipDataset(data, config.model, clips_per_video=4)
    counts = {dataset[i]["present"].shape[0] for i in range(4)}
    return len(counts) == 1 and 0 not in counts
