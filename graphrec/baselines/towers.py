"""Small MLP towers shared by the neural cold-start baselines."""

from __future__ import annotations

import torch
from torch import nn


class Tower(nn.Module):
    """``Linear -> [BatchNorm] -> tanh -> Linear``: the mapper used by DropoutNet, Heater and ALDI.

    Args:
        in_dim: input size.
        hidden: hidden size.
        out_dim: output size.
        batch_norm: BatchNorm1d after the first layer (DropoutNet and ALDI use it).

    Shapes:
        forward: (B, in_dim) -> (B, out_dim)
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, batch_norm: bool = True) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.norm = nn.BatchNorm1d(hidden) if batch_norm else nn.Identity()
        self.fc2 = nn.Linear(hidden, out_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for fc in (self.fc1, self.fc2):
            nn.init.trunc_normal_(fc.weight, std=0.01 if fc is self.fc2 else (1.0 / fc.in_features) ** 0.5)
            nn.init.zeros_(fc.bias)
        if isinstance(self.norm, nn.BatchNorm1d):
            self.norm.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.tanh(self.norm(self.fc1(x))))


@torch.no_grad()
def apply_in_batches(module: nn.Module, x: torch.Tensor, batch: int = 8192) -> torch.Tensor:
    """Eval-mode forward over rows in chunks (restores the training flag). Shapes: (N, *) -> (N, d)."""
    was = module.training
    module.eval()
    out = torch.cat([module(x[s:s + batch]) for s in range(0, len(x), batch)]) if len(x) else x
    module.train(was)
    return out
