"""The DETR transformer decoder: post-norm layers over the neck's memory E.

The decoder starts from zeros (or, with `query_content`, from a learned vector per query as
Deformable DETR does); the learned query embedding enters every layer as a
position (added to queries and self-attention keys), the memory's position encoding is
added to the cross-attention keys. One shared LayerNorm turns every layer's output into
a prediction input, so the earlier layers feed the auxiliary losses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from vois_cli.config import ModelConfig


class DecoderLayer(nn.Module):
    """Self-attention, cross-attention, FFN; each followed by dropout, residual and LayerNorm."""

    def __init__(self, d: int, heads: int, feedforward: int, dropout: float):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(d, feedforward)
        self.linear2 = nn.Linear(feedforward, d)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, memory: Tensor, pos: Tensor, query_pos: Tensor) -> Tensor:
        """x (B, N, d), memory and pos (B, L, d), query_pos (B, N, d) -> (B, N, d)."""
        q = x + query_pos
        x = self.norm1(x + self.dropout(self.self_attn(q, q, x, need_weights=False)[0]))
        attended = self.cross_attn(x + query_pos, memory + pos, memory, need_weights=False)[0]
        x = self.norm2(x + self.dropout(attended))
        ffn = self.linear2(self.dropout(F.relu(self.linear1(x))))
        return self.norm3(x + self.dropout(ffn))


class Decoder(nn.Module):
    """`dec_layers` DETR decoder layers of width `hidden_dim` and a shared final LayerNorm."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.layers = nn.ModuleList(
            DecoderLayer(cfg.hidden_dim, cfg.dec_heads, cfg.dim_feedforward, cfg.dropout)
            for _ in range(cfg.dec_layers)
        )
        self.norm = nn.LayerNorm(cfg.hidden_dim)
        self.checkpointing = cfg.activation_checkpointing
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(
        self,
        memory: Tensor,
        pos: Tensor,
        query_pos: Tensor,
        content: Tensor | None = None,
    ) -> Tensor:
        """memory, pos (B, L, d); query_pos and content (N, d) or (B, N, d) -> every layer's
        output (layers, B, N, d); the first layer's input is `content`, or zeros."""
        query_pos = query_pos.expand(memory.shape[0], -1, -1)
        x = torch.zeros_like(query_pos) if content is None else content.expand_as(query_pos)
        outputs = []
        for layer in self.layers:
            if self.checkpointing and torch.is_grad_enabled():
                x = checkpoint(layer, x, memory, pos, query_pos, use_reentrant=False)
            else:
                x = layer(x, memory, pos, query_pos)
            outputs.append(self.norm(x))
        return torch.stack(outputs)
