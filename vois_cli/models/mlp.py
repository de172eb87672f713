"""DETR's box head: Linear layers with ReLU between them."""

from __future__ import annotations

from itertools import pairwise

from torch import Tensor, nn


class MLP(nn.Module):
    """`layers` Linear layers dim_in -> hidden -> ... -> dim_out, ReLU between them."""

    def __init__(self, dim_in: int, hidden: int, dim_out: int, layers: int):
        super().__init__()
        dims = [dim_in] + [hidden] * (layers - 1) + [dim_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(dims))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else layer(x).relu()
        return x
