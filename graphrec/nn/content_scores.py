"""Content score terms of GraphRec for items without interactions: a two-hop content walk and a
popularity prior predicted from content.

Two things a cosine between a user and a cold item's embedding cannot express well:

* **the content walk** ``user -> the user's train items -> content-similar items``: the cosine
  between the user's *content profile* (mean of the train-centred, L2-normalised content vectors
  of the user's train items) and the item's content vector. This is the content-kNN recommender
  (Lops et al. 2011) as a term of the model: the GNN then competes with it only where it adds
  to it;
* **how popular a new item will be**: ``log(1 + train interactions)`` regressed on the content
  vectors of the warm items (closed-form ridge, fitted on train only), standardised over warm
  items. Scores that are cosines of unit vectors carry no item magnitude; this term does.

Both are fixed functions of train data and content (no gradient); their weights are chosen on
validation by the calibration step (:mod:`graphrec.recipes.calibrate`), together with an offset
that puts cold scores on the warm scores' scale for hybrid lists (the alignment concern of GAR,
Chen et al., SIGIR 2022). With weights 0 (before calibration) the terms vanish.

Shapes:
    fit: item vectors (I, D), train edges (2, E), warm (I,) -> buffers
    score: users (B,) -> (B, I) (only meaningful for non-warm items)
"""

from __future__ import annotations

import torch
from torch import nn


class ContentScores(nn.Module):
    """Profile (content walk) and popularity-prior terms with calibrated weights.

    Args:
        prior_ridge: ridge strength of the popularity regression.

    Buffers:
        ``item_vec`` (I, D), ``profile`` (U, D) L2-normalised user profiles, ``prior`` (I,)
        standardised prior, ``prior_w`` (D,) / ``prior_b`` / ``prior_mu`` / ``prior_sd`` (the
        regression, to score new items): non-persistent, rebuilt by :meth:`fit` from train data.
        ``profile_weight``, ``prior_weight``, ``cold_offset``: the calibrated scalars
        (persistent: they travel in checkpoints).
    """

    def __init__(self, prior_ridge: float = 1.0) -> None:
        super().__init__()
        self.prior_ridge = prior_ridge
        for name in ("item_vec", "profile", "prior", "prior_w", "prior_b", "prior_mu", "prior_sd"):
            self.register_buffer(name, None, persistent=False)
        for name in ("profile_weight", "prior_weight", "cold_offset"):
            self.register_buffer(name, torch.zeros(()))

    def reset_parameters(self) -> None:
        for name in ("profile_weight", "prior_weight", "cold_offset"):
            getattr(self, name).zero_()

    @property
    def active(self) -> bool:
        return bool(self.profile_weight != 0) or bool(self.prior_weight != 0) or bool(self.cold_offset != 0)

    @torch.no_grad()
    def fit(self, item_vec: torch.Tensor, train_edges: torch.Tensor, warm: torch.Tensor, num_users: int) -> None:
        """Profiles and the popularity regression from train edges (deterministic)."""
        u, i = train_edges[0], train_edges[1]
        self.item_vec = item_vec.float()
        prof = torch.zeros(num_users, item_vec.shape[1], device=item_vec.device).index_add_(0, u, self.item_vec[i])
        self.profile = nn.functional.normalize(prof, dim=1)
        deg = torch.bincount(i, minlength=item_vec.shape[0]).to(item_vec)
        xw = self.item_vec[warm].double()
        y = torch.log1p(deg[warm]).double()
        mu_y = y.mean() if y.numel() else torch.zeros((), dtype=torch.float64, device=y.device)
        a = xw.T @ xw + self.prior_ridge * torch.eye(xw.shape[1], dtype=torch.float64, device=xw.device)
        w = torch.linalg.solve(a, xw.T @ (y - mu_y)) if y.numel() else torch.zeros(xw.shape[1], dtype=torch.float64)
        self.prior_w, self.prior_b = w.float(), mu_y.float()
        raw = self.item_vec @ self.prior_w + self.prior_b  # (I,)
        self.prior_mu = raw[warm].mean() if warm.any() else torch.zeros(())
        self.prior_sd = raw[warm].std().clamp_min(1e-6) if int(warm.sum()) > 1 else torch.ones(())
        self.prior = (raw - self.prior_mu) / self.prior_sd

    def item_prior(self, item_vec: torch.Tensor) -> torch.Tensor:
        """Standardised prior of (new) items from their content vectors. Shapes: (N, D) -> (N,)"""
        return (item_vec.float() @ self.prior_w + self.prior_b - self.prior_mu) / self.prior_sd

    def set_weights(self, profile: float, prior: float, offset: float) -> None:
        self.profile_weight.fill_(profile)
        self.prior_weight.fill_(prior)
        self.cold_offset.fill_(offset)

    @torch.no_grad()
    def score(self, users: torch.Tensor) -> torch.Tensor:
        """``profile_weight * profile_u . x_i + prior_weight * prior_i + cold_offset``. (B,) -> (B, I)"""
        s = self.profile_weight * (self.profile[users] @ self.item_vec.T)
        return s + (self.prior_weight * self.prior + self.cold_offset).unsqueeze(0)

    def profile_scores(self, users: torch.Tensor) -> torch.Tensor:
        """Unweighted content-walk scores (calibration). (B,) -> (B, I)"""
        return self.profile[users] @ self.item_vec.T

    def serving_columns(self) -> torch.Tensor:
        """The content columns some user's side reads (``profile_weight * profile`` nonzero somewhere).

        The others add 0 to every score, a new item's included (the profiles are sums of catalogue
        vectors: a modality with share 0, or the whole term at weight 0), so the serving space
        leaves them out. (D,) bool"""
        return (self.profile_weight * self.profile).abs().amax(0) > 0

    def serving_users(self) -> torch.Tensor:
        """User side of the inner-product space: ``[profile_weight * profile, 1]`` on the serving
        columns. (U, D' + 1), ``D'`` = :meth:`serving_columns`' count"""
        ones = torch.ones(self.profile.shape[0], 1, device=self.profile.device)
        return torch.cat([(self.profile_weight * self.profile)[:, self.serving_columns()], ones], 1)

    def serving_items(self, item_vec: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """Item side for cold items: ``[x_i, prior_weight * prior_i + cold_offset]`` on the serving
        columns. (N, D) -> (N, D' + 1)"""
        return torch.cat([item_vec.float()[:, self.serving_columns()],
                          (self.prior_weight * prior + self.cold_offset).unsqueeze(1)], 1)
