"""The `vistr_r50` baseline backbone (paper §6.2, Table 2): VisTR adapted to a target image.

A ResNet-50 runs on every frame, a second ResNet-50 on the target image; the frames' C5 is
projected to the transformer width and passed through VisTR's encoder, each encoder layer
followed by a Cross Transformer block whose keys/values are the target's projected C5. It
honours DualPathSwin's output contract, so the decoder and mask head plug in unchanged.

Both ResNets use torchvision's defaults (trainable BatchNorm, weights=None): there is no
pretrained ResNet file to freeze statistics from, and batches hold B*T frames.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor, nn
from torchvision.models import resnet50

from vois_cli.config import ModelConfig
from vois_cli.models.backbone import EncodedTarget
from vois_cli.models.cross_block import CrossBlock
from vois_cli.models.position_encoding import position_encoding_3d


class EncoderLayer(nn.Module):
    """DETR's post-norm encoder layer: the position is added to queries and keys only."""

    def __init__(self, dim: int, heads: int, dim_feedforward: int, dropout: float):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, dim_feedforward),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(dim_feedforward, dim),
        )
        self.norm2 = nn.LayerNorm(dim)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        """x (B, L, d), pos (L, d) -> (B, L, d)."""
        q = x + pos
        x = self.norm1(x + self.dropout1(self.attn(q, q, x, need_weights=False)[0]))
        return self.norm2(x + self.dropout2(self.ffn(x)))


def _resnet() -> nn.Module:
    net = resnet50(weights=None)
    net.fc = nn.Identity()  # never run; dropping it keeps DDP free of unused parameters
    return net


def _stages(net: nn.Module, x: Tensor) -> list[Tensor]:
    """(N, 3, H, W) -> [C2, C3, C4, C5], C_k (N, 256 * 2**(k-2), ceil(H/2^k), ceil(W/2^k))."""
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    out = []
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        x = layer(x)
        out.append(x)
    return out


class VisTRR50Backbone(nn.Module):
    """ResNet-50 video + ResNet-50 target + `enc_layers` x (encoder layer, cross block)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.video_resnet = _resnet()
        self.image_resnet = _resnet()
        c5 = self.video_resnet.layer4[-1].conv3.out_channels
        d = cfg.hidden_dim
        self.video_proj = nn.Linear(c5, d)
        self.image_proj = nn.Linear(c5, d)
        self.encoder = nn.ModuleList(
            EncoderLayer(d, cfg.dec_heads, cfg.dim_feedforward, cfg.dropout)
            for _ in range(cfg.enc_layers)
        )
        self.cross_blocks = nn.ModuleList(
            CrossBlock(d, cfg.dec_heads, cfg.cross_mlp_ratio) for _ in range(cfg.enc_layers)
        )
        self.feature_channels: tuple[int, int, int] = tuple(
            layer[-1].conv3.out_channels
            for layer in (
                self.video_resnet.layer1,
                self.video_resnet.layer2,
                self.video_resnet.layer3,
            )
        )
        self.memory_channels: int = d

    def encode_target(self, target: Tensor) -> EncodedTarget:
        """target (B, 3, H_I, W_I) -> its projected C5 (B, h, w, hidden_dim), the one token map."""
        return EncodedTarget(
            [self.image_proj(_stages(self.image_resnet, target)[3].permute(0, 2, 3, 1))]
        )

    def forward(
        self, video: Tensor, target: Tensor | EncodedTarget
    ) -> dict[str, Tensor | list[Tensor]]:
        """video (B, T, 3, H, W), target (B, 3, H_I, W_I) or its `encode_target` ->

        `features`: [C2, C3, C4], (B, T, ceil(H/2^k), ceil(W/2^k), 256 * 2**(k-2)) for k = 2..4;
        `memory`: the last cross block's output, (B, T, ceil(H/32), ceil(W/32), hidden_dim).
        """
        b, t = video.shape[:2]
        frames = _stages(self.video_resnet, video.flatten(0, 1))  # (B*T, C_k, h_k, w_k)
        maps = [f.unflatten(0, (b, t)).permute(0, 1, 3, 4, 2) for f in frames]
        x = self.video_proj(maps[3])  # (B, T, h5, w5, d)
        shape = x.shape
        if not isinstance(target, EncodedTarget):
            target = self.encode_target(target)
        (g,) = target.tokens
        pos = position_encoding_3d(tuple(shape[1:4]), shape[4], x.device).flatten(0, 2)
        x = x.flatten(1, 3)  # (B, T*h5*w5, d)
        for layer, cross in zip(self.encoder, self.cross_blocks, strict=True):
            x = cross(layer(x, pos.to(x.dtype)).view(shape), g).flatten(1, 3)
        return {"features": maps[:3], "memory": x.view(shape)}

    def lr_backbone_parameters(self, cross_in_backbone: bool) -> Iterator[nn.Parameter]:
        """The two ResNets. The cross blocks follow encoder layers here, outside the backbone, so
        `cross_in_backbone` (kept for DualPathSwin's signature) never moves them."""
        yield from self.video_resnet.parameters()
        yield from self.image_resnet.parameters()
