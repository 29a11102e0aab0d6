"""GraphRec's collaborative backbone: a LightGCN trained to convergence on warm interactions, used
for warm items and carried over to cold items through their content neighbours.

The content-first GNN early-stops on cold validation, which comes long before its collaborative
embeddings have converged for warm items. The backbone is a separate ID-only LightGCN (He et al.,
SIGIR 2020; trained by :mod:`graphrec.recipes.backbone` with early stopping on warm validation)
whose vectors serve two roles:

* **warm items**: ``score = w_g * cos(u_warm, v_i) + b_u . b_i`` (GNN and backbone together,
  ``w_g`` calibrated on warm validation);
* **cold items (CF transfer)**: ``w_t * b_u . sum_j a_ij b_j`` over the item's ``k`` most
  content-similar warm items ``j`` (softmax weights ``a_ij`` of the content cosine): users are
  matched with the collaborative vectors of what the new item resembles ("content neighbours'
  CF vectors"), ``w_t`` calibrated on cold validation.

Buffers: ``user`` (U, d_b), ``item`` (I, d_b) and the calibrated ``warm_gnn_weight``,
``transfer_weight`` are persistent (checkpoints carry the trained backbone); the transfer
neighbours are rebuilt from content by :meth:`fit_neighbours`.

Shapes:
    warm_scores: users (B,) -> (B, I); transfer_scores: users (B,) -> (B, I)
"""

from __future__ import annotations

import torch
from torch import nn

from graphrec.graph.build import knn_graph_to_sources


class CFBackbone(nn.Module):
    """Backbone vectors, transfer neighbours and their calibrated weights.

    Args:
        num_users / num_items: sizes.
        dim: backbone embedding size (0 = no backbone).
        k / temperature: transfer neighbours per item and softmax temperature of their weights.
    """

    def __init__(self, num_users: int, num_items: int, dim: int = 64, k: int = 20, temperature: float = 0.05) -> None:
        super().__init__()
        self.dim, self.k, self.temperature = dim, k, temperature
        self.register_buffer("user", torch.zeros(num_users, dim))
        self.register_buffer("item", torch.zeros(num_items, dim))
        self.register_buffer("trained", torch.zeros((), dtype=torch.bool))
        self.register_buffer("warm_gnn_weight", torch.ones(()))
        self.register_buffer("transfer_weight", torch.zeros(()))
        for name in ("nb_idx", "nb_w", "warm_index", "keys"):
            self.register_buffer(name, None, persistent=False)

    def reset_parameters(self) -> None:
        self.user.zero_()
        self.item.zero_()
        self.trained.fill_(False)
        self.warm_gnn_weight.fill_(1.0)
        self.transfer_weight.zero_()

    @property
    def ready(self) -> bool:
        return self.dim > 0 and bool(self.trained)

    def set_embeddings(self, user: torch.Tensor, item: torch.Tensor) -> None:
        """Install trained backbone vectors (item rows of items without train edges are ignored)."""
        with torch.no_grad():
            self.user.copy_(user)
            self.item.copy_(item)
            self.trained.fill_(True)

    def fit_neighbours(self, item_vec: torch.Tensor, warm_index: torch.Tensor) -> None:
        """Each item's ``k`` most content-similar warm items (never itself), from content vectors."""
        self.warm_index, self.keys = warm_index, item_vec[warm_index]
        if self.dim == 0 or warm_index.numel() < 2:
            self.nb_idx = self.nb_w = None
            return
        pos = torch.full((item_vec.shape[0],), -1, dtype=torch.long, device=item_vec.device)
        pos[warm_index] = torch.arange(warm_index.numel(), device=item_vec.device)
        self.nb_idx, self.nb_w = knn_graph_to_sources(item_vec, self.keys, self.k, self.temperature, exclude=pos)

    def transfer_items(self, nb_idx: torch.Tensor | None = None, nb_w: torch.Tensor | None = None) -> torch.Tensor:
        """Neighbour-weighted backbone vectors (I or N, d_b) of the catalogue or of given neighbour lists."""
        idx = self.nb_idx if nb_idx is None else nb_idx
        w = self.nb_w if nb_w is None else nb_w
        if idx is None:
            return torch.zeros(self.item.shape[0] if nb_idx is None else 0, self.dim, device=self.item.device)
        return (self.item[self.warm_index][idx] * w.unsqueeze(-1)).sum(1)

    def new_item_neighbours(self, item_vec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Transfer neighbours of brand-new items (content vectors ``(N, D)``)."""
        return knn_graph_to_sources(item_vec, self.keys, self.k, self.temperature)

    @torch.no_grad()
    def warm_scores(self, users: torch.Tensor) -> torch.Tensor:
        return self.user[users] @ self.item.T

    @torch.no_grad()
    def transfer_scores(self, users: torch.Tensor) -> torch.Tensor:
        return self.user[users] @ self.transfer_items().T
