"""LightGCN propagation over the normalised user-item graph."""

from __future__ import annotations

import torch
from torch import nn


class _SymmetricSpMM(torch.autograd.Function):
    """``adj @ x`` for a symmetric sparse ``adj``; the backward is ``adj @ grad`` (no transpose)."""

    @staticmethod
    def forward(ctx, adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.adj = adj
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, torch.sparse.mm(ctx.adj, grad)


def symmetric_spmm(adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Sparse-dense product for a symmetric ``adj`` with a cheap backward.

    Shapes: adj sparse (N, N), x (N, d) -> (N, d)
    """
    return _SymmetricSpMM.apply(adj, x)


class LightGCNPropagation(nn.Module):
    """Parameter-free LightGCN propagation (He et al., SIGIR 2020).

    ``x_{l+1} = A_hat x_l`` with ``A_hat = D^-1/2 A D^-1/2`` and output ``mean_l x_l`` over
    layers 0..L. Numerically the same as stacking PyG ``LGConv`` layers, but on a
    precomputed symmetric sparse CSR matrix (:func:`graphrec.graph.normalized_adjacency`), which
    avoids recomputing the normalisation and the scatter on every step; the backward reuses the
    same matrix (``A_hat`` is symmetric), which is several times faster than autograd's default.

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
        # sparse products run in adj's dtype (float32) also under autocast (no bfloat16 sparse kernel on CPU)
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.to(adj.dtype)
            out = x
            h = x
            for _ in range(self.num_layers):
                h = symmetric_spmm(adj, h) if torch.is_grad_enabled() else torch.sparse.mm(adj, h)
                out = out + h
            return out / (self.num_layers + 1)
