"""Checkpoints: self-describing, weights_only-loadable, strict, and clear errors on bad files."""

import random

import numpy as np
import pytest
import torch

from vois_cli.checkpoint import (
    FORMAT,
    VERSION,
    config_mismatch,
    load_checkpoint,
    load_model,
    resolve_device,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from vois_cli.config import preset
from vois_cli.errors import InputError
from vois_cli.models import build_model


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_a_saved_checkpoint_loads_with_weights_only_and_keeps_every_field(tmp_path):
    path = tmp_path / "last.pt"
    config = preset("tiny")
    layer = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=1e-3)
    layer(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    save_checkpoint(
        path,
        config=config.to_dict(),
        model=layer.state_dict(),
        optimizer=optimizer.state_dict(),
        epoch=1,
        position=4,
        step=7,
        rng=[rng_state()],
    )
    raw = torch.load(path, weights_only=True)
    assert (raw["format"], raw["version"]) == (FORMAT, VERSION) == ("vois-checkpoint", 1)
    ckpt = load_checkpoint(path)
    assert ckpt["config"] == config.to_dict()
    assert (ckpt["epoch"], ckpt["position"], ckpt["step"]) == (1, 4, 7)
    assert torch.equal(ckpt["model"]["weight"], layer.weight)
    assert ckpt["optimizer"]["state"][0]["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_the_same_state_saves_to_the_same_bytes(tmp_path):
    # dvc.lock records each checkpoint's md5: a rerun that trains the same weights matches it
    state = {"config": preset("tiny").to_dict(), "model": {"w": torch.arange(6.0)}}
    save_checkpoint(tmp_path / "a.pt", **state)
    save_checkpoint(tmp_path / "b.pt", **state)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_rng_states_round_trip_through_a_checkpoint(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    _draws()
    save_checkpoint(tmp_path / "c.pt", config=preset("tiny").to_dict(), model={}, rng=[rng_state()])
    expected = _draws()
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"][0])
    assert _draws() == expected


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"not a zip at all", "not a readable torch checkpoint"),
        (None, "not a vois-checkpoint file"),
    ],
)
def test_foreign_or_corrupt_files_are_input_errors_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "bad.pt"
    if content is None:
        torch.save({"model": {"w": torch.zeros(1)}}, path)  # raw weights, no header
    else:
        path.write_bytes(content)
    with pytest.raises(InputError, match=problem) as err:
        load_checkpoint(path)
    assert err.value.path == path


def test_a_truncated_checkpoint_is_an_input_error(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, config=preset("tiny").to_dict(), model={"w": torch.zeros(1000)})
    path.write_bytes(path.read_bytes()[:-300])
    with pytest.raises(InputError, match="not a readable torch checkpoint"):
        load_checkpoint(path)


def test_a_pickled_object_is_refused_by_weights_only(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "version": VERSION, "obj": InputError}, path)
    with pytest.raises(InputError, match="not a readable torch checkpoint"):
        load_checkpoint(path)


def test_missing_file_version_and_fields_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")
    torch.save({"format": FORMAT, "version": 99, "config": {}, "model": {}}, tmp_path / "v.pt")
    with pytest.raises(InputError, match="version 99 is not 1"):
        load_checkpoint(tmp_path / "v.pt")
    torch.save({"format": FORMAT, "version": VERSION, "config": {}}, tmp_path / "m.pt")
    with pytest.raises(InputError, match="lacks model"):
        load_checkpoint(tmp_path / "m.pt")


def test_config_mismatch_names_the_differing_fields():
    tiny = preset("tiny").to_dict()
    assert config_mismatch(tiny, preset("tiny")) == []
    other = preset("tiny", model={"use_target": False}, train={"num_workers": 2, "seed": 3})
    assert config_mismatch(tiny, other, ignore=("train.num_workers",)) == [
        "model.use_target",
        "train.seed",
    ]
    assert "model.preset" in config_mismatch(tiny, preset("small"))


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="unknown device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device("cuda:1")


def test_load_model_rebuilds_the_checkpoint_model_in_eval_mode(tmp_path):
    config = preset("tiny")
    torch.manual_seed(0)
    model, _, _ = build_model(config)
    save_checkpoint(tmp_path / "m.pt", config=config.to_dict(), model=model.state_dict())
    loaded, postprocess, loaded_config = load_model(tmp_path / "m.pt", device="cpu")
    assert loaded_config == config and not loaded.training and callable(postprocess)
    assert all(
        torch.equal(a, b)
        for a, b in zip(loaded.state_dict().values(), model.state_dict().values(), strict=True)
    )


def test_load_model_refuses_weights_that_do_not_fit_the_config(tmp_path):
    model, _, _ = build_model(preset("tiny"))
    state = model.state_dict()
    state.pop(next(iter(state)))
    save_checkpoint(tmp_path / "m.pt", config=preset("tiny").to_dict(), model=state)
    with pytest.raises(InputError, match="weights do not fit the model of its config"):
        load_model(tmp_path / "m.pt", device="cpu")


def test_retired_fields_at_their_off_value_load_and_any_other_value_is_refused(tmp_path):
    # written before frame_attention, score_target_map, lr_mask_head and slot_velocity were removed
    config = preset("tiny")
    model, _, _ = build_model(config)
    old = config.to_dict()
    old["model"] |= {"frame_attention": False, "score_target_map": 0.0, "slot_velocity": 0.0}
    old["train"] |= {"lr_mask_head": 0.0}
    save_checkpoint(tmp_path / "old.pt", config=old, model=model.state_dict())
    assert load_model(tmp_path / "old.pt", device="cpu")[2] == config
    old["model"]["frame_attention"] = True
    save_checkpoint(tmp_path / "on.pt", config=old, model=model.state_dict())
    with pytest.raises(InputError, match="frame_attention = True was removed"):
        load_checkpoint(tmp_path / "on.pt")
