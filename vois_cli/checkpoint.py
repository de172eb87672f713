"""Self-describing checkpoints (docs/design.md#checkpoints) and the builder of a ready model.

A checkpoint is one `torch.save`d dict of plain types and tensors only, so it loads with
`torch.load(weights_only=True)`:

| key | content |
|---|---|
| `format`, `version` | `"vois-checkpoint"`, `VERSION` |
| `config` | `Config.to_dict()` of the run |
| `model` | the unwrapped model's `state_dict` (loaded with strict keys) |
| `optimizer`, `scaler` | their `state_dict`s (the lr schedule follows from `epoch`, `position`) |
| `epoch` | the epoch in progress (0-based); `position` clips of it were consumed per process |
| `step` | optimizer steps done since the start |
| `world_size` | processes of the run that wrote it (a mid-epoch resume needs the same) |
| `rng` | per process: Python, NumPy, torch and its CUDA device's RNG states (`rng_state()`) |

Training checkpoints written by `vois_cli.engine` carry every key; `load_model` needs only
`format`, `version`, `config` and `model`. `load_pretrained` initialises a fresh model's Swin
paths from local ImageNet files instead (mapping in `vois_cli.models.pretrained`).
"""

from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vois_cli.atomic import atomic_path
from vois_cli.config import Config, inference_fields
from vois_cli.errors import InputError
from vois_cli.models import build_model
from vois_cli.models.backbone import DualPathSwin
from vois_cli.models.pretrained import load_image_swin, load_video_swin

FORMAT = "vois-checkpoint"
VERSION = 1
REQUIRED = ("format", "version", "config", "model")


def resolve_device(device: str = "auto") -> torch.device:
    """`"auto"` picks CUDA when present, else CPU; `"cpu"`, `"cuda"`, `"cuda:1"` are taken as is.

    Asking for CUDA on a machine without it is a user error, not a silent CPU run.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as e:
        raise InputError(None, f"unknown device {device!r}", "use auto, cpu, cuda or cuda:N") from e
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            None,
            f"device {device!r} requested but CUDA is not available",
            "use --device cpu or auto",
        )
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise InputError(
            None,
            f"device {device!r} does not exist ({torch.cuda.device_count()} CUDA devices)",
            "choose an existing one",
        )
    if resolved.type not in ("cpu", "cuda"):
        raise InputError(None, f"unsupported device {device!r}", "use auto, cpu, cuda or cuda:N")
    return resolved


def save_checkpoint(path: str | Path, **state: Any) -> None:
    """Write `state` (see the module table) under the format header, atomically."""
    # through a file object: given a path, torch names the archive's folder after the file,
    # here a random temp name, and the same state would not save to the same bytes
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save({"format": FORMAT, "version": VERSION, **state}, f)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint on CPU with `weights_only=True`; anything else is an `InputError`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found", "pass the path of a vois checkpoint (.pt)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (
        OSError,
        RuntimeError,
        pickle.UnpicklingError,
        EOFError,
        zipfile.BadZipFile,
        ValueError,
    ) as e:
        raise InputError(
            path,
            f"not a readable torch checkpoint ({type(e).__name__})",
            "pass a checkpoint written by `vois train`",
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise InputError(
            path,
            f"not a {FORMAT} file",
            "pass a checkpoint written by `vois train` (raw weights are not accepted)",
        )
    if ckpt.get("version") != VERSION:
        raise InputError(
            path,
            f"checkpoint version {ckpt.get('version')} is not {VERSION}",
            "use the vois release that wrote it",
        )
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise InputError(
            path,
            f"checkpoint lacks {', '.join(missing)}",
            "pass a complete checkpoint written by `vois train`",
        )
    try:
        ckpt["config"] = Config.from_dict(ckpt["config"]).to_dict()
    except (ValueError, TypeError, AttributeError) as e:
        raise InputError(
            path, f"checkpoint config is invalid ({e})", "use the vois release that wrote it"
        ) from e
    return ckpt


def config_mismatch(
    saved: dict[str, Any], config: Config, ignore: tuple[str, ...] = ()
) -> list[str]:
    """Fields (`section.name`) where a checkpoint's config differs from `config`."""
    wanted = config.to_dict()
    return [
        f"{section}.{name}"
        for section, fields in wanted.items()
        for name, value in fields.items()
        if f"{section}.{name}" not in ignore and saved[section][name] != value
    ]


def load_model(
    path: str | Path, device: str = "auto", inference: dict[str, Any] | None = None
) -> tuple[torch.nn.Module, Any, Config]:
    """Build the checkpoint's model from its own config, load strictly, return it in eval mode.

    `inference` gives model fields that training never reads (`config.inference_fields()`,
    e.g. {"mask_guide": 0}) other values for this load; any other field is an `InputError`.
    Returns `(model, postprocess, config)` with the model on `resolve_device(device)`.
    """
    path = Path(path)
    ckpt = load_checkpoint(path)
    config = Config.from_dict(ckpt["config"])
    if inference:
        config = _with_inference(config, inference)
    model, _, postprocess = build_model(config)
    load_weights(model, ckpt["model"], path)
    return model.to(resolve_device(device)).eval(), postprocess, config


def _with_inference(config: Config, values: dict[str, Any]) -> Config:
    """`config` with `values` for inference fields of its model."""
    fields = inference_fields()
    other = sorted(set(values) - set(fields))
    if other:
        raise InputError(
            None,
            f"model.{other[0]} is not an inference field (the network is the checkpoint's)",
            f"set only {', '.join(f'model.{f}' for f in fields)}",
        )
    saved = config.to_dict()
    try:
        return Config.from_dict({**saved, "model": {**saved["model"], **values}})
    except ValueError as e:
        raise InputError(None, str(e), "give the field a value of its type") from e


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Strict `load_state_dict`; a key or shape mismatch names the file instead of a traceback."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise InputError(
            path,
            f"weights do not fit the model of its config ({' '.join(first[:2])})",
            "pass an unmodified checkpoint written by `vois train`",
        ) from e


def load_pretrained(model: torch.nn.Module, image: Path | None, video: Path | None) -> None:
    """ImageNet Swin-T files into the image path and (inflated) the video path.

    A fresh run's initialisation; a file that does not fit is an `InputError` naming its keys.
    """
    backbone = model.backbone
    swin = isinstance(backbone, DualPathSwin)
    if image is not None:
        if not swin or backbone.image_path is None:
            raise InputError(
                image,
                "this model has no Swin image path (no target or vistr_r50)",
                "drop --pretrained-image",
            )
        load_image_swin(image, backbone.image_path)
    if video is not None:
        if not swin:
            raise InputError(
                video, "this model has no Swin video path (vistr_r50)", "drop --pretrained-video"
            )
        load_video_swin(video, backbone.video_path)


def rng_state() -> dict[str, Any]:
    """This process's Python, NumPy, torch and CUDA generator states as plain types and tensors."""
    version, words, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, torch.tensor(words, dtype=torch.int64), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
        # the current device only: one process drives one GPU, and asking for every device's
        # state would open a CUDA context on each of them
        "cuda": [torch.cuda.get_rng_state()] if torch.cuda.is_initialized() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state()` captured."""
    version, words, gauss = state["python"]
    random.setstate((version, tuple(words.tolist()), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state(state["cuda"][0])
