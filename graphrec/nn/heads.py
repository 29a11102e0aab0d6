"""Small heads for auxiliary and self-supervised objectives.

They sit on top of the shared embedding space and are used only by training losses (never
by :meth:`GraphRec.score`), so they can be dropped at serving time.
"""

from __future__ import annotations

import torch
from torch import nn


class MLPHead(nn.Module):
    """Linear (-> LayerNorm -> GELU -> Linear): a one- or two-layer head.

    Args:
        in_dim: input size.
        out_dim: output size.
        hidden: hidden width; 0 gives a single linear layer.

    Shapes:
        x: (N, in_dim) -> (N, out_dim)
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 0) -> None:
        super().__init__()
        if hidden > 0:
            self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Linear(hidden, out_dim))
        else:
            self.net = nn.Sequential(nn.Linear(in_dim, out_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.net:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class GenreClassifier(MLPHead):
    """Multi-label attribute classifier (masked attribute prediction, S3-Rec, Zhou et al., CIKM 2020).

    Outputs logits, one per genre; train with :func:`graphrec.losses_ssl.masked_attribute_loss`.

    Args:
        dim: embedding size.
        num_genres: number of genres (vocabulary of :func:`graphrec.data.genres.genre_targets`).
        hidden: hidden width (0 = linear probe).

    Shapes:
        x: (N, dim) -> (N, num_genres) logits
    """

    def __init__(self, dim: int, num_genres: int, hidden: int = 0) -> None:
        super().__init__(dim, num_genres, hidden)


class FeatureReconstructor(MLPHead):
    """Reconstruct a frozen modality's features from the learned item embedding.

    Train with :func:`graphrec.losses_ssl.feature_reconstruction_loss`.

    Args:
        dim: embedding size.
        feature_dim: size of the modality's features (e.g. 384 text, 1280 image).
        hidden: hidden width.

    Shapes:
        x: (N, dim) -> (N, feature_dim)
    """

    def __init__(self, dim: int, feature_dim: int, hidden: int = 256) -> None:
        super().__init__(dim, feature_dim, hidden)


class BarlowProjector(nn.Module):
    """The Barlow Twins projector: (Linear -> BatchNorm -> ReLU) x (layers - 1) -> Linear.

    Zbontar et al., ICML 2021, Sec. 2 ("projector"): the loss is computed on a wider projection
    of the representation, not on the representation itself.

    Args:
        dim: representation size.
        out_dim: projection size (the cross-correlation matrix is ``out_dim x out_dim``).
        hidden: hidden width.
        layers: number of linear layers (>= 1).

    Shapes:
        x: (N, dim) -> (N, out_dim); needs N >= 2 in training mode (BatchNorm).
    """

    def __init__(self, dim: int, out_dim: int = 128, hidden: int = 128, layers: int = 2) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"BarlowProjector: layers must be >= 1, got {layers}")
        mods: list[nn.Module] = []
        d = dim
        for _ in range(layers - 1):
            mods += [nn.Linear(d, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU()]
            d = hidden
        mods.append(nn.Linear(d, out_dim, bias=False))
        self.net = nn.Sequential(*mods)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.net:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
