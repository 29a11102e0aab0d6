"""The content vectors behind GraphRec's kNN graph and content terms, and the learned walk that reads them.

Each modality's train-centred, L2-normalised features are scaled by ``sqrt(share)`` and put side
by side, so that a dot product of two rows mixes the per-modality cosines with the shares.
"""

from __future__ import annotations

import torch

from graphrec.graph.build import centred_normalised
from graphrec.nn.content_walk import LearnedWalk

Features = dict[str, tuple[torch.Tensor, torch.Tensor]]


def content_shares(mods: list[str], text_weight: float | None) -> dict[str, float]:
    """Each modality's share: equal, or text ``text_weight`` and the others the rest."""
    if text_weight is None or "text" not in mods or len(mods) == 1:
        return {m: 1.0 / len(mods) for m in mods}
    return {m: text_weight if m == "text" else (1.0 - text_weight) / (len(mods) - 1) for m in mods}


def share_vectors(features: Features, mods: list[str], means: dict[str, torch.Tensor], text_weight: float | None,
                  nonzero: bool = False) -> torch.Tensor:
    """``[sqrt(share_m) * centred_normalised(x_m)]`` over ``mods`` (``nonzero``: without the modalities of
    share 0). Shapes: features[m] (N, D_m) -> (N, sum D_m)"""
    share = content_shares(mods, text_weight)
    return torch.cat([share[m] ** 0.5 * centred_normalised(features[m][0].float(), features[m][1].bool(), means[m])
                      for m in mods if share[m] > 0 or not nonzero], 1)


def walk_width(mods: list[str], text_weight: float | None, modality_dims: dict[str, int]) -> int:
    """Width of the learned walk's input (the modalities with a share > 0); 0 when one has no known width."""
    shares = content_shares(mods, text_weight)
    if any(m not in modality_dims for m in shares):
        return 0
    return sum(modality_dims[m] for m, v in shares.items() if v > 0)


def walk_vectors(model, features: Features) -> torch.Tensor:
    """Input of the learned walk: the content terms' vectors without the modalities of share 0."""
    return model._knn_vectors(features, model.content_text_weight, nonzero=True)


def new_walk(model, dim: int | None = None, temperature: float | None = None,
             codes: bool | None = None) -> LearnedWalk | None:
    """An unfitted :class:`LearnedWalk` for ``model``'s current text share, attached when the graph is
    (``dim`` / ``temperature`` / ``codes``: those of its walk now); None when a kNN modality has no known width."""
    old = model.walk
    dim = dim if dim is not None else (old.dim if old is not None and old.dim < old.in_dim else 0)
    temperature = temperature if temperature is not None else (old.temperature if old is not None else 0.05)
    codes = codes if codes is not None else (old is not None and old.codes is not None)
    width = walk_width(model.knn_modalities, model.content_text_weight, model.modality_dims)
    if width == 0:
        return None
    walk = LearnedWalk(width, dim, temperature, model.num_items if codes else 0)
    walk = walk.to(model.user_emb.weight.device)
    if model.graph_ready:
        walk.attach(walk_vectors(model, model.features), model.train_edges, model.num_users)
    return walk
