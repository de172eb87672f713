"""Training paths the other engine tests do not reach: bf16 autocast (CPU autocast runs it),
the non-finite-loss guard, refusing a mid-epoch resume with another process count, and a
last accumulation group shorter than `accumulate`."""

import math

import pytest
import torch
from test_engine import FAST, Killed, _log, _weights, kill_at, one_thread, one_video_artifact  # noqa: F401

from vois_cli import engine
from vois_cli.config import preset
from vois_cli.engine import train
from vois_cli.errors import InputError


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The tiny SynthLive train split's first video (test_engine's cached artifact)."""
    return one_video_artifact(tmp_path_factory.getbasetemp())


def config(clips=3, model=None, **train_fields):
    """`tiny` at test_engine's FAST size: one epoch of `clips` clips of the one video."""
    train_fields = {"epochs": 1, "lr_drop_epoch": 1, "clips_per_video": clips} | train_fields
    return preset("tiny", model=FAST | (model or {}), train=train_fields)


def _losses(run):
    return [float(row["loss"]) for row in _log(run)]


def test_bf16_autocast_trains_near_the_float32_run_but_not_equal_to_it(data, tmp_path, monkeypatch):
    train(data, tmp_path / "fp32", config(2, bf16=True), device="cpu")  # autocast: CUDA only
    monkeypatch.setattr(engine, "_amp_dtype", lambda device, mixed: torch.bfloat16)  # on CPU too
    train(data, tmp_path / "bf16", config(2, bf16=True), device="cpu")
    fp32, bf16 = _losses(tmp_path / "fp32"), _losses(tmp_path / "bf16")
    assert len(bf16) == len(fp32) == 2 and all(map(math.isfinite, bf16))
    assert bf16[0] != fp32[0]  # the same weights and clip: only the precision differs
    # near, not within 1 %: bf16 can change the Hungarian matching, which moves the box and
    # mask terms (measured 25.9 against 28.6)
    assert bf16[0] == pytest.approx(fp32[0], rel=0.15)
    scaler = torch.load(tmp_path / "bf16" / "last.pt", weights_only=True)["scaler"]
    assert not scaler  # bf16 needs no loss scaling (fp16 would)


def test_a_non_finite_loss_stops_before_the_optimizer_step(data, tmp_path):
    run = tmp_path / "nan"
    with pytest.raises(FloatingPointError, match="loss is nan at step 1"):
        train(data, run, config(model={"loss_giou": float("nan")}), device="cpu")
    assert not (run / "last.pt").exists()
    assert not (run / "train_log.csv").is_file() or not _log(run)


def test_a_mid_epoch_checkpoint_resumes_only_with_the_process_count_that_wrote_it(data, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(Killed):  # killed after step 2, so last.pt is step 1's, mid-epoch
        train(data, run, config(2), device="cpu", checkpoint_every=1, progress=kill_at(2))
    state = torch.load(run / "last.pt", weights_only=True)
    assert (state["epoch"], state["position"], state["world_size"]) == (0, 1, 1)
    torch.save(state | {"world_size": 2}, run / "last.pt")
    rows = _log(run)
    with pytest.raises(InputError, match="written mid-epoch by 2 processes, not 1"):
        train(data, run, config(2), resume=True, device="cpu")
    assert _log(run) == rows  # refused before anything was touched
    finished = tmp_path / "finished"  # at an epoch boundary any count may resume
    train(data, finished, config(2), device="cpu")
    state = torch.load(finished / "last.pt", weights_only=True)
    torch.save(state | {"world_size": 2}, finished / "last.pt")
    assert train(data, finished, config(2), resume=True, device="cpu")["steps"] == 2


def test_a_short_last_accumulation_group_is_a_step_of_its_own_weighted_by_its_size(data, tmp_path):
    train(data, tmp_path / "groups", config(clips=4, accumulate=3), device="cpu")
    assert [row["step"] for row in _log(tmp_path / "groups")] == ["1", "2"]  # 3 clips, then 1
    # 3 clips with accumulate 4 are one group of 3: the same step as accumulate 3
    train(data, tmp_path / "four", config(accumulate=4), device="cpu")
    train(data, tmp_path / "three", config(accumulate=3), device="cpu")
    assert _log(tmp_path / "four") == _log(tmp_path / "three") and len(_log(tmp_path / "four")) == 1
    four, three = _weights(tmp_path / "four"), _weights(tmp_path / "three")
    assert all(torch.equal(four[k], three[k]) for k in three)
