"""GraphRec: an inductive GNN recommender whose items start from content.

Item side (works for any item, including ones never seen in training):

1. each modality's features -> :class:`ModalityProjector` -> a view in the shared space;
2. :class:`GatedFusion` (or masked mean) over the views the item has -> content ``c_i``;
3. warm items (items with train interactions) add an ID embedding as a correction, dropped
   per item with probability ``id_dropout`` during training (DropoutNet, Volkovs et al.,
   NeurIPS 2017);
4. LightGCN propagation (He et al., SIGIR 2020) over the train user-item graph gives the
   collaborative embeddings of users and warm items;
5. the *cold view* of an item is ``a * c_i + (1 - a) * sum_j w_ij v_j`` where ``j`` are the
   item's ``k`` most content-similar **warm** items (fixed item-item content kNN graph over
   train items; messages flow warm -> item only, never from a cold item) and ``v_j`` their
   collaborative embeddings; ``a`` is learned.

Scores are cosines between the final user embedding and the final item embedding: the
collaborative embedding for warm items, the cold view for every other item. Items without
train interactions also get the content score terms of :class:`ContentScores` (the two-hop
content walk ``user -> train items -> content-similar items``, a popularity prior regressed from
content) and the learned content walk of :class:`LearnedWalk`, weighted by a calibration on
validation (:mod:`graphrec.recipes.calibrate`). A new item's embedding (:meth:`embed_items`,
:meth:`serving_items`) depends only on its own content and the fixed trained state, so it
equals what it would have had as a cold catalogue item.
"""

from __future__ import annotations

import torch
from torch import nn

from graphrec.graph.build import item_degree, knn_graph_to_sources, normalized_adjacency, pca
import graphrec.nn.serving_space as serving_space
from graphrec.nn.backbone import CFBackbone
from graphrec.nn.content_scores import ContentScores
from graphrec.nn.content_vectors import new_walk, share_vectors, walk_vectors
from graphrec.nn.content_walk import LearnedWalk
from graphrec.nn.fusion import GatedFusion, MaskedMeanFusion
from graphrec.nn.gnn import LightGCNPropagation
from graphrec.nn.projector import ModalityProjector

Features = dict[str, tuple[torch.Tensor, torch.Tensor]]


