"""The dual-path Swin Transformer backbone (paper §5.1, Fig. 3a).

The image path is timm's 2D Swin, the video path torchvision's 3D Swin with temporal patch 1;
both run stage by stage so that a Cross Transformer block can sit after any stage and feed
the next one. Video stage outputs are tapped before patch merging, each through its own
LayerNorm: f1..f3 feed the mask head's FPN, f4 is the decoder memory.

Any input size works. Inputs are zero-padded at the bottom/right so that H and W divide by
the patch and every stage's map is at least the window (docs/design.md#library-traps:
torchvision shrinks a window that is larger than the map and then slices the
relative-position bias from the full-size index, which is silently wrong; the shrink is
only right along T, the outermost axis of the index). Features are cropped back to
ceil(H / stride) x ceil(W / stride).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

import torch
import torch.nn.functional as F
from timm.models.swin_transformer import SwinTransformer
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from torchvision.models.video.swin_transformer import SwinTransformer3d

from vois_cli.config import ModelConfig
from vois_cli.models.cross_block import CrossBlock
from vois_cli.models.similarity import TargetSimilarity, colour_maps, product_histogram

PATCH = 4  # spatial patch of both paths (paper §5.1); the video path's temporal patch is 1
NUM_STAGES = 4  # f1, f2, f3 go to the mask head, f4 to the decoder


def padded_side(size: int, window: int, stages: int) -> int:
    """Smallest side >= `size`, divisible by PATCH, whose map after `stages` stages is >= `window`.

    Stage s (1-based) has a map of ceil(side / (PATCH * 2**(s-1))); only the last one can be
    smaller than the window.
    """
    stride = PATCH * 2 ** (stages - 1)
    return max(math.ceil(size / PATCH) * PATCH, stride * (window - 1) + PATCH)


class EncodedTarget(NamedTuple):
    """What a forward computes from the target image alone, so that the clips of one video can
    share it: the image path's output at each of its stages (B, h_s', w_s', C_s), padded as
    the path ran it, the image's (H_I, W_I), and the product's colour histogram (B, bins)
    when a colour map needs it."""

    tokens: Iterable[Tensor]  # a list; a generator inside a training forward
    size: tuple[int, int] = (0, 0)
    histogram: Tensor | None = None


def stage_sizes(h: int, w: int, stages: int) -> list[tuple[int, int]]:
    """Unpadded (h_s, w_s) of each stage's map: ceil(size / (PATCH * 2**(s-1)))."""
    return [(math.ceil(h / (PATCH * 2**s)), math.ceil(w / (PATCH * 2**s))) for s in range(stages)]


