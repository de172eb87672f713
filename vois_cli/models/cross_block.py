"""The Cross Transformer block (paper §5.1, Fig. 3b): video tokens attend to target-image tokens.

Video tokens of every frame and position are the queries (Flatten3D), the image tokens of the
same stage are the keys and values (Flatten2D); the result is put back in the video's shape
(Anti-Flatten3D) and is the next stage's input.
"""

from __future__ import annotations

from torch import Tensor, nn


class CrossBlock(nn.Module):
    """x <- x + MHA(LN(x), LN(g), LN(g)); x <- x + MLP(LN(x)), MLP = Linear-GELU-Linear."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm_query = nn.LayerNorm(dim)
        self.norm_image = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor, g: Tensor) -> Tensor:
        """Fuse the target into the video features.

        x: (B, T, h, w, C) video tokens; g: (B, h_I, w_I, C) image tokens -> (B, T, h, w, C).
        """
        shape = x.shape
        q = x.flatten(1, 3)  # (B, T*h*w, C)
        kv = self.norm_image(g.flatten(1, 2))  # (B, h_I*w_I, C)
        q = q + self.attn(self.norm_query(q), kv, kv, need_weights=False)[0]
        q = q + self.mlp(self.norm_mlp(q))
        return q.view(shape)
