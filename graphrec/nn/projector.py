"""Per-modality projectors into the shared embedding space."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ModalityProjector(nn.Module):
    """LayerNorm -> Linear -> GELU -> Dropout -> Linear: one modality's features into the shared space.

    The two-layer MLP head follows the projection heads of contrastive multimodal models
    (CLIP, Radford et al., ICML 2021; CLCRec, Wei et al., ACM MM 2021).

    Args:
        in_dim: feature size of the modality (e.g. 384 for MiniLM, 1280 for EfficientNet-Lite0).
        out_dim: shared embedding size.
        hidden: hidden width.
        dropout: dropout after the activation.

    Shapes:
        x: (N, in_dim) -> (N, out_dim)
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.lin1 = nn.Linear(in_dim, hidden)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)
        self.lin2 = nn.Linear(hidden, out_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.norm.reset_parameters()
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad:
            return self.lin2(self.drop(self.act(self.lin1(self.norm(x)))))
        # Same function, cheaper on constant features (the usual case: catalogue features are fixed
        # inputs): the LayerNorm's affine is folded into lin1, ``W (xh * g + b) + c = (W * g) xh + (W b + c)``,
        # so the backward needs no gradient w.r.t. the (N, in_dim) input and no LayerNorm backward.
        xh = F.layer_norm(x, self.norm.normalized_shape, eps=self.norm.eps)
        w, b = self.lin1.weight * self.norm.weight, self.lin1.bias + self.lin1.weight @ self.norm.bias
        return self.lin2(self.drop(self.act(F.linear(xh, w, b))))