class DualPathSwin(nn.Module):
    """2D Swin on the target image, 3D Swin on the video, cross blocks after `cfg.cross_stages`.

    Stage s has C * 2**(s-1) channels. Without a target (`use_target=False`) or without cross
    stages there is no way for the target to reach the video, so no image path is built; the
    image path stops at the last cross stage, since later image stages would feed nothing.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if len(cfg.depths) != NUM_STAGES or len(cfg.num_heads) != NUM_STAGES:
            raise ValueError(f"the dual-path Swin has {NUM_STAGES} stages, got depths {cfg.depths}")
        if not set(cfg.cross_stages) <= set(range(1, NUM_STAGES + 1)):
            raise ValueError(
                f"cross_stages must be a subset of 1..{NUM_STAGES}: {cfg.cross_stages}"
            )
        channels = [cfg.embed_dim * 2**s for s in range(NUM_STAGES)]
        self.video_window = cfg.video_window
        self.image_window = cfg.image_window
        self.checkpointing = cfg.activation_checkpointing

        self.video_path = SwinTransformer3d(
            patch_size=[1, PATCH, PATCH],
            embed_dim=cfg.embed_dim,
            depths=list(cfg.depths),
            num_heads=list(cfg.num_heads),
            window_size=list(cfg.video_window),
            stochastic_depth_prob=cfg.drop_path,
        )
        # the classifier's norm and head are never run; dropping them keeps DDP free of unused
        # parameters (the per-stage norms below replace the final norm)
        self.video_path.norm = nn.Identity()
        self.video_path.head = nn.Identity()
        self.video_norms = nn.ModuleList(nn.LayerNorm(c) for c in channels)

        stages = sorted(set(cfg.cross_stages)) if cfg.use_target else []
        compared = sorted(set(cfg.similarity_stages)) if stages else []
        self.colour_similarity, self.colour_mix = cfg.colour_similarity, cfg.colour_mix
        self.similarity = nn.ModuleDict(
            {str(s): TargetSimilarity(channels[s - 1], cfg.similarity_dim) for s in compared}
        )
        self.image_norms_compared = nn.ModuleDict(
            {str(s): nn.LayerNorm(channels[s - 1]) for s in compared}
        )
        stages_run = max(stages + compared, default=0)  # the image path's last stage
        self.cross_blocks = nn.ModuleDict(
            {
                str(s): CrossBlock(channels[s - 1], cfg.num_heads[s - 1], cfg.cross_mlp_ratio)
                for s in stages
            }
        )
        self.image_norms = nn.ModuleDict({str(s): nn.LayerNorm(channels[s - 1]) for s in stages})
        self.image_path: SwinTransformer | None = None
        if stages:
            # window and shift are fixed from img_size at build time (timm); building at the
            # target's nominal size keeps full windows and Swin's "no shift when the map fits
            # in one window" rule for a square target of `short_edge`
            side = max(
                math.ceil(cfg.short_edge / PATCH) * PATCH,
                padded_side(1, cfg.image_window, stages_run),
            )
            self.image_path = SwinTransformer(
                img_size=side,
                patch_size=PATCH,
                num_classes=0,
                embed_dim=cfg.embed_dim,
                depths=cfg.depths,
                num_heads=cfg.num_heads,
                window_size=cfg.image_window,
                drop_path_rate=cfg.drop_path,
                strict_img_size=False,
            )
            self.image_path.prune_intermediate_layers([stages_run - 1], prune_norm=True)

        self.feature_channels: tuple[int, int, int] = tuple(channels[:3])
        self.memory_channels: int = channels[3]

    def _run(self, fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        if self.checkpointing and self.training and x.requires_grad:
            return checkpoint(fn, x, use_reentrant=False)
        return fn(x)

    def _video_stage(self, s: int) -> Callable[[Tensor], Tensor]:
        """Stage s (0-based) of the video path: patch merging (s > 0), then its blocks."""
        features = self.video_path.features
        if s == 0:
            return features[0]
        return lambda x: features[2 * s](features[2 * s - 1](x))

    def encode_target(self, target: Tensor | None) -> EncodedTarget:
        """target (B, 3, H_I, W_I) -> its `EncodedTarget` (no tokens without an image path)."""
        encoded = self._encoded(target)
        return encoded._replace(tokens=list(encoded.tokens))

    def _encoded(self, target: Tensor | None) -> EncodedTarget:
        """The `EncodedTarget` with its image path still to run: `forward` runs it stage by
        stage, interleaved with the video path as it always has (the stochastic depth of both
        paths draws from one random stream)."""
        if self.image_path is None:
            return EncodedTarget([])
        size = tuple(target.shape[-2:])
        return EncodedTarget(self._image_stages(target), size, self._histogram(target))

    def _image_stages(self, target: Tensor) -> Iterator[Tensor]:
        """The image path's output stage by stage, padded."""
        hi, wi = target.shape[-2:]
        image_stages = len(self.image_path.layers)
        hip = padded_side(hi, self.image_window, image_stages)
        wip = padded_side(wi, self.image_window, image_stages)
        g = self.image_path.patch_embed(F.pad(target, (0, wip - wi, 0, hip - hi)))
        for layer in self.image_path.layers:
            g = self._run(layer, g)
            yield g

    def _histogram(self, target: Tensor) -> Tensor | None:
        compare_colour = self.similarity and (self.colour_similarity or self.colour_mix)
        return product_histogram(target) if compare_colour else None

    def forward(
        self, video: Tensor, target: Tensor | EncodedTarget | None
    ) -> dict[str, Tensor | list[Tensor]]:
        """video (B, T, 3, H, W), target (B, 3, H_I, W_I) or its `encode_target` (unused
        without an image path) ->

        `features`: [f1, f2, f3], f_s (B, T, ceil(H/2^(s+1)), ceil(W/2^(s+1)), C*2^(s-1));
        `memory`: f4 (B, T, ceil(H/32), ceil(W/32), 8C). All channels-last, after LayerNorm.
        `similarity`: {stage s: its (B, T, h_s, w_s, 2) map, a channel more with each of
        `colour_similarity` and `colour_mix`} for the similarity stages.
        """
        h, w = video.shape[-2:]
        hp = padded_side(h, self.video_window[1], NUM_STAGES)
        wp = padded_side(w, self.video_window[2], NUM_STAGES)
        x = F.pad(video, (0, wp - w, 0, hp - h)).transpose(1, 2)  # (B, 3, T, Hp, Wp)
        x = self.video_path.pos_drop(self.video_path.patch_embed(x))  # (B, T, Hp/4, Wp/4, C)

        if not isinstance(target, EncodedTarget):
            target = self._encoded(target)
        image, image_sizes = iter(target.tokens), stage_sizes(*target.size, NUM_STAGES)
        colour = (  # unlearned colour maps, (B, T, H', W') each
            colour_maps(video, target.histogram, self.colour_similarity, self.colour_mix)
            if target.histogram is not None
            else []
        )
        taps, similarity, g = [], {}, None
        for s, (hs, ws) in enumerate(stage_sizes(h, w, NUM_STAGES)):
            x = self._run(self._video_stage(s), x)  # (B, T, h_s', w_s', C_s), padded
            g = next(image, g)  # (B, h_I', w_I', C_s), padded, up to the image path's last stage
            key, tap = str(s + 1), None
            if key in self.similarity:  # compares the stage's output before any cross block
                gh, gw = image_sizes[s]
                tap = self.video_norms[s](x[:, :, :hs, :ws])
                g_s = self.image_norms_compared[key](g[:, :gh, :gw])
                similarity[s + 1] = self.similarity[key](tap, g_s)
                for c in colour:  # the colour match, averaged over each token
                    pooled = F.adaptive_avg_pool2d(c, (hs, ws))[..., None].to(tap.dtype)
                    similarity[s + 1] = torch.cat([similarity[s + 1], pooled], -1)
            if key in self.cross_blocks:
                gh, gw = image_sizes[s]
                x = self.cross_blocks[key](x, self.image_norms[key](g[:, :gh, :gw]))
                tap = None
            taps.append(self.video_norms[s](x[:, :, :hs, :ws]) if tap is None else tap)
        return {"features": taps[:3], "memory": taps[3], "similarity": similarity}

    def lr_backbone_parameters(self, cross_in_backbone: bool) -> Iterator[nn.Parameter]:
        """Parameters trained at the backbone rate: both Swin paths with their stage norms, and
        the cross blocks when `cross_in_backbone` (paper §5.1 counts them in the backbone)."""
        parts: list[nn.Module] = [
            self.video_path,
            self.video_norms,
            self.image_norms,
            self.image_norms_compared,
        ]
        if self.image_path is not None:
            parts.append(self.image_path)
        if cross_in_backbone:
            parts.append(self.cross_blocks)
        for part in parts:
            yield from part.parameters()