class GraphRec(nn.Module):
    """Content-first GNN recommender for item cold-start.

    Args:
        num_users: number of (warm) users.
        num_items: catalogue size at training time.
        modality_dims: feature size per modality, e.g. ``{"text": 384, "image": 1280}``.
        dim: embedding size.
        num_layers: LightGCN layers.
        proj_hidden: projector hidden width.
        dropout: projector dropout.
        fusion: ``"gated"`` or ``"mean"``.
        use_id_embedding: add an ID correction to warm items.
        id_dropout: probability of dropping a warm item's ID correction per training step.
        knn_k: warm content neighbours per item (0 = no kNN graph; cold view = content).
        knn_temperature: softmax temperature of the kNN message weights.
        knn_modalities: modalities used for kNN similarity (default: all of ``modality_dims``).
        prior_ridge: ridge strength of the content -> popularity regression (:class:`ContentScores`).
        reduce_dim: modalities wider than this enter their projector through a fixed PCA to
            ``reduce_dim`` components fitted on warm items (0 = off): a cheaper first layer.
        backbone_dim / transfer_k: size of the collaborative backbone (:class:`CFBackbone`; 0 =
            none) and the content neighbours its vectors are carried over from to cold items.
        content_text_weight: text's share in the content terms' vectors (None = equal shares).
        walk_in_dim / walk_dim / walk_temperature / walk_codes: the learned content walk (:class:`LearnedWalk`; input
            width: the content terms' vectors without modalities of share 0; 0 = no walk; codes: item codes on its user side).

    Shapes:
        score: users (B,) -> (B, num_items)
        embed_items: {name: (x (N, D_m), mask (N,))} -> (N, dim)
    """

    supports_cold = True

    def __init__(self, num_users: int, num_items: int, modality_dims: dict[str, int], dim: int = 64, num_layers: int = 3,
                 proj_hidden: int = 256, dropout: float = 0.1, fusion: str = "gated", use_id_embedding: bool = True,
                 id_dropout: float = 0.5, knn_k: int = 10, knn_temperature: float = 0.05,
                 knn_modalities: list[str] | None = None, prior_ridge: float = 1.0, reduce_dim: int = 0,
                 backbone_dim: int = 0, transfer_k: int = 20, content_text_weight: float | None = None,
                 walk_in_dim: int = 0, walk_dim: int = 0, walk_temperature: float = 0.05, walk_codes: bool = False) -> None:
        super().__init__()
        self.num_users, self.num_items, self.dim = num_users, num_items, dim
        self.modalities = list(modality_dims)
        self.modality_dims = dict(modality_dims)
        self.knn_modalities = list(knn_modalities or self.modalities)
        self.id_dropout, self.knn_k, self.knn_temperature = id_dropout, knn_k, knn_temperature
        self.content_text_weight = content_text_weight
        self.reduce = {m: reduce_dim for m, d in modality_dims.items() if 0 < reduce_dim < d}  # modality -> PCA size
        self.projectors = nn.ModuleDict({m: ModalityProjector(self.reduce.get(m, d), dim, proj_hidden, dropout)
                                         for m, d in modality_dims.items()})
        self.fusion = GatedFusion(dim) if fusion == "gated" else MaskedMeanFusion()
        self.user_emb = nn.Embedding(num_users, dim)
        self.item_id_emb = nn.Embedding(num_items, dim) if use_id_embedding else None
        self.mix_logit = nn.Parameter(torch.zeros(()))
        # Post-propagation correction of warm items, fitted only by the warm refinement stage
        # (graphrec.recipes.refine) with everything else frozen; never propagated, so users and
        # cold items are unaffected by it.
        self.warm_residual = nn.Parameter(torch.zeros(num_items, dim), requires_grad=False)
        # ... and of users when they score warm items (``normalize(u + r_u)``): same stage, same isolation.
        self.warm_user_residual = nn.Parameter(torch.zeros(num_users, dim), requires_grad=False)
        self.propagation = LightGCNPropagation(num_layers)
        self.content_scores = ContentScores(prior_ridge)
        self.backbone = CFBackbone(num_users, num_items, backbone_dim, transfer_k, knn_temperature)
        self.walk = LearnedWalk(walk_in_dim, walk_dim, walk_temperature, num_items if walk_codes else 0) if walk_in_dim > 0 else None
        # Fixed graph state, set by set_graph(): registered (non-persistent) buffers, so .to(device)
        # moves them; checkpoints store the graph *inputs* and rebuild the rest deterministically.
        for name in self._GRAPH_BUFFERS:
            self.register_buffer(name, None, persistent=False)
        for m in dict.fromkeys(self.modalities + self.knn_modalities):
            for kind in ("x", "mask", "knn_mean", "pca", "pca_mean", "xr"):
                self.register_buffer(f"{kind}__{m}", None, persistent=False)
        #: eval-mode (user, item, collab) embeddings; cleared by train(), set_graph(), residual updates
        self._eval_cache: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.reset_parameters()

    _GRAPH_BUFFERS = ("train_edges", "warm", "warm_index", "adj", "knn_keys", "knn_idx", "knn_w")

    def reset_parameters(self) -> None:
        for p in self.projectors.values():
            p.reset_parameters()
        self.fusion.reset_parameters()
        nn.init.normal_(self.user_emb.weight, std=0.1)
        if self.item_id_emb is not None:
            nn.init.zeros_(self.item_id_emb.weight)  # a correction: starts at nothing
        nn.init.constant_(self.mix_logit, 0.0)
        nn.init.zeros_(self.warm_residual)
        nn.init.zeros_(self.warm_user_residual)
        self.content_scores.reset_parameters()
        self.backbone.reset_parameters()
        if self.walk is not None:
            self.walk.reset_parameters()
        self._eval_cache = None

    # ------------------------------------------------------------------ graph state
    def set_graph(self, train_edges: torch.Tensor, features: Features) -> None:
        """Attach the fixed training graph and the catalogue's item features.

        Computes (train-only) feature means for the kNN similarity, the normalised adjacency,
        and the warm-item kNN graph. Deterministic: calling it again with the same inputs
        gives the same state, so checkpoints store these inputs rather than derived tensors.

        Shapes:
            train_edges: (2, E) [user, item]; features[m]: (x (num_items, D_m), mask (num_items,))
        """
        missing = [m for m in self.modalities + self.knn_modalities if m not in features]
        if missing:
            raise KeyError(f"GraphRec.set_graph: feature sets {sorted(set(missing))} missing (have {sorted(features)})")
        for m in self.modalities:
            x, mask = features[m]
            if x.shape != (self.num_items, self.modality_dims[m]) or mask.shape != (self.num_items,):
                raise ValueError(
                    f"GraphRec.set_graph: features {m!r} have shape {tuple(x.shape)}/{tuple(mask.shape)}, "
                    f"expected ({self.num_items}, {self.modality_dims[m]})/({self.num_items},)"
                )
        if train_edges.numel() and (int(train_edges[0].max()) >= self.num_users or int(train_edges[1].max()) >= self.num_items):
            raise ValueError("GraphRec.set_graph: train edge index out of range of num_users/num_items")
        self.train_edges = train_edges.long()
        for m, (x, mask) in features.items():
            if m in self.modalities or m in self.knn_modalities:
                setattr(self, f"x__{m}", x.float())
                setattr(self, f"mask__{m}", mask.bool())
        self.warm = item_degree(self.train_edges, self.num_items) > 0  # (I,)
        self.warm_index = torch.nonzero(self.warm).flatten()  # (S,)
        self.adj = normalized_adjacency(self.train_edges, self.num_users, self.num_items)
        # train-fitted centring statistics for the kNN similarity (warm items only)
        feats = self.features
        for m, k in self.reduce.items():  # fixed PCA of wide modalities, fitted on warm items only
            x, mask = feats[m]
            mean, comp = pca(x[mask & self.warm], k)
            setattr(self, f"pca__{m}", comp)
            setattr(self, f"pca_mean__{m}", mean)
            setattr(self, f"xr__{m}", (x - mean) @ comp)  # the attached catalogue, reduced once
        for m in self.knn_modalities:
            x, mask = feats[m]
            sel = mask & self.warm
            setattr(self, f"knn_mean__{m}", x[sel].mean(0) if sel.any() else torch.zeros(x.shape[1]))
        item_vec = self._knn_vectors(feats)  # (I, D) train-centred content vectors
        self.knn_keys = item_vec[self.warm_index]  # (S, D)
        self.content_scores.fit(self._content_vectors(feats), self.train_edges, self.warm, self.num_users)
        self.backbone.fit_neighbours(item_vec, self.warm_index)
        if self.walk is not None:
            self.walk.attach(walk_vectors(self, feats), self.train_edges, self.num_users)
        pos = torch.full((self.num_items,), -1, dtype=torch.long)
        pos[self.warm_index] = torch.arange(len(self.warm_index))
        if self.knn_k > 0 and len(self.warm_index) > 1:
            self.knn_idx, self.knn_w = knn_graph_to_sources(item_vec, self.knn_keys, self.knn_k, self.knn_temperature,
                                                            exclude=pos)
        else:
            self.knn_idx, self.knn_w = None, None
        self._eval_cache = None

    @property
    def features(self) -> Features:
        """The attached item features ``{name: (x (I, D_m), mask (I,))}`` (buffers set by :meth:`set_graph`)."""
        return {m: (getattr(self, f"x__{m}"), getattr(self, f"mask__{m}"))
                for m in dict.fromkeys(self.modalities + self.knn_modalities) if getattr(self, f"x__{m}") is not None}

    @property
    def graph_ready(self) -> bool:
        return self.adj is not None

    def set_warm_residuals(self, item_res: torch.Tensor, user_res: torch.Tensor) -> None:
        """Install warm-refinement residuals: ``item_res`` (S, d) for the warm items, ``user_res`` (U, d)."""
        with torch.no_grad():
            self.warm_residual[self.warm_index] = item_res
            self.warm_user_residual.copy_(user_res)
        self._eval_cache = None

    def _knn_vectors(self, features: Features, text_weight: float | None = None, nonzero: bool = False) -> torch.Tensor:
        """The train-centred content vectors (:func:`~graphrec.nn.content_vectors.share_vectors`). Shapes: (N, sum D)"""
        return share_vectors(features, self.knn_modalities, {m: getattr(self, f"knn_mean__{m}") for m in self.knn_modalities},
                             text_weight, nonzero)

    def _content_vectors(self, features: Features) -> torch.Tensor:
        """Vectors of the content-walk / prior terms: :meth:`_knn_vectors` with text's share ``content_text_weight``."""
        return self._knn_vectors(features, self.content_text_weight)

    def set_content_text_weight(self, w: float | None) -> None:
        """Refit the content terms with text's share ``w`` (their calibrated weights are kept); the learned
        walk, trained on the old share's vectors, starts again unfitted (:meth:`reset_walk`)."""
        self.content_text_weight = w
        if getattr(self, "model_config", None) is not None:
            self.model_config = self.model_config.replace(content_text_weight=w)
        self.content_scores.fit(self._content_vectors(self.features), self.train_edges, self.warm, self.num_users)
        self.walk = new_walk(self) if self.walk is not None else None
        self._eval_cache = None

    def reset_walk(self, dim: int | None = None, temperature: float | None = None, codes: bool | None = None) -> None:
        """A new, unfitted learned walk for the current text share (``dim`` / ``temperature`` / ``codes``: the old ones)."""
        self.walk = new_walk(self, dim, temperature, codes)
        self._eval_cache = None

    def _check_graph(self) -> None:
        if not self.graph_ready:
            raise RuntimeError("GraphRec: call set_graph(train_edges, features) first")

    # ------------------------------------------------------------------ item tower
    def _projector_input(self, m: str, x: torch.Tensor) -> torch.Tensor:
        """Features of modality ``m`` as its projector reads them (PCA-reduced when ``m`` is wide)."""
        if m not in self.reduce:
            return x
        if x is getattr(self, f"x__{m}"):  # the attached features: reduced once by set_graph
            return getattr(self, f"xr__{m}")
        return (x - getattr(self, f"pca_mean__{m}")) @ getattr(self, f"pca__{m}")  # (N, D) -> (N, k)

    def content_views(self, features: Features, rows: torch.Tensor | None = None,
                      ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Fused content embedding plus the per-modality views, of all rows or of ``rows`` (n,)
        only (selected after the fixed PCA, so the once-reduced attached features are reused).

        Returns:
            ``(content (N, d), mask (N, M), views {m: (N, d)})`` (n rows when ``rows`` is given).
        """
        pick = (lambda t: t) if rows is None else (lambda t: t[rows])  # noqa: E731
        views = {m: self.projectors[m](pick(self._projector_input(m, features[m][0].float()))) for m in self.modalities}
        stacked = torch.stack([views[m] for m in self.modalities], 1)  # (N, M, d)
        mask = torch.stack([pick(features[m][1].bool()) for m in self.modalities], 1)  # (N, M)
        return self.fusion(stacked, mask), mask, views

    def propagate(self, id_keep: torch.Tensor | None = None, features: Features | None = None,
                  warm_only: bool = False) -> dict[str, torch.Tensor]:
        """Full-graph forward: content of every catalogue item, LightGCN, cold views.

        Args:
            id_keep: optional (num_items,) bool; warm items with False lose their ID
                correction for this pass (DropoutNet-style training).
            features: optional replacement of the attached features for this pass (e.g.
                training-time modality dropout / feature noise); same shapes. The kNN graph
                stays the one built by ``set_graph``.
            warm_only: item tower and cold views of warm items only, zeros in the other rows
                (training: an item without train edges is an isolated node that no loss reads).

        Returns:
            dict with ``user`` (U, d), ``collab`` (I, d), ``content`` (I, d), ``cold`` (I, d),
            ``item`` (I, d) final item embeddings, ``views`` {m: (I, d)}, ``view_mask`` (I, M).
        """
        self._check_graph()
        w = self.warm_index if warm_only and len(self.warm_index) < self.num_items else None
        full = (lambda t: t) if w is None else (lambda t: t.new_zeros((self.num_items, *t.shape[1:])).index_copy(0, w, t))  # noqa: E731
        content, vmask, views = self.content_views(self.features if features is None else features, w)
        h = full(content)
        if self.item_id_emb is not None:
            keep = self.warm if id_keep is None else (self.warm & id_keep)
            h = h + self.item_id_emb.weight * keep.unsqueeze(-1).to(h.dtype)
        x = torch.cat([self.user_emb.weight, h], 0)  # (U + I, d)
        out = self.propagation(x, self.adj)
        users, collab = out[: self.num_users], out[self.num_users :]
        knn = (self.knn_idx, self.knn_w) if w is None or self.knn_idx is None else (self.knn_idx[w], self.knn_w[w])
        cold = full(self.cold_view(content, *knn, collab))
        item = torch.where(self.warm.unsqueeze(-1), collab + self.warm_residual, cold)
        return {"user": users, "collab": collab, "content": full(content), "cold": cold, "item": item,
                "views": {m: full(v) for m, v in views.items()}, "view_mask": full(vmask)}

    def cold_view(self, content: torch.Tensor, knn_idx: torch.Tensor | None, knn_w: torch.Tensor | None, collab: torch.Tensor) -> torch.Tensor:
        """Content plus messages from the k most content-similar warm items.

        Shapes: content (N, d), knn_idx/knn_w (N, k) positions in ``warm_index``, collab (I, d) -> (N, d)
        """
        if knn_idx is None:
            return content
        # sum_j w_ij v_j as one fused gather + weighted sum (no (N, k, d) intermediate)
        agg = nn.functional.embedding_bag(knn_idx, collab[self.warm_index], per_sample_weights=knn_w.to(collab.dtype),
                                          mode="sum")  # (N, d)
        a = torch.sigmoid(self.mix_logit)
        return a * content + (1 - a) * agg

    # ------------------------------------------------------------------ inference
    def train(self, mode: bool = True) -> "GraphRec":
        self._eval_cache = None
        return super().train(mode)

    @torch.no_grad()
    def _eval_embeddings(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(users, items, collab)``: normalised final embeddings and raw collaborative item
        embeddings of a full forward pass; cached in eval mode (``_eval_cache``)."""
        if self._eval_cache is not None and not self.training:
            return self._eval_cache
        out = self.propagate()
        res = (nn.functional.normalize(out["user"], dim=-1), nn.functional.normalize(out["item"], dim=-1), out["collab"])
        if not self.training:
            self._eval_cache = res
        return res

    @torch.no_grad()
    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(users (U, d), items (I, d))`` L2-normalised final embeddings (cached in eval mode)."""
        u, i, _ = self._eval_embeddings()
        return u, i

    @torch.no_grad()
    def score(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of users against every catalogue item. Shapes: (B,) -> (B, num_items).

        Warm items: cosine with the (refined) warm user vector, times ``w_g`` plus the backbone's
        score when a backbone is trained. Other items: cosine plus the calibrated content terms
        (:class:`ContentScores`), the backbone's CF transfer and the learned content walk
        (:class:`LearnedWalk`; all zero before calibration).
        """
        u, i = self.embeddings()
        s, cold, bb = u[users] @ i.T, ~self.warm.unsqueeze(0), self.backbone
        if self.content_scores.active:
            s = torch.where(cold, s + self.content_scores.score(users), s)
        if bb.ready and bool(bb.transfer_weight != 0):
            s = torch.where(cold, s + bb.transfer_weight * bb.transfer_scores(users), s)
        if self.walk is not None and self.walk.active:
            s = torch.where(cold, s + self.walk.weight * self.walk.scores(users), s)
        warm_user = self.warm_user_vectors(users) if bool(self.warm_user_residual.any()) else u[users]
        sw = warm_user @ i[self.warm_index].T  # (B, S)
        if bb.ready:
            sw = bb.warm_gnn_weight * sw + bb.user[users] @ bb.item[self.warm_index].T
        s[:, self.warm_index] = sw
        return s

    @torch.no_grad()
    def warm_user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        """Users as they score warm items: ``normalize(u + r_u)`` (= ``u`` before warm refinement). (B,) -> (B, d)"""
        u, _ = self.embeddings()
        return nn.functional.normalize(u[users] + self.warm_user_residual[users], dim=-1)

    @torch.no_grad()
    def serving_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings for plain inner-product search that reproduce :meth:`score` exactly
        (:func:`graphrec.nn.serving_space.serving_embeddings`). Shapes: ``(U, 2d + d_b + D + 1), (I, ...)``"""
        return serving_space.serving_embeddings(self)

    @torch.no_grad()
    def embed_items(self, features: Features) -> torch.Tensor:
        """Embed brand-new items from content alone (L2-normalised, comparable to :meth:`embeddings`).

        The result equals the embedding the items would have had as cold catalogue items:
        it uses only their own features, the trained weights, the warm items' fixed
        collaborative embeddings and the train-fitted kNN statistics.

        Shapes:
            features[m]: (x (N, D_m), mask (N,)) -> (N, d)
        """
        self._check_graph()
        missing = sorted(set(self.modalities + self.knn_modalities) - set(features))
        if missing:
            raise KeyError(f"GraphRec.embed_items: feature sets {missing} missing (have {sorted(features)})")
        if self.training:
            raise RuntimeError("GraphRec.embed_items: call .eval() first (new items are embedded by the trained, "
                               "eval-mode model)")
        _, _, collab = self._eval_embeddings()
        content, _, _ = self.content_views(features)
        if self.knn_idx is not None:
            idx, w = knn_graph_to_sources(self._knn_vectors(features), self.knn_keys, self.knn_k, self.knn_temperature)
            cold = self.cold_view(content, idx, w, collab)
        else:
            cold = content
        return nn.functional.normalize(cold, dim=-1)

    @torch.no_grad()
    def serving_items(self, features: Features) -> torch.Tensor:
        """Brand-new items in the space of :meth:`serving_embeddings`, exactly as cold catalogue items
        (:func:`graphrec.nn.serving_space.serving_items`). Shapes: features[m] (N, D_m) -> (N, 2d + d_b + D + 1)"""
        return serving_space.serving_items(self, features)
