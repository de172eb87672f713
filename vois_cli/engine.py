"""The training loop: one code path for CPU, one GPU and DDP under torchrun (paper §6.1).

Each process takes one clip per micro-step (the paper's batch of 1 per GPU); gradients of
`accumulate` micro-steps on each of the `world_size` processes make one optimizer step, so
the effective batch is `world_size * accumulate` clips (the paper: 32 x 1). AdamW with the
model's two parameter groups, gradient clipping, and the lr ÷10 once after
`train.lr_drop_epoch` epochs; `with_epochs` rescales that drop when the epoch count changes
(`train.lr_schedule` cosine instead decays the rates to 0; both in `vois_cli.optim`).
The criterion normalises box and mask terms by objects × T averaged over DDP ranks (DETR),
while accumulated clips are each normalised by their own count: DDP and accumulation give the
same step when the clips carry as many objects, and nearly the same otherwise.

Run directory (`out_dir`), written by rank 0 only:

- `last.pt`: the checkpoint (`vois_cli.checkpoint`), after every epoch and every
  `checkpoint_every` optimizer steps;
- `train_log.csv`: one row per optimizer step with `step`, `epoch` (1-based), `loss`, every
  weighted loss term and `lr_<group name>` (`lr_backbone`, `lr_rest`): a `dvc plots` CSV
  with x = `step`.

Resuming reloads `last.pt` (weights, optimizer, scaler, RNG states, sampler position; the
schedule is rebuilt from the position) and drops log rows past its step, so that an
interrupted run finishes with the same weights as an uninterrupted one (bit-identical on CPU).
Seeds derive from (seed, rank, epoch); the dataset's augmentation from (seed, epoch, index).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from vois_cli.checkpoint import (
    config_mismatch,
    load_checkpoint,
    load_pretrained,
    load_weights,
    resolve_device,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from vois_cli.config import Config
from vois_cli.data.dataset import ClipDataset
from vois_cli.errors import InputError
from vois_cli.models import build_model
from vois_cli.optim import build_optimizer, build_scheduler
from vois_cli.step_log import StepLog

log = logging.getLogger(__name__)

LAST = "last.pt"
LOG = "train_log.csv"
# may differ between a run and its resumption without changing the result
RESUMABLE_CHANGES = ("train.num_workers",)


def with_epochs(config: Config, epochs: int) -> Config:
    """`config` trained for `epochs`, the lr drop moved to the same fraction (12 of 18 → 8 of 12).

    The drop epoch is rounded half up and kept ≥ 1, so even a 1-epoch run is well defined.
    """
    t = config.train
    drop = max(1, math.floor(epochs * t.lr_drop_epoch / t.epochs + 0.5))
    d = config.to_dict()
    d["train"].update(epochs=epochs, lr_drop_epoch=drop)
    return Config.from_dict(d)


def train(
    data_dir: str | Path,
    out_dir: str | Path,
    config: Config,
    *,
    resume: bool = False,
    pretrained_image: str | Path | None = None,
    pretrained_video: str | Path | None = None,
    init: str | Path | None = None,
    device: str = "auto",
    checkpoint_every: int = 0,
    progress: Callable[..., None] | None = None,
) -> dict[str, Any]:
    """Train on a `vois preprocess` artifact into `out_dir`; returns a summary dict.

    Under torchrun (WORLD_SIZE > 1) every process calls this; it joins the process group
    (gloo on CPU, NCCL on CUDA with device `cuda:LOCAL_RANK`) and leaves it at the end.
    `init`: a `vois train` checkpoint whose model weights (only: not its optimizer or
    schedule) start a fresh run, loaded strictly, so its architecture must be this config's
    (the `pretrain` stage's output). `checkpoint_every` > 0 also writes `last.pt` every that
    many optimizer steps, for
    resuming in the middle of long epochs. `progress(step, total_steps, loss=..., epoch=...)`
    is called on rank 0 after every optimizer step.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    joined = world > 1 and not dist.is_initialized()
    if joined:
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    try:
        run = _Run(Path(data_dir), Path(out_dir), config, dev, rank, world)
        run.prepare(resume, pretrained_image, pretrained_video, init)
        return run.fit(checkpoint_every, progress if rank == 0 else None)
    finally:
        if joined:
            dist.destroy_process_group()


class _Run:
    """The state of one training run in one process."""

    def __init__(
        self, data_dir: Path, out_dir: Path, config: Config, device, rank: int, world: int
    ):
        self.data_dir, self.out_dir, self.config = data_dir, out_dir, config
        self.device, self.rank, self.world = device, rank, world
        self.epoch = self.position = self.step = 0
        self.resume_rng: dict[str, Any] | None = None

    def prepare(self, resume: bool, pretrained_image, pretrained_video, init=None) -> None:
        """Validate inputs, build model, optimizer and data, and load `last.pt` on resume.

        Every check that can fail on user input runs before `out_dir` is created or touched.
        """
        cfg, last = self.config, self.out_dir / LAST
        if not self.data_dir.is_dir() or not any(self.data_dir.iterdir()):
            raise InputError(
                self.data_dir,
                "missing or empty data directory",
                "pass the output folder of `vois preprocess`",
            )
        ckpt = _check_run(self.out_dir, cfg, resume, pretrained_image or pretrained_video or init)
        torch.manual_seed(cfg.train.seed)
        self.model, self.criterion, _ = build_model(cfg)
        if pretrained_image or pretrained_video:
            load_pretrained(self.model, pretrained_image, pretrained_video)
        if init:
            load_weights(self.model, load_checkpoint(init)["model"], Path(init))
        self.dataset = ClipDataset(
            self.data_dir,
            cfg.model,
            train=True,
            clips_per_video=cfg.train.clips_per_video,
            seed=cfg.train.seed,
        )
        if len(self.dataset) == 0:
            raise InputError(
                self.data_dir, "holds no training clips", "preprocess a non-empty split"
            )
        self.model.to(self.device)
        self.criterion.to(self.device)
        self.sampler = DistributedSampler(
            self.dataset, num_replicas=self.world, rank=self.rank, shuffle=True, seed=cfg.train.seed
        )
        self.optimizer = build_optimizer(self.model, cfg)
        self.amp_dtype = _amp_dtype(self.device, cfg.train.bf16)
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.amp_dtype == torch.float16
        )
        if ckpt is not None:
            self._restore(ckpt, last)
        steps = self._steps_per_epoch()
        done = self.epoch * steps + self.position // cfg.train.accumulate
        self.scheduler = build_scheduler(self.optimizer, cfg.train, steps, done)
        self.net = (
            DistributedDataParallel(
                self.model, device_ids=[self.device] if self.device.type == "cuda" else None
            )
            if self.world > 1
            else self.model
        )
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(
                self.out_dir,
                f"cannot create the run directory ({e.strerror})",
                "choose a writable --out",
            ) from e
        self.csv = StepLog(self.out_dir / LOG, keep_until=self.step) if self.rank == 0 else None

    def _restore(self, ckpt: dict[str, Any], path: Path) -> None:
        load_weights(self.model, ckpt["model"], path)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.position, self.step = ckpt["epoch"], ckpt["position"], ckpt["step"]
        if self.position:
            if ckpt["world_size"] != self.world:
                raise InputError(
                    path,
                    f"was written mid-epoch by {ckpt['world_size']} processes, not {self.world}",
                    f"resume with {ckpt['world_size']} processes",
                )
            self.resume_rng = ckpt["rng"][self.rank]

    def fit(self, checkpoint_every: int, progress: Callable[..., None] | None) -> dict[str, Any]:
        cfg = self.config.train
        total, mean_loss = cfg.epochs * self._steps_per_epoch(), float("nan")
        for epoch in range(self.epoch, cfg.epochs):
            self.epoch, started, losses, lrs = epoch, time.perf_counter(), [], self._lrs()
            batches = self._batches(epoch)
            while self.position < len(self.sampler):
                group = min(cfg.accumulate, len(self.sampler) - self.position)
                terms = self._optimizer_step([next(batches) for _ in range(group)])
                lrs = self._lrs()  # the rates this step used, logged and summarised
                self.scheduler.step()
                self.position += group
                self.step += 1
                losses.append(terms["loss"])
                if self.csv is not None:
                    self.csv.append({"step": self.step, "epoch": epoch + 1, **terms, **lrs})
                if progress is not None:
                    progress(self.step, total, loss=terms["loss"], epoch=epoch + 1)
                if checkpoint_every and self.step % checkpoint_every == 0:
                    self._save()
            self.epoch, self.position = epoch + 1, 0
            self._save()
            mean_loss = sum(losses) / len(losses) if losses else mean_loss
            if self.rank == 0:
                seconds = time.perf_counter() - started
                rates = ", ".join(f"{k} {v:.2e}" for k, v in lrs.items())
                summary = f"mean loss {mean_loss:.4f} over {len(losses)} steps, {rates}"
                log.info("epoch %d/%d: %s, %.1f s", epoch + 1, cfg.epochs, summary, seconds)
        return {
            "epochs": cfg.epochs,
            "steps": self.step,
            "loss": mean_loss,
            "checkpoint": str(self.out_dir / LAST),
            "world_size": self.world,
        }

    def _batches(self, epoch: int):
        """This process's remaining clips of `epoch` as lists of one sample each."""
        seed = _seed(self.config.train.seed, self.rank, epoch)
        if self.resume_rng is not None:
            set_rng_state(self.resume_rng)
            self.resume_rng = None
        else:
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.manual_seed(seed)
        self.sampler.set_epoch(epoch)
        self.dataset.set_epoch(epoch)
        self.model.train()
        self.criterion.train()
        loader = DataLoader(
            self.dataset,
            batch_size=1,
            sampler=list(self.sampler)[self.position :],
            collate_fn=list,  # samples stay a list: their object counts differ
            num_workers=self.config.train.num_workers,
            generator=torch.Generator().manual_seed(seed),  # keeps the global RNG untouched
        )
        return iter(loader)

    def _optimizer_step(self, batches: list[list[dict[str, Any]]]) -> dict[str, float]:
        """Forward/backward each batch (gradients summed with weight 1/len), then one step.

        Returns the loss and its terms averaged over the batches and the processes.
        """
        sums: dict[str, torch.Tensor] = {}
        for i, batch in enumerate(batches):
            sync = i == len(batches) - 1
            with self.net.no_sync() if self.world > 1 and not sync else contextlib.nullcontext():
                terms = self._forward(batch)
                loss = sum(terms.values())
                self.scaler.scale(loss / len(batches)).backward()
            for k, v in {"loss": loss, **terms}.items():
                sums[k] = sums.get(k, 0) + v.detach().float() / len(batches)
        values = torch.stack(list(sums.values()))
        if self.world > 1:
            dist.all_reduce(values)
            values /= self.world
        if not torch.isfinite(values[0]):
            raise FloatingPointError(f"loss is {values[0].item()} at step {self.step + 1}")
        self.scaler.unscale_(self.optimizer)
        if self.config.train.clip_max_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.train.clip_max_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return dict(zip(sums, values.tolist(), strict=True))

    def _forward(self, batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Loss terms of one batch: video (B, T, 3, H, W), target (B, 3, H_I, W_I)."""
        samples = [
            {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in s.items()}
            for s in batch
        ]
        video = torch.stack([s["video"] for s in samples])
        target = torch.stack([s["target"] for s in samples])
        enabled = self.amp_dtype is not None
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=enabled):
            outputs = self.net(video, target)
            return self.criterion(outputs, samples)

    def _steps_per_epoch(self) -> int:
        return math.ceil(len(self.sampler) / self.config.train.accumulate)

    def _lrs(self) -> dict[str, float]:
        return {f"lr_{g['name']}": g["lr"] for g in self.optimizer.param_groups}

    def _save(self) -> None:
        """Write `last.pt` (a collective under DDP: every process contributes its RNG state)."""
        states = [rng_state()]
        if self.world > 1:
            states = [None] * self.world
            dist.all_gather_object(states, rng_state())
        if self.rank != 0:
            return
        save_checkpoint(
            self.out_dir / LAST,
            config=self.config.to_dict(),
            model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            scaler=self.scaler.state_dict(),
            epoch=self.epoch,
            position=self.position,
            step=self.step,
            world_size=self.world,
            rng=states,
        )


def _check_run(out_dir: Path, config: Config, resume: bool, pretrained) -> dict | None:
    """Fail on an unwritable `out_dir` or a bad resume request; return the checkpoint to resume."""
    existing = next(p for p in (out_dir, *out_dir.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(
            out_dir,
            f"cannot create or write the run directory ({existing} is not a writable folder)",
            "choose a writable --out",
        )
    last = out_dir / LAST
    if not resume:
        if last.exists():
            raise InputError(
                last,
                "a run already exists here",
                "pass --resume to continue it or choose another --out",
            )
        return None
    if pretrained:
        raise InputError(
            last,
            "pretrained weights only initialise a fresh run",
            "drop --init/--pretrained-image/--pretrained-video when resuming",
        )
    if not last.exists():
        raise InputError(last, "no checkpoint to resume from", "drop --resume to start a new run")
    ckpt = load_checkpoint(last)
    fields = config_mismatch(ckpt["config"], config, ignore=RESUMABLE_CHANGES)
    if fields:
        raise InputError(
            last,
            f"was trained with another configuration (preset "
            f"{ckpt['config']['model']['preset']}; differs in {', '.join(fields)})",
            "resume with the run's own preset and options",
        )
    return ckpt


def _amp_dtype(device: torch.device, mixed: bool) -> torch.dtype | None:
    """bf16 autocast on CUDA; fp16 with loss scaling on GPUs without bf16 (the paper's V100)."""
    if device.type != "cuda" or not mixed:
        return None
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16
    log.info(
        "%s has no bf16: using fp16 autocast with loss scaling", torch.cuda.get_device_name(device)
    )
    return torch.float16


def _seed(seed: int, rank: int, epoch: int) -> int:
    """A well-mixed 63-bit seed for (seed, rank, epoch)."""
    return int(np.random.SeedSequence([seed, rank, epoch]).generate_state(1, np.uint64)[0] >> 1)
