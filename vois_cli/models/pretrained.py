"""ImageNet / Kinetics Swin weights from local files into the two Swin paths.

Nothing is downloaded: the user passes a file saved with `torch.save(state_dict)` (a dict
wrapped under "model", "state_dict" or "module" is unwrapped). Accepted layouts:

- 2D Swin: timm (`patch_embed.proj`, `layers.i.downsample` at the start of stage i),
  the original Microsoft release (`layers.i.downsample` at the end of stage i) and
  torchvision `swin_t` (`features.0` patch embedding, odd `features` = stages, even =
  patch merging, `mlp.0`/`mlp.3`). All are first mapped onto timm's names.
- 3D Swin (video path only): torchvision `swin3d_t` and the Video Swin release
  (`backbone.layers.i.blocks.j`, merging at the end of stage i).

Mapping onto the video path (torchvision `SwinTransformer3d`, temporal patch 1):
- a 2D patch kernel (C, 3, 4, 4) gains a time axis of 1, so on every frame the video path's
  patch embedding equals the 2D one; a 3D kernel with temporal size k > 1 is summed over
  time, so a static clip embeds as before;
- a 2D relative-position table ((2Wh-1)(2Ww-1), heads) is resized bicubically if the spatial
  window differs, then tiled over the 2Wt-1 temporal offsets (time is the outermost axis of
  the 3D index): every temporal offset starts with the image's spatial bias. A single-frame
  clip through the inflated video path equals the 2D Swin on that frame, stage by stage,
  whenever both make the same window/shift choices (tested);
- 3D tables must match the video window; `relative_position_index` buffers are never
  loaded, the module's own (built from its window) are kept.

Ignored file keys (documented, not errors): the classifier (`head.*`, `cls_head.*`), the
final `norm.*` (the backbone has its own per-stage norms), `relative_position_index`,
`attn_mask`, and image stages past the last cross stage (the image path stops there).
Every other missing, unexpected or mis-shaped key is an InputError naming them all.
"""

from __future__ import annotations

import math
import pickle
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vois_cli.errors import InputError

Tensors = dict[str, Tensor]
_WRAPPERS = ("model", "state_dict", "module")
_REBUILT = ("relative_position_index", "attn_mask")
_TIMM_MLP = {"mlp.0.": "mlp.fc1.", "mlp.3.": "mlp.fc2."}
_TV_MLP = {"mlp.fc1.": "mlp.0.", "mlp.fc2.": "mlp.3."}
_TV_PATCH = {"0": "patch_embed.proj", "2": "patch_embed.norm"}


def _read(path: str | Path) -> Tensors:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise InputError(path, "no such file", "pass a local Swin-T weight file") from e
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as e:
        raise InputError(
            path, f"not a torch weight file ({e})", "save one with torch.save(state_dict)"
        ) from e
    while isinstance(obj, dict) and any(k in obj for k in _WRAPPERS):
        obj = next(obj[k] for k in _WRAPPERS if k in obj)
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise InputError(
            path, "not a state dict of tensors", "save one with torch.save(state_dict)"
        )
    return obj


def _rename(key: str, table: dict[str, str]) -> str:
    for old, new in table.items():
        key = key.replace(old, new)
    return key


def _torchvision_2d_to_timm(sd: Tensors) -> Tensors:
    """torchvision `swin_t` names -> timm names."""
    out = {}
    for k, v in sd.items():
        m = re.fullmatch(r"features\.(\d+)\.(.+)", k)
        if m is None:
            out[k.replace("head.", "head.fc.")] = v
            continue
        i, rest = int(m[1]), m[2]
        if i == 0:  # Sequential(Conv2d, Permute, LayerNorm)
            layer, tail = rest.split(".", 1)
            out[f"{_TV_PATCH[layer]}.{tail}"] = v
        elif i % 2:
            j, tail = rest.split(".", 1)
            out[f"layers.{(i - 1) // 2}.blocks.{j}.{_rename(tail, _TIMM_MLP)}"] = v
        else:
            out[f"layers.{i // 2}.downsample.{rest}"] = v
    return out


def _microsoft_to_timm(sd: Tensors) -> Tensors:
    """Original release (merging at the end of stage i) -> timm (at the start of stage i+1)."""
    shift = lambda m: f"layers.{int(m[1]) + 1}.downsample"  # noqa: E731
    return {re.sub(r"layers\.(\d+)\.downsample", shift, k): v for k, v in sd.items()}


def _timm_2d(sd: Tensors, path: str | Path) -> Tensors:
    """Any accepted 2D layout, in timm's names."""
    if sd.get("features.0.0.weight", torch.empty(0)).dim() == 4:
        return _torchvision_2d_to_timm(sd)
    patch = sd.get("patch_embed.proj.weight")
    if patch is None or patch.dim() != 4:
        raise InputError(
            path,
            f"not a 2D Swin checkpoint (keys start {sorted(sd)[:3]})",
            "pass a timm or torchvision Swin-T ImageNet state dict",
        )
    return _microsoft_to_timm(sd) if "layers.0.downsample.reduction.weight" in sd else sd


