"""Fusion of modality views that copes with missing modalities."""

from __future__ import annotations

import torch
from torch import nn


class MaskedMeanFusion(nn.Module):
    """Mean over the modalities an item has; zeros for an item with none.

    Shapes:
        views: (N, M, d), mask: (N, M) bool -> (N, d)
    """

    def reset_parameters(self) -> None:
        pass

    def forward(self, views: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = mask.to(views.dtype)
        return (views * w.unsqueeze(-1)).sum(1) / w.sum(1, keepdim=True).clamp_min(1.0)


class GatedFusion(nn.Module):
    """Gated attention over available modalities (Ilse et al., ICML 2018, gated attention pooling).

    ``a_m = w^T (tanh(V h_m) * sigmoid(U h_m))``, softmax over the modalities present in the
    item (missing ones get no weight); an item with no modality gets zeros.

    Args:
        dim: view size.
        hidden: attention hidden size.

    Shapes:
        views: (N, M, d), mask: (N, M) bool -> (N, d)
    """

    def __init__(self, dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.V = nn.Linear(dim, hidden)
        self.U = nn.Linear(dim, hidden)
        self.w = nn.Linear(hidden, 1, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.V.reset_parameters()
        self.U.reset_parameters()
        nn.init.zeros_(self.w.weight)  # starts as the masked mean

    def forward(self, views: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        a = self.w(torch.tanh(self.V(views)) * torch.sigmoid(self.U(views))).squeeze(-1)  # (N, M)
        a = a.masked_fill(~mask, float("-inf"))
        att = torch.softmax(a, dim=1).nan_to_num(0.0)  # rows with no modality -> 0
        return (att.unsqueeze(-1) * views).sum(1)
