"""The pipeline stages' config from params.yaml: `train.epochs` moves the lr drop with it."""

import copy
import importlib.util
from pathlib import Path

import pytest

from vois_cli.config import preset
from vois_cli.engine import with_epochs

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def stage_params():
    spec = importlib.util.spec_from_file_location("stage_params", REPO / "stages" / "params.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stage_configs(stage_params, train_epochs: int, pretrain_epochs: int):
    """The configs stages/pretrain.py and stages/train.py build from these epochs."""
    params = copy.deepcopy(stage_params.PARAMS)
    params["train"]["epochs"], params["pretrain"]["epochs"] = train_epochs, pretrain_epochs
    stage_params.PARAMS = params
    p = params["pretrain"]
    pretrain = stage_params.config_from_params(seed=p["seed"], clips_per_video=p["clips_per_video"])
    return with_epochs(pretrain, pretrain_epochs), with_epochs(
        stage_params.config_from_params(), train_epochs
    )


def test_lr_drops_at_two_thirds_of_any_number_of_epochs(stage_params):
    tiny = preset(stage_params.PARAMS["model"]["preset"]).train
    assert (tiny.epochs, tiny.lr_drop_epoch) == (12, 8)
    pretrain, train = stage_configs(stage_params, train_epochs=36, pretrain_epochs=12)
    assert (train.train.epochs, train.train.lr_drop_epoch) == (36, 24)
    assert (pretrain.train.epochs, pretrain.train.lr_drop_epoch) == (12, 8)


def test_default_epochs_give_the_preset_schedule(stage_params):
    pretrain, train = stage_configs(stage_params, train_epochs=12, pretrain_epochs=4)
    assert (train.train.epochs, train.train.lr_drop_epoch) == (12, 8)
    assert (pretrain.train.epochs, pretrain.train.lr_drop_epoch) == (4, 3)
    assert train.train.clips_per_video == stage_params.PARAMS["train"]["clips_per_video"]
