"""The VOIS network (paper Fig. 2) and its builder.

backbone (dual-path Swin, or the vistr_r50 baseline) -> f4 -> neck Linear -> memory E with
a 3D sine position encoding -> DETR decoder with N = n·T learned queries -> per query a
class (relevant / no-object) and a box; the last layer's queries and the backbone's f1..f3
-> the mask head (VisTR's, or CondInst's in `tiny`). Query t·n + j is proposal j in frame t.

With `two_stage` (a deviation, on in `tiny`) the queries start from the memory's best tokens
instead (models/proposals.py), the decoder's boxes refine the tokens' boxes and the mask
head sees each proposal's box.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vois_cli.config import Config, ModelConfig, TrainConfig, preset
from vois_cli.models.backbone import DualPathSwin, EncodedTarget
from vois_cli.models.baselines import VisTRR50Backbone
from vois_cli.models.condinst_mask_head import CondInstMaskHead
from vois_cli.models.criterion import SetCriterion
from vois_cli.models.decoder import Decoder
from vois_cli.models.mask_head import MaskHead
from vois_cli.models.matcher import as_sequences
from vois_cli.models.mlp import MLP
from vois_cli.models.position_encoding import position_encoding_3d
from vois_cli.models.postprocess import PostProcess
from vois_cli.models.proposals import TokenProposals
from vois_cli.models.similarity import CHANNELS as SIMILARITY_CHANNELS

BACKBONES = {"vois": DualPathSwin, "vistr_r50": VisTRR50Backbone}
MASK_HEADS = {"vistr": MaskHead, "condinst": CondInstMaskHead}


class VOIS(nn.Module):
    """Target-conditioned video instance segmentation by sequence set prediction."""

    def __init__(self, cfg: ModelConfig, backbone: nn.Module):
        super().__init__()
        d = cfg.hidden_dim
        self.num_queries, self.num_frames = cfg.num_queries, cfg.num_frames
        self.backbone = backbone
        self.memory_stride = cfg.memory_stride
        if cfg.memory_stride not in (16, 32):
            raise ValueError(f"memory_stride is 16 or 32, got {cfg.memory_stride}")
        stages = {int(s) for s in getattr(backbone, "similarity", {})}  # similarity maps
        map_channels = SIMILARITY_CHANNELS + cfg.colour_similarity + cfg.colour_mix  # each map
        compared = len(stages) * map_channels
        coarse = backbone.memory_channels + (compared if cfg.memory_stride == 32 else 0)
        self.neck = nn.Linear(coarse, d)
        self.neck_fine = (
            nn.Linear(backbone.feature_channels[2] + compared, d)
            if cfg.memory_stride == 16
            else None
        )
        self.target_map = nn.Linear(d, 1) if cfg.loss_target_map > 0 else None
        self.query_embed = nn.Embedding(cfg.num_queries * cfg.num_frames, d)
        # two-stage queries take their content from the memory tokens that start them
        self.query_content = (
            nn.Embedding(cfg.num_queries * cfg.num_frames, d)
            if cfg.query_content and not cfg.two_stage
            else None
        )
        self.decoder = Decoder(cfg)
        self.class_embed = nn.Linear(d, 2)
        self.bbox_embed = MLP(d, d, 4, 3)
        if cfg.mask_head not in MASK_HEADS:
            raise ValueError(
                f"unknown mask_head {cfg.mask_head!r}; choose one of {', '.join(MASK_HEADS)}"
            )
        # with mask_similarity, f_s carries stage s's similarity map into the mask head
        self.mask_similarity = cfg.mask_similarity and bool(stages)
        mask_channels = [
            c + map_channels * (self.mask_similarity and s + 1 in stages)
            for s, c in enumerate(backbone.feature_channels)
        ]
        self.mask_head = MASK_HEADS[cfg.mask_head](cfg, mask_channels)
        self.proposals = (
            TokenProposals(d, cfg.num_queries, cfg.slot_gate, cfg.slot_motion)
            if cfg.two_stage
            else None
        )

    def encode_target(self, target: Tensor | None) -> EncodedTarget:
        """The part of the forward that reads the target image (B, 3, H_I, W_I) alone: computed
        once, it stands in for the image in `forward` over every clip of a video."""
        return self.backbone.encode_target(target)

    def forward(self, video: Tensor, target: Tensor | EncodedTarget | None = None) -> dict:
        """video (B, T, 3, H, W), target (B, 3, H_I, W_I) or its `encode_target` (ignored
        without a target path) ->

        pred_logits (B, n·T, 2): class logits, index 0 relevant, 1 no-object;
        pred_boxes (B, n·T, 4): sigmoid (cx, cy, w, h), normalised to the input;
        pred_masks (B, n, T, ceil(H/4), ceil(W/4)): mask logits per proposal and frame;
        aux_outputs: [{pred_logits, pred_boxes}] of the dec_layers - 1 earlier layers.
        """
        b, t = video.shape[:2]
        if t != self.num_frames:
            raise ValueError(f"the model has queries for T={self.num_frames} frames, got {t}")
        out = self.backbone(video, target)
        memory = self._memory(out)  # (B, T, h, w, d)
        d = memory.shape[-1]
        pos = position_encoding_3d(tuple(memory.shape[1:4]), d, memory.device)
        pos = pos.to(memory.dtype)[None].expand(b, -1, -1, -1, -1)  # (B, T, h, w, d)
        content = None if self.query_content is None else self.query_content.weight
        query_pos, reference, extra = self.query_embed.weight, 0, {}
        if self.proposals is not None:
            extra = self.proposals(memory, pos, video)
            content, reference = extra.pop("content"), extra.pop("reference")
            query_pos = query_pos + extra.pop("query_pos")
        hs = self.decoder(memory.flatten(1, 3), pos.flatten(1, 3), query_pos, content)
        logits, boxes = self.class_embed(hs), (self.bbox_embed(hs) + reference).sigmoid()
        queries = hs[-1].view(b, t, self.num_queries, d)
        proposal_boxes = as_sequences(boxes[-1], self.num_queries)  # (B, n, T, 4)
        masks = self.mask_head(queries, memory, pos, self._mask_features(out), proposal_boxes)
        if self.target_map is not None:
            extra["target_logits"] = self.target_map(memory).squeeze(-1)  # (B, T, h, w)
        return {
            "pred_logits": logits[-1],
            "pred_boxes": boxes[-1],
            "pred_masks": masks,
            "aux_outputs": [
                {"pred_logits": c, "pred_boxes": x}
                for c, x in zip(logits[:-1], boxes[:-1], strict=True)
            ],
            **extra,
        }

    def _mask_features(self, out: dict) -> list[Tensor]:
        """f1..f3 for the mask head, each with its stage's similarity map when
        `mask_similarity` (and that stage is compared)."""
        if not self.mask_similarity:
            return out["features"]
        maps = out["similarity"]
        return [
            torch.cat([f, maps[s + 1]], -1) if s + 1 in maps else f
            for s, f in enumerate(out["features"])
        ]

    def _memory(self, out: dict) -> Tensor:
        """The decoder memory E (B, T, h, w, d) at `memory_stride` from the backbone's f4 (and
        f3 at stride 16), with the similarity maps, resized to its grid, as extra channels."""
        coarse, fine = out["memory"], out["features"][2]
        grid = fine if self.neck_fine is not None else coarse
        maps = [_resized(m, grid.shape[2:4]) for m in out.get("similarity", {}).values()]
        if self.neck_fine is None:
            return self.neck(torch.cat([coarse, *maps], -1))
        up = _resized(self.neck(coarse), grid.shape[2:4], mode="nearest")
        return self.neck_fine(torch.cat([fine, *maps], -1)) + up


def _resized(x: Tensor, size: tuple[int, int], mode: str = "bilinear") -> Tensor:
    """Channels-last (B, T, h, w, C) -> (B, T, *size, C)."""
    if tuple(x.shape[2:4]) == tuple(size):
        return x
    flat = x.flatten(0, 1).permute(0, 3, 1, 2)
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    flat = F.interpolate(flat, size=size, mode=mode, **kwargs)
    return flat.permute(0, 2, 3, 1).unflatten(0, x.shape[:2])


def build_model(config: Config | ModelConfig | str) -> tuple[VOIS, SetCriterion, PostProcess]:
    """(model, criterion, postprocess) from a config or a preset name, the model in train mode
    with random weights (pretrained files are loaded by `vois_cli.models.pretrained`)."""
    if isinstance(config, str):
        config = preset(config)
    cfg = config.model if isinstance(config, Config) else config
    if cfg.arch not in BACKBONES:
        raise ValueError(f"unknown arch {cfg.arch!r}; choose one of {', '.join(BACKBONES)}")
    model = VOIS(cfg, BACKBONES[cfg.arch](cfg))
    return model, SetCriterion(cfg), PostProcess(cfg)


def parameter_groups(model: VOIS, model_cfg: ModelConfig, train_cfg: TrainConfig) -> list[dict]:
    """AdamW groups: "backbone" at lr_backbone (with the cross blocks when
    `cross_lr_backbone`) and "rest" at lr; frozen parameters are left out."""
    backbone = list(model.backbone.lr_backbone_parameters(model_cfg.cross_lr_backbone))
    ids = {id(p) for p in backbone}
    rest = [p for p in model.parameters() if id(p) not in ids]
    named = [("backbone", backbone, train_cfg.lr_backbone), ("rest", rest, train_cfg.lr)]
    return [
        {
            "name": name,
            "params": [p for p in params if p.requires_grad],
            "lr": lr,
            "weight_decay": train_cfg.weight_decay,
        }
        for name, params, lr in named
    ]