def _resize_table(table: Tensor, window: tuple[int, int]) -> Tensor:
    """((2w-1)^2, heads) square-window table -> ((2Wh-1)(2Ww-1), heads), bicubic."""
    side = math.isqrt(table.shape[0])
    size = (2 * window[0] - 1, 2 * window[1] - 1)
    if (side, side) == size or side * side != table.shape[0]:
        return table  # a non-square source is left to the strict shape check
    grid = table.T.reshape(1, -1, side, side)
    return F.interpolate(grid, size=size, mode="bicubic", align_corners=False)[0].flatten(1).T


def _check_and_load(path: str | Path, module: nn.Module, sd: Tensors, ignored: set[str]) -> None:
    """Strict load of `sd` into `module`; rebuilt buffers stay the module's own."""
    own = module.state_dict()
    expected = {k for k in own if not k.endswith(_REBUILT)}
    given = {k for k in sd if not k.endswith(_REBUILT)} - ignored
    problems = []
    if missing := sorted(expected - given):
        problems.append(f"missing keys {', '.join(missing)}")
    if unexpected := sorted(given - expected):
        problems.append(f"unexpected keys {', '.join(unexpected)}")
    shapes = [
        f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}"
        for k in sorted(expected & given)
        if sd[k].shape != own[k].shape
    ]
    if shapes:
        problems.append(f"shape mismatches {', '.join(shapes)}")
    if problems:
        raise InputError(
            path,
            "does not fit this model's Swin (" + "; ".join(problems) + ")",
            "pass Swin weights of the preset's embed_dim, depths and heads",
        )
    module.load_state_dict({k: own[k] if k.endswith(_REBUILT) else sd[k] for k in own})


def _window(module: nn.Module, table_key: str) -> tuple[int, ...]:
    return tuple(module.get_submodule(table_key.rsplit(".", 1)[0]).window_size)


def load_image_swin(path: str | Path, image_path_module: nn.Module) -> None:
    """Load a timm / Microsoft / torchvision 2D Swin file into the image path (timm Swin)."""
    sd = _timm_2d(_read(path), path)
    stages = len(image_path_module.layers)
    ignored = {
        k
        for k in sd
        if k.startswith(("head.", "norm."))
        or (m := re.match(r"layers\.(\d+)\.", k))
        and int(m[1]) >= stages
    }
    own = image_path_module.state_dict()
    for k in sd:
        if k.endswith("relative_position_bias_table") and k in own:
            sd[k] = _resize_table(sd[k], _window(image_path_module, k))
    _check_and_load(path, image_path_module, sd, ignored)


def _inflate(sd: Tensors, video_path_module: nn.Module) -> Tensors:
    """timm 2D names and shapes -> torchvision `SwinTransformer3d` (temporal patch 1)."""
    own = video_path_module.state_dict()
    out = {}
    for k, v in sd.items():
        if m := re.fullmatch(r"layers\.(\d+)\.blocks\.(\d+)\.(.+)", k):
            k = f"features.{2 * int(m[1])}.{m[2]}.{_rename(m[3], _TV_MLP)}"
        elif m := re.fullmatch(r"layers\.(\d+)\.downsample\.(.+)", k):
            k = f"features.{2 * int(m[1]) - 1}.{m[2]}"
        if k == "patch_embed.proj.weight":
            v = v.unsqueeze(2)  # (C, 3, 4, 4) -> (C, 3, 1, 4, 4)
        elif k.endswith("relative_position_bias_table") and k in own:
            wt, wh, ww = _window(video_path_module, k)
            v = _resize_table(v, (wh, ww)).repeat(2 * wt - 1, 1)
        out[k] = v
    return out


def _video_swin_to_torchvision(sd: Tensors) -> Tensors:
    """Video Swin release (`backbone.layers.i.blocks.j`) -> torchvision `SwinTransformer3d`."""
    out = {}
    for k, v in sd.items():
        k = k.removeprefix("backbone.")
        if m := re.fullmatch(r"layers\.(\d+)\.blocks\.(\d+)\.(.+)", k):
            k = f"features.{2 * int(m[1])}.{m[2]}.{_rename(m[3], _TV_MLP)}"
        elif m := re.fullmatch(r"layers\.(\d+)\.downsample\.(.+)", k):
            k = f"features.{2 * int(m[1]) + 1}.{m[2]}"
        out[k] = v
    return out


def load_video_swin(path: str | Path, video_path_module: nn.Module) -> None:
    """Load a 2D Swin (inflated) or a 3D Video Swin file into the video path."""
    sd = _read(path)
    patch = sd.get("patch_embed.proj.weight", sd.get("backbone.patch_embed.proj.weight"))
    if patch is not None and patch.dim() == 5:
        sd = _video_swin_to_torchvision(sd)
        sd["patch_embed.proj.weight"] = patch.sum(2, keepdim=True)
    else:
        sd = _inflate(_timm_2d(sd, path), video_path_module)
    ignored = {k for k in sd if k.startswith(("head.", "cls_head.", "norm."))}
    _check_and_load(path, video_path_module, sd, ignored)
