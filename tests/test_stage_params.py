"""The pipeline stages' config from params.yaml: `train.epochs` moves the lr drop with it, and
the fine-tuning's own keys leave pretraining alone."""

import copy

from vois_cli.config import preset
from vois_cli.engine import with_epochs


def stage_configs(stage_params, train_epochs: int, pretrain_epochs: int):
    """The configs stages/pretrain.py and stages/train.py build from these epochs."""
    params = copy.deepcopy(stage_params.PARAMS)
    params["train"]["epochs"], params["pretrain"]["epochs"] = train_epochs, pretrain_epochs
    stage_params.PARAMS = params
    pretrain = stage_params.config_from_params(pretrain=True)
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


def test_the_fine_tunings_rates_and_schedule_leave_pretraining_at_the_presets(stage_params):
    pretrain, train = stage_configs(stage_params, train_epochs=6, pretrain_epochs=4)
    tiny = preset(stage_params.PARAMS["model"]["preset"]).train
    run = stage_params.PARAMS["train"]
    assert (train.train.lr, train.train.lr_backbone) == (run["lr"], run["lr_backbone"])
    assert train.train.lr_schedule == run["lr_schedule"]
    assert (pretrain.train.lr, pretrain.train.lr_backbone) == (tiny.lr, tiny.lr_backbone)
    assert pretrain.train.lr_schedule == tiny.lr_schedule == "step"
    p = stage_params.PARAMS["pretrain"]
    assert pretrain.train.seed == p["seed"]
    assert pretrain.train.clips_per_video == p["clips_per_video"]
