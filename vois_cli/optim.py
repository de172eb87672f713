"""A training run's optimization: AdamW over the model's parameter groups and its lr schedule."""

from __future__ import annotations

import math

import torch

from vois_cli.config import Config, TrainConfig
from vois_cli.models import parameter_groups


def build_optimizer(model: torch.nn.Module, config: Config) -> torch.optim.AdamW:
    """AdamW over the model's named parameter groups (`parameter_groups`)."""
    t = config.train
    return torch.optim.AdamW(
        parameter_groups(model, config.model, t), lr=t.lr, weight_decay=t.weight_decay
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer, train: TrainConfig, steps_per_epoch: int, done: int = 0
) -> torch.optim.lr_scheduler.LambdaLR:
    """The schedule of `train.lr_schedule`, stepped after every optimizer step, `done` steps in.

    `step` (the paper's) drops the rates ÷10 once, after `lr_drop_epoch` epochs; `cosine`
    decays them to 0 over the run's `epochs × steps_per_epoch` steps (step k, from 0, at
    1/2 (1 + cos(pi k / steps)) of each rate). The rates are a function of the steps done
    alone, so a resumed run rebuilds its schedule rather than loading one: at an epoch
    boundary another process count (other steps per epoch) keeps the schedule in epochs.
    With `done` > 0 the optimizer must hold its run's state (each group's `initial_lr`).
    """
    steps, drop = train.epochs * steps_per_epoch, train.lr_drop_epoch * steps_per_epoch

    def factor(k: int) -> float:
        if train.lr_schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * (k / steps)))
        return 0.1 if k >= drop else 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor, last_epoch=done - 1)
