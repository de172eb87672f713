"""The whole `dvc repro` pipeline on a tiny SynthLive override, in a temp copy of the repo."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


@pytest.mark.slow
def test_dvc_repro_runs_every_stage_and_writes_valid_metrics(tmp_path):
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    for name in ("stages", "vois_cli"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["synth"].update(preset="tiny", workers=1, extra_train=0)
    params["pretrain"].update(preset="tiny", epochs=1, clips_per_video=1, workers=1)
    params["train"].update(epochs=1, clips_per_video=1, device="cpu")
    params["infer"]["device"] = "cpu"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    run = subprocess.run([*dvc, "repro"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for key in METRICS:
        assert metrics[key] == -1 or 0.0 <= metrics[key] <= 1.0, key
    assert metrics["num_videos"] == 2
    curve = json.loads((tmp_path / "runs" / "pr_curve.json").read_text())
    assert len(curve) == 101 and curve[0]["recall"] == 0.0
    # 4 train clips, 1 epoch, one clip a DDP process and step
    steps = 4 // params["train"]["processes"]
    assert steps == 2  # the stages run under torchrun, 2 processes by default
    log = (tmp_path / "runs" / "train" / "train_log.csv").read_text().splitlines()
    assert log[0].startswith("step,epoch,loss") and len(log) == 1 + steps
    pretrain = (tmp_path / "runs" / "pretrain" / "train_log.csv").read_text().splitlines()
    assert len(pretrain) == 1 + steps  # the tiny preset's 4 train clips too

    status = subprocess.run([*dvc, "status"], cwd=tmp_path, capture_output=True, text=True)
    assert "up to date" in status.stdout  # a re-run would do nothing
