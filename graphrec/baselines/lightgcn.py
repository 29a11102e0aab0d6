"""LightGCN (He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for
Recommendation", SIGIR 2020) through PyG's :class:`torch_geometric.nn.models.LightGCN`.

Warm only (``supports_cold = False``): item vectors are free embeddings, so an item without
training edges has nothing to propagate. The graph is ``data.train`` only (users
``0..U-1``, items ``U..U+N-1``, both directions).

Speed: on 2 CPU cores PyG's message passing over ~800k edges costs ~1.5-5 s per forward +
backward; the training loop therefore propagates with one pre-normalised sparse CSR matrix whose
symmetry gives a cheap backward (:func:`graphrec.nn.gnn.symmetric_spmm`), the same computation as
``LightGCN.get_embedding`` with symmetric normalisation (checked in tests/test_baselines.py),
using PyG's parameters, layer weights ``alpha`` and BPR loss (``recommendation_loss``).
"""

from __future__ import annotations

from typing import Any

import torch

from graphrec.baselines.common import (TRAINING_DEFAULTS, BatchLoss, BPRSampler, EmbeddingScorer, Validator, fit_scorer, generator,
                                       resolve_params, train_item_mask)
from graphrec.data.dataset import RecData
from graphrec.nn.gnn import symmetric_spmm

DEFAULTS: dict[str, Any] = {
    **{k: v for k, v in TRAINING_DEFAULTS.items() if k != "weight_decay"},
    "dim": 64,
    "layers": 2,
    "lr": 1e-2,
    "reg": 1e-4,  # lambda_reg of PyG's BPR loss
    "batch_size": 32768,
    "eval_every": 2,
}


def train_graph(data: RecData) -> torch.Tensor:
    """Undirected user-item edge_index of the training edges. Shapes: (2, 2E), items offset by U."""
    u, i = data.train
    i = i + data.num_users
    return torch.cat([torch.stack([u, i]), torch.stack([i, u])], 1)


def normalized_adjacency(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """``D^-1/2 A D^-1/2`` as a sparse COO matrix (what LGConv's ``gcn_norm`` computes)."""
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    ei, w = gcn_norm(edge_index, None, num_nodes, add_self_loops=False)
    return torch.sparse_coo_tensor(ei.flip(0), w, (num_nodes, num_nodes), check_invariants=False).coalesce().to_sparse_csr()


def propagate(model, adj: torch.Tensor) -> torch.Tensor:
    """``sum_l alpha_l A^l E``, identical to ``model.get_embedding(edge_index)``. Shapes: (U+N, d).

    ``adj`` is symmetric, so the backward of each product reuses it (no transpose per step):
    the efficient form of LightGCN (precomputed normalised sparse adjacency).
    """
    x = model.embedding.weight
    out = x * model.alpha[0]
    for k in range(model.num_layers):
        x = symmetric_spmm(adj, x) if torch.is_grad_enabled() else torch.sparse.mm(adj, x)  # (U+N, d)
        out = out + x * model.alpha[k + 1]
    return out


def fit_lightgcn(data: RecData, params: dict[str, Any] | None = None, seed: int = 0,
                 validate: Validator | None = None, progress: bool = True, teacher=None) -> EmbeddingScorer:
    """Fit LightGCN with BPR on ``data.train``; early stopping on warm-validation NDCG@20.

    Returns:
        an :class:`EmbeddingScorer` (``supports_cold = False``) with a ``history`` attribute.
    """
    from torch_geometric.nn.models import LightGCN

    p = resolve_params("lightgcn", DEFAULTS, params)
    gen = generator(seed)
    U = data.num_users
    model = LightGCN(U + data.num_items, p["dim"], p["layers"])
    adj = normalized_adjacency(train_graph(data), U + data.num_items)
    opt = torch.optim.Adam(model.parameters(), lr=p["lr"])
    sampler = BPRSampler(data, gen)
    valid = train_item_mask(data)

    def loss(u: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        emb = propagate(model, adj)  # (U+N, d)
        eu, ei, ej = emb[u], emb[i + U], emb[j + U]
        nodes = torch.cat([u, i + U, j + U])
        return model.recommendation_loss((eu * ei).sum(1), (eu * ej).sum(1), node_id=nodes, lambda_reg=p["reg"])

    @torch.no_grad()
    def snapshot() -> EmbeddingScorer:
        emb = propagate(model, adj)
        return EmbeddingScorer(emb[:U], emb[U:], valid_items=valid, supports_cold=False)

    return fit_scorer(BatchLoss(loss, model), lambda _: sampler.epoch(p["batch_size"]), opt, snapshot, validate, "warm",
                      p, progress, desc="lightgcn")
