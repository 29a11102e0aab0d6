"""Content kNN: user profile = mean of the features of the user's training items.

Features are mean-centred per modality (mean fitted on training items only) and L2-normalised
(:func:`graphrec.baselines.common.content_features`); the profile is the mean of the user's
training items' rows, and an item's score is the cosine between profile and item row. With
two modalities the rows are ``[sqrt(w) * text, sqrt(1 - w) * image]``, so the score mixes the
two per-modality similarities with weight ``w`` (``text_weight``, tuned on validation:
1 = text only, 0 = image only). This is the item-based content recommender of Lops et al.,
"Content-based Recommender Systems: State of the Art and Trends" (2011), in its simplest form.
"""

from __future__ import annotations

from typing import Any

import torch

from graphrec.baselines.common import EmbeddingScorer, content_features, resolve_params
from graphrec.data.dataset import RecData

DEFAULTS: dict[str, Any] = {
    "text_weight": 0.5,  # weight of the "text" modality; the rest goes to the other modalities
}


def inert_params(data: RecData) -> dict[str, str]:
    """``text_weight`` does nothing unless the data has a ``text`` and another modality."""
    names = sorted(data.features)
    if "text" not in names or len(names) == 1:
        return {"text_weight": f"not tuned: one modality ({', '.join(names)})"}
    return {}


def modality_weights(data: RecData, text_weight: float) -> dict[str, float]:
    """Weights per loaded modality: ``text`` gets ``text_weight``, the others share the rest."""
    names = sorted(data.features)
    if "text" not in names or len(names) == 1:
        return {n: 1.0 / len(names) for n in names}
    others = [n for n in names if n != "text"]
    return {"text": text_weight, **{n: (1.0 - text_weight) / len(others) for n in others}}


def fit_content_knn(data: RecData, params: dict[str, Any] | None = None, seed: int = 0,
                    validate=None, progress: bool = True, teacher=None) -> EmbeddingScorer:
    """Fit the content kNN baseline (deterministic; ``seed`` is unused).

    Shapes:
        profiles: (U, D) mean of normalised train-item rows; items: (N, D)
    """
    p = resolve_params("content_knn", DEFAULTS, params)
    if not 0.0 <= p["text_weight"] <= 1.0:
        raise ValueError(f"content_knn: text_weight must be in [0, 1], got {p['text_weight']}")
    x = content_features(data, weights=modality_weights(data, p["text_weight"]))  # (N, D)
    u, i = data.train
    prof = torch.zeros(data.num_users, x.shape[1]).index_add_(0, u, x[i])  # (U, D)
    prof = torch.nn.functional.normalize(prof, dim=1)  # mean then cosine: the scale drops out
    return EmbeddingScorer(prof, x)
