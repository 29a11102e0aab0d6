"""The GraphRec training task: model + weighted losses -> named loss terms.

``GraphRecTask(batch)`` returns ``{"<name>_loss": tensor, ..., "loss": weighted total}`` so the
trainer stays generic; adding a term (a later issue adds Barlow Twins, masked-genre prediction,
feature reconstruction, consistency) means one method here plus a weight in
``TrainConfig.loss_weights`` (a term with weight 0 is not computed).

Terms:
    rec: link prediction on the final (collaborative) embeddings of warm items.
    cold_rec: the same ranking loss with the items' *cold views* (content + warm kNN
        messages), teaching the item tower to rank like the collaborative model (DropoutNet /
        ALDI motivation).
    align: InfoNCE between each modality view and the collaborative view (CLCRec).
    modal: InfoNCE between the text view and the image view of the same item.
    reg: L2 on the layer-0 user and ID embeddings of the batch.
    barlow: Barlow Twins (Zbontar et al., ICML 2021) between two views of each batch user and/or
        two augmented content views of each batch item (modality dropout + feature noise),
        through projectors. User views are built over collaborative item embeddings: on data
        with timestamps (``train_seq`` given), two random in-order subsequences of the recent
        history through a GRU / causal-transformer encoder (sequence view); otherwise two random
        subsets of the history, mean-pooled (set view; ml1m-mm has no timestamps).
    genre: masked genre prediction (S3-Rec) from the item's content embedding computed with
        the ``genre_hidden`` modalities removed (the default text template contains genres).
    recon: reconstruction of each modality's frozen features from the final item embedding.
    consist: consistency of the content embedding under modality dropout + noise (clean view
        as a stop-gradient target).

Training-time modality dropout / feature noise of the whole forward pass (``modality_dropout``,
``feature_noise``) applies to every term. Which terms are on by default follows the objective
ablation (``TrainConfig.loss_weights``); a term with weight 0 is not computed.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from graphrec.augment import history_subset, mask_modality, modality_dropout, perturb_features, sequence_subset, set_view
from graphrec.losses import LogitScale, bpr_loss, info_nce, l2_reg, mask_bias, sampled_softmax_loss
from graphrec.losses_ssl import barlow_twins_loss, consistency_loss, feature_reconstruction_loss, masked_attribute_loss
from graphrec.nn.heads import BarlowProjector, FeatureReconstructor, GenreClassifier
from graphrec.nn.model import Features, GraphRec
from graphrec.nn.sequence import SequenceUserEncoder
from graphrec.training.config import TrainConfig


class GraphRecTask(nn.Module):
    """Combines a :class:`GraphRec` with the configured loss terms.

    Args:
        model: the model (graph attached with ``set_graph``).
        cfg: trainer config (loss kind, weights, temperatures).

    Shapes:
        forward: users (B,), pos (B,), neg (N,) shared or (B, N), neg_valid (B, N) -> dict of scalars
    """

    def __init__(self, model: GraphRec, cfg: TrainConfig, genre_targets: torch.Tensor | None = None,
                 genre_mask: torch.Tensor | None = None, train_csr: tuple[torch.Tensor, torch.Tensor] | None = None,
                 train_seq: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg
        #: current loss weights; the trainer's dynamic weighting replaces them after validations
        self.weights = dict(cfg.loss_weights)
        self.logit_scales = nn.ModuleDict(
            {n: LogitScale(cfg.init_temperature, cfg.min_temperature, cfg.max_temperature) for n in ("align", "modal")}
        )
        # self-supervised heads exist only for terms switched on (issue 8)
        self.heads = nn.ModuleDict()
        d = model.dim
        if cfg.weight("barlow") > 0:
            for v in cfg.barlow_views:
                self.heads[f"barlow_{v}"] = BarlowProjector(d, cfg.barlow_dim, cfg.barlow_dim)
            if "user" in cfg.barlow_views:
                if train_seq is not None:  # ordered view (data with timestamps)
                    self.heads["user_seq"] = SequenceUserEncoder(d, cfg.sequence_encoder, max_len=train_seq[0].shape[1])
                elif cfg.user_view == "sequence":
                    raise ValueError("GraphRecTask: train.user_view = 'sequence' needs train_seq "
                                     "(recent_histories of timestamped train interactions)")
                elif train_csr is None:
                    raise ValueError("GraphRecTask: Barlow Twins user views need train_csr (RecData.csr('train'))")
        if cfg.weight("genre") > 0:
            if genre_targets is None or genre_mask is None:
                raise ValueError("GraphRecTask: loss_weights.genre > 0 needs genre targets (items table column `genres`)")
            if genre_targets.shape[0] != model.num_items:
                raise ValueError(f"GraphRecTask: genre targets have {genre_targets.shape[0]} rows, model has {model.num_items} items")
            if not [mm for mm in model.modalities if mm not in cfg.genre_hidden]:
                raise ValueError(f"GraphRecTask: genre_hidden {cfg.genre_hidden} hides every modality {model.modalities}")
            self.heads["genre"] = GenreClassifier(d, genre_targets.shape[1], hidden=d)
        if cfg.weight("recon") > 0:
            for mm in model.modalities:
                self.heads[f"recon_{mm}"] = FeatureReconstructor(d, model.modality_dims[mm], hidden=2 * d)
        self.genre_targets, self.genre_mask = genre_targets, genre_mask
        self.train_csr = train_csr
        self.train_seq = train_seq

    def weight(self, term: str) -> float:
        """Current weight of a term (0 = not computed)."""
        return float(self.weights.get(term, 0.0))

    def _rank_loss(self, u: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, valid: torch.Tensor | None,
                   bias: torch.Tensor | None = None) -> torch.Tensor:
        # cosine scores / T, (B,) and (B, N); neg is (N, d) shared by the batch or (B, N, d) per user.
        # u (B x d) is scaled by 1/T rather than the (B, N) scores; the softmax masks with the
        # additive ``bias`` (:func:`mask_bias` of ``valid``, shared by both ranking terms).
        u = u / self.cfg.rec_temperature
        s_pos = (u * pos).sum(-1)
        s_neg = u @ neg.T if neg.dim() == 2 else torch.einsum("bd,bnd->bn", u, neg)
        if self.cfg.rec_loss == "bpr":
            return bpr_loss(s_pos, s_neg, valid)
        return sampled_softmax_loss(s_pos, s_neg, bias=bias)

    def forward(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                neg_valid: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Named loss terms for one batch.

        Args:
            users, pos: a batch of train edges.
            neg: negatives, either (N,) shared by the batch or (B, N) per user.
            neg_valid: optional (B, N) bool, False where a negative is a train positive of the
                user (ignored by the ranking losses).
        """
        cfg, m = self.cfg, self.model
        id_keep = None
        if m.training and m.item_id_emb is not None and m.id_dropout > 0:
            id_keep = torch.rand(m.num_items) >= m.id_dropout
        feats = None
        if m.training and (cfg.modality_dropout > 0 or cfg.feature_noise > 0):
            feats = {k: m.features[k] for k in m.modalities}
            if cfg.modality_dropout > 0:
                feats, _ = modality_dropout(feats, cfg.modality_dropout)
            if cfg.feature_noise > 0:
                feats = perturb_features(feats, cfg.feature_noise)
        out = m.propagate(id_keep, feats, warm_only=m.training)  # isolated (non-train) items: no loss reads them
        u = F.normalize(out["user"][users], dim=-1)  # (B, d)
        terms: dict[str, torch.Tensor] = {}
        bias = None
        if neg_valid is not None and cfg.rec_loss != "bpr":
            bias = mask_bias(neg_valid, u.dtype)  # one additive mask for both ranking terms
        if self.weight("rec") > 0:
            item = F.normalize(out["collab"], dim=-1)
            terms["rec"] = self._rank_loss(u, item[pos], item[neg], neg_valid, bias)
        if self.weight("cold_rec") > 0:
            cold = F.normalize(out["cold"], dim=-1)
            terms["cold_rec"] = self._rank_loss(u, cold[pos], cold[neg], neg_valid, bias)
        if self.weight("align") > 0 or self.weight("modal") > 0:
            items = torch.unique(pos)
            if items.numel() > cfg.contrastive_items:
                items = items[torch.randperm(items.numel())[: cfg.contrastive_items]]
            vm = out["view_mask"][items]  # (n, M)
            views = {k: v[items] for k, v in out["views"].items()}
            if self.weight("align") > 0:
                collab = out["collab"][items]
                parts = [info_nce(views[k][vm[:, j]], collab[vm[:, j]], self.logit_scales["align"]()) for j, k in enumerate(m.modalities)]
                terms["align"] = torch.stack(parts).mean()
            if self.weight("modal") > 0:
                parts = []
                for (j1, k1), (j2, k2) in itertools.combinations(enumerate(m.modalities), 2):
                    both = vm[:, j1] & vm[:, j2]
                    parts.append(info_nce(views[k1][both], views[k2][both], self.logit_scales["modal"]()))
                terms["modal"] = torch.stack(parts).mean() if parts else out["content"].sum() * 0.0
        if self.weight("reg") > 0:
            regs = [m.user_emb.weight[users]]
            if m.item_id_emb is not None:
                regs += [m.item_id_emb.weight[pos], m.item_id_emb.weight[neg.reshape(-1)[: len(pos)]]]
            terms["reg"] = l2_reg(*regs)
        self._ssl_terms(out, users, pos, terms)
        result = {f"{k}_loss": v for k, v in terms.items()}
        result["loss"] = sum(self.weight(k) * v for k, v in terms.items())
        return result

    # ------------------------------------------------------------------ self-supervised terms (issue 8)
    def _aug_features(self, items: torch.Tensor, p_drop: float, noise: float) -> Features:
        """Batch items' features with modality dropout + relative feature noise (a fresh random view)."""
        f = {mm: (self.model.features[mm][0][items], self.model.features[mm][1][items]) for mm in self.model.modalities}
        if p_drop > 0:
            f, _ = modality_dropout(f, p_drop)
        if noise > 0:
            f = perturb_features(f, noise)
        return f

    def _ssl_terms(self, out: dict, users: torch.Tensor, pos: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        cfg, m = self.cfg, self.model
        items = torch.unique(pos)
        if items.numel() > cfg.ssl_items:
            items = items[torch.randperm(items.numel())[: cfg.ssl_items]]
        if self.weight("barlow") > 0:
            parts = []
            if "item" in cfg.barlow_views and items.numel() >= 2:  # BatchNorm in the projector needs >= 2 rows
                z1 = m.content_views(self._aug_features(items, cfg.aug_modality_dropout, cfg.aug_feature_noise))[0]
                z2 = m.content_views(self._aug_features(items, cfg.aug_modality_dropout, cfg.aug_feature_noise))[0]
                proj = self.heads["barlow_item"]
                parts.append(barlow_twins_loss(proj(z1), proj(z2), cfg.barlow_off_diagonal, scale_by_dim=True))
            if "user" in cfg.barlow_views and torch.unique(users).numel() >= 2:
                bu = torch.unique(users)
                if bu.numel() > cfg.ssl_users:
                    bu = bu[torch.randperm(bu.numel())[: cfg.ssl_users]]
                views = []
                for _ in range(2):
                    if self.train_seq is not None:  # sequence view: in-order random subsequences, encoded
                        seq, lens = sequence_subset(self.train_seq[0][bu], self.train_seq[1][bu], cfg.history_keep)
                        emb = out["collab"][seq.clamp_min(0)] * (seq >= 0).unsqueeze(-1).to(out["collab"].dtype)
                        z = self.heads["user_seq"](emb, lens)
                    else:  # set view: random history subsets, mean-pooled
                        rows, its = history_subset(*self.train_csr, bu, cfg.history_keep, max_items=cfg.history_max)
                        z = set_view(out["collab"], rows, its, bu.numel())
                    views.append(self.heads["barlow_user"](z))
                parts.append(barlow_twins_loss(views[0], views[1], cfg.barlow_off_diagonal, scale_by_dim=True))
            terms["barlow"] = torch.stack(parts).mean() if parts else out["content"].sum() * 0.0
        if self.weight("genre") > 0:
            f = {mm: (m.features[mm][0][items], m.features[mm][1][items]) for mm in m.modalities}
            for h in cfg.genre_hidden:
                if h in f:
                    f = mask_modality(f, h)
            has_input = torch.stack([f[mm][1] for mm in m.modalities], 1).any(1)
            z = m.content_views(f)[0]  # (n, d), genres hidden from the input
            logits = self.heads["genre"](z)
            terms["genre"] = masked_attribute_loss(logits, self.genre_targets[items], self.genre_mask[items] & has_input)
        if self.weight("recon") > 0:
            z = out["item"][items]
            parts = [feature_reconstruction_loss(self.heads[f"recon_{mm}"](z), m.features[mm][0][items], m.features[mm][1][items],
                                                 cfg.recon_kind) for mm in m.modalities]
            terms["recon"] = torch.stack(parts).mean()
        if self.weight("consist") > 0:
            clean = m.content_views({mm: (m.features[mm][0][items], m.features[mm][1][items]) for mm in m.modalities})[0]
            aug = m.content_views(self._aug_features(items, cfg.aug_modality_dropout, cfg.aug_feature_noise))[0]
            terms["consist"] = consistency_loss(aug, clean, stop_gradient=True)
