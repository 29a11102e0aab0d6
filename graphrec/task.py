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
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from graphrec.losses import LogitScale, bpr_loss, info_nce, l2_reg, sampled_softmax_loss
from graphrec.nn.model import GraphRec
from graphrec.training.config import TrainConfig


class GraphRecTask(nn.Module):
    """Combines a :class:`GraphRec` with the configured loss terms.

    Args:
        model: the model (graph attached with ``set_graph``).
        cfg: trainer config (loss kind, weights, temperatures).

    Shapes:
        forward: users (B,), pos (B,), neg (N,) shared or (B, N), neg_valid (B, N) -> dict of scalars
    """

    def __init__(self, model: GraphRec, cfg: TrainConfig) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.logit_scales = nn.ModuleDict(
            {n: LogitScale(cfg.init_temperature, cfg.min_temperature, cfg.max_temperature) for n in ("align", "modal")}
        )

    def _rank_loss(self, u: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        # cosine scores (B,) and (B, N); neg is (N, d) shared by the batch or (B, N, d) per user
        s_pos = (u * pos).sum(-1)
        s_neg = u @ neg.T if neg.dim() == 2 else torch.einsum("bd,bnd->bn", u, neg)
        t = self.cfg.rec_temperature
        if self.cfg.rec_loss == "bpr":
            return bpr_loss(s_pos / t, s_neg / t, valid)
        return sampled_softmax_loss(s_pos, s_neg, t, valid)

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
        out = m.propagate(id_keep)
        u = F.normalize(out["user"][users], dim=-1)  # (B, d)
        terms: dict[str, torch.Tensor] = {}
        if cfg.weight("rec") > 0:
            item = F.normalize(out["collab"], dim=-1)
            terms["rec"] = self._rank_loss(u, item[pos], item[neg], neg_valid)
        if cfg.weight("cold_rec") > 0:
            cold = F.normalize(out["cold"], dim=-1)
            terms["cold_rec"] = self._rank_loss(u, cold[pos], cold[neg], neg_valid)
        if cfg.weight("align") > 0 or cfg.weight("modal") > 0:
            items = torch.unique(pos)
            if items.numel() > cfg.contrastive_items:
                items = items[torch.randperm(items.numel())[: cfg.contrastive_items]]
            vm = out["view_mask"][items]  # (n, M)
            views = {k: v[items] for k, v in out["views"].items()}
            if cfg.weight("align") > 0:
                collab = out["collab"][items]
                parts = [info_nce(views[k][vm[:, j]], collab[vm[:, j]], self.logit_scales["align"]()) for j, k in enumerate(m.modalities)]
                terms["align"] = torch.stack(parts).mean()
            if cfg.weight("modal") > 0:
                parts = []
                for (j1, k1), (j2, k2) in itertools.combinations(enumerate(m.modalities), 2):
                    both = vm[:, j1] & vm[:, j2]
                    parts.append(info_nce(views[k1][both], views[k2][both], self.logit_scales["modal"]()))
                terms["modal"] = torch.stack(parts).mean() if parts else out["content"].sum() * 0.0
        if cfg.weight("reg") > 0:
            regs = [m.user_emb.weight[users]]
            if m.item_id_emb is not None:
                regs += [m.item_id_emb.weight[pos], m.item_id_emb.weight[neg.reshape(-1)[: len(pos)]]]
            terms["reg"] = l2_reg(*regs)
        result = {f"{k}_loss": v for k, v in terms.items()}
        result["loss"] = sum(cfg.weight(k) * v for k, v in terms.items())
        return result
