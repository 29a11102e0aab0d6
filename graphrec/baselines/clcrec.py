"""CLCRec (Wei, Wang, Li, Nie, Li, Li, Chua, "Contrastive Learning for Cold-Start
Recommendation", ACM MM 2021).

Learned user and item ID embeddings plus a content encoder ``f(x_i)`` (MLP). Two InfoNCE
objectives with cosine similarity and temperature ``tau``:

* U-I (user-item): the user against its positive item and sampled negatives, where each item
  is represented by its ID embedding or, for a random fraction ``content_ratio``, by
  ``f(x_i)`` (so users learn to match content-only items);
* R-E (representation-embedding): an item's ID embedding against its content encoding
  (positive) and the negatives' content encodings, maximising their mutual information.

``loss = lam * L_RE + (1 - lam) * L_UI + reg * mean(emb^2)``. Inference: warm items use their
ID embedding, items without training interactions their content encoding. Negatives: one
set of ``num_neg`` items per batch, shared by every positive of the batch (sampled softmax),
drawn from training items; the official code draws per positive, which costs ``num_neg``
content encodings per example.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from graphrec.baselines.common import (TRAINING_DEFAULTS, BatchLoss, BPRSampler, EmbeddingScorer, Validator, content_features, fit_scorer,
                                       generator, per_unique, resolve_params, train_item_mask)
from graphrec.baselines.towers import apply_in_batches
from graphrec.data.dataset import RecData

DEFAULTS: dict[str, Any] = {
    **{k: v for k, v in TRAINING_DEFAULTS.items() if k != "weight_decay"},
    "dim": 64,
    "hidden": 256,
    "tau": 0.2,
    "lam": 0.5,  # weight of the R-E loss
    "content_ratio": 0.5,  # share of items represented by f(x) in the U-I loss
    "num_neg": 256,
    "reg": 1e-3,
    "batch_size": 2048,
}


class CLCRec(nn.Module):
    """User/item ID embeddings and a content encoder.

    Shapes:
        encode_content: (B, D) -> (B, dim)
    """

    def __init__(self, num_users: int, num_items: int, content_dim: int, hidden: int, dim: int) -> None:
        super().__init__()
        self.user = nn.Embedding(num_users, dim)
        self.item = nn.Embedding(num_items, dim)
        self.encoder = nn.Sequential(nn.Linear(content_dim, hidden), nn.LeakyReLU(), nn.Linear(hidden, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_normal_(self.user.weight)
        nn.init.xavier_normal_(self.item.weight)
        for m in self.encoder:
            if isinstance(m, nn.Linear):
                m.reset_parameters()

    def encode_content(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


def info_nce(anchor: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, tau: float) -> torch.Tensor:
    """InfoNCE with cosine similarity; row b's positive is ``pos[b]``, negatives shared.

    Shapes:
        anchor, pos: (B, d); neg: (M, d) -> ()
    """
    a, p, n = F.normalize(anchor, dim=1), F.normalize(pos, dim=1), F.normalize(neg, dim=1)
    logits = torch.cat([(a * p).sum(1, keepdim=True), a @ n.T], 1) / tau  # (B, 1+M)
    return F.cross_entropy(logits, torch.zeros(len(a), dtype=torch.long))


def fit_clcrec(data: RecData, params: dict[str, Any] | None = None, seed: int = 0,
               validate: Validator | None = None, progress: bool = True, teacher=None) -> EmbeddingScorer:
    """Fit CLCRec on ``data.train``; early stopping on cold-validation NDCG@20."""
    p = resolve_params("clcrec", DEFAULTS, params)
    gen = generator(seed)
    X = content_features(data)
    warm = train_item_mask(data)
    pool = torch.nonzero(warm).flatten()
    model = CLCRec(data.num_users, data.num_items, X.shape[1], p["hidden"], p["dim"])
    opt = torch.optim.Adam(model.parameters(), lr=p["lr"])
    sampler = BPRSampler(data, gen)

    def loss(u: torch.Tensor, i: torch.Tensor, _j: torch.Tensor) -> torch.Tensor:
        neg = pool[torch.randint(len(pool), (p["num_neg"],), generator=gen)]  # (M,)
        items = torch.cat([i, neg])
        ids = model.item(items)
        feats = per_unique(lambda k: model.encode_content(X[k]), items)  # (B+M, d)
        swap = (torch.rand(len(items), 1, generator=gen) < p["content_ratio"]).float()
        mixed = swap * feats + (1 - swap) * ids
        eu = model.user(u)
        B = len(i)
        l_ui = info_nce(eu, mixed[:B], mixed[B:], p["tau"])
        l_re = info_nce(ids[:B], feats[:B], feats[B:], p["tau"])
        reg = eu.pow(2).mean() + ids.pow(2).mean()
        return p["lam"] * l_re + (1 - p["lam"]) * l_ui + p["reg"] * reg

    def snapshot() -> EmbeddingScorer:
        feats = apply_in_batches(model.encoder, X)
        items = torch.where(warm.unsqueeze(1), model.item.weight.detach(), feats)
        return EmbeddingScorer(F.normalize(model.user.weight.detach(), dim=1), F.normalize(items, dim=1))

    return fit_scorer(BatchLoss(loss, model), lambda _: sampler.epoch(p["batch_size"]), opt, snapshot, validate, "cold",
                      p, progress, desc="clcrec")
