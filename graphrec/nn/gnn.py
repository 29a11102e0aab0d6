"""LightGCN propagation over the normalised user-item graph."""

from __future__ import annotations

import torch
from torch import nn


class LightGCNPropagation(nn.Module):
    """Parameter-free LightGCN propagation (He et al., SIGIR 2020).

    ``x_{l+1} = A_hat x_l`` with ``A_hat = D^-1/2 A D^-1/2`` and output ``mean_l x_l`` over
    layers 0..L. Numerically the same as stacking PyG ``LGConv`` layers, but on a
    precomputed sparse CSR matrix (:func:`graphrec.graph.normalized_adjacency`), which avoids
    recomputing the normalisation and the scatter on every step.

    Args:
        num_layers: number of propagation steps L.

    Shapes:
        x: (U + I, d), adj: sparse (U + I, U + I) -> (U + I, d)
    """

    def __init__(self, num_layers: int) -> None:
        super().__init__()
        self.num_layers = num_layers

    def reset_parameters(self) -> None:
        pass

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        out = x
        h = x
        for _ in range(self.num_layers):
            h = torch.sparse.mm(adj, h)
            out = out + h
        return out / (self.num_layers + 1)
