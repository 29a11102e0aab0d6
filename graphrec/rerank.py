"""Exposure-aware re-ranking: one knob, ``exposure_penalty`` (lambda >= 0), trading accuracy for exposure.

A popularity penalty on standardised scores (tensors in, tensors out)::

    score'(u, i) = z_u(score(u, i)) - lambda * z(log(1 + pop(i)))

``z_u`` standardises each user's scores over the catalogue (mean 0, std 1 per user, so one
lambda means the same for a cosine model and a dot-product model), ``pop(i)`` is an item's
number of known interactions (train interactions in evaluation, the served history in
:class:`~graphrec.serve.recommender.Recommender`) and ``z`` standardises ``log(1 + pop)`` over
the items with interactions. ``lambda = 0`` returns the scores unchanged (the same ranking,
bit for bit); a larger lambda moves popular items down and items without interactions (cold
and brand-new items, ``pop = 0``) up, so the exposure Gini falls and the cold share of hybrid
lists rises. lambda is unit-free: lambda = 1 lets one standard deviation of log popularity
cost one standard deviation of the user's own scores.

Why this form: a score-level popularity penalty is the simplest re-ranking of the
popularity-bias literature, the inference-time "subtract the popularity effect" of MACR
(Wei et al., "Model-Agnostic Counterfactual Reasoning for Eliminating Popularity Bias in
Recommender System", KDD 2021) and a one-parameter relative of the personalised re-ranking of
Abdollahpouri, Burke & Mobasher ("Managing Popularity Bias in Recommender Systems with
Personalized Re-ranking", FLAIRS 2019), which also trades a weighted accuracy term against
long-tail exposure with one weight. Unlike a calibrated cold/warm slot mix (Steck,
"Calibrated Recommendations", RecSys 2018) it needs no target distribution, works on any
candidate set (cold, warm, hybrid, full catalogue) and keeps each list a plain top-K of
one score, so the full-ranking protocol evaluates it unchanged (:class:`RerankedScorer`).

A leaf module (torch only): the fairness audit (evaluation) and the recommender (serving) both
use it, so it lives below both.
"""

from __future__ import annotations

import torch


def popularity_term(popularity: torch.Tensor) -> torch.Tensor:
    """``z(log(1 + pop))``: log popularity standardised over the items with ``pop > 0``.

    Items without interactions get the (lowest) value of ``log(1) = 0`` on that scale; all
    zeros when fewer than two items have distinct popularity (nothing to penalise).

    Shapes:
        popularity: (N,) counts -> (N,) float32
    """
    lp = torch.log1p(popularity.double().clamp(min=0))  # (N,)
    seen = popularity > 0
    if int(seen.sum()) < 2 or float(lp[seen].std()) == 0.0:
        return torch.zeros(popularity.numel(), dtype=torch.float32)
    return ((lp - lp[seen].mean()) / lp[seen].std()).float()


def standardize_rows(scores: torch.Tensor) -> torch.Tensor:
    """Per-row ``(s - mean) / std`` over the finite entries (std 0 -> 1); non-finite entries kept.

    Shapes:
        scores: (B, N) -> (B, N)
    """
    s = scores.float()
    fin = torch.isfinite(s)
    n = fin.sum(1, keepdim=True).clamp(min=1)  # (B, 1)
    x = torch.where(fin, s, torch.zeros_like(s))
    mean = x.sum(1, keepdim=True) / n
    var = (torch.where(fin, s - mean, torch.zeros_like(s)) ** 2).sum(1, keepdim=True) / (n - 1).clamp(min=1)
    std = var.sqrt()
    std = torch.where(std > 0, std, torch.ones_like(std))
    return torch.where(fin, (s - mean) / std, s)


def penalize(scores: torch.Tensor, pop_term: torch.Tensor, lam: float) -> torch.Tensor:
    """Apply the exposure penalty (module docstring); ``lam == 0`` returns ``scores`` itself.

    Args:
        scores: raw scores, higher is better (``-inf`` entries stay ``-inf``).
        pop_term: :func:`popularity_term` of the scored items' popularity.
        lam: the exposure penalty, >= 0.

    Shapes:
        scores: (B, N); pop_term: (N,) -> (B, N)
    """
    if lam < 0:
        raise ValueError(f"exposure_penalty must be >= 0, got {lam}")
    if lam == 0:
        return scores
    if pop_term.numel() != scores.shape[1]:
        raise ValueError(f"pop_term has {pop_term.numel()} items, scores have {scores.shape[1]}")
    return standardize_rows(scores) - float(lam) * pop_term.to(scores.device).unsqueeze(0)  # (B, N)


def rerank_topk(scores: torch.Tensor, pop_term: torch.Tensor, lam: float, k: int,
                exclude: list[list[int]] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k per row of penalised scores, skipping each row's ``exclude`` positions.

    Returns ``(penalised scores (B, k), positions (B, k))``, padded with ``-inf`` / ``-1`` when
    fewer than k items are left.

    Shapes:
        scores: (B, N); pop_term: (N,)
    """
    s = penalize(scores, pop_term, lam).clone()
    if exclude:
        rows = [torch.full((len(e),), r, dtype=torch.long) for r, e in enumerate(exclude) if e]
        if rows:
            cols = torch.cat([torch.as_tensor(e, dtype=torch.long) for e in exclude if e])
            s[torch.cat(rows), cols] = float("-inf")
    k_eff = min(k, s.shape[1])
    vals, pos = torch.topk(s, k_eff, dim=1)
    pos = torch.where(torch.isinf(vals) & (vals < 0), torch.full_like(pos, -1), pos)
    if k_eff < k:
        vals = torch.cat([vals, vals.new_full((vals.shape[0], k - k_eff), float("-inf"))], 1)
        pos = torch.cat([pos, pos.new_full((pos.shape[0], k - k_eff), -1)], 1)
    return vals, pos


class RerankedScorer(torch.nn.Module):
    """A :class:`~graphrec.evaluation.protocol.Scorer` whose scores carry the exposure penalty.

    Wraps any scorer (a model or a baseline) so that the full-ranking protocol evaluates the
    re-ranked lists with no change; a wrapped ``torch.nn.Module`` becomes a submodule, so
    ``evaluate`` puts it in eval mode. ``supports_cold`` is passed through.

    Args:
        scorer: implements ``score(users) -> (B, N)``.
        popularity: (N,) known-interaction count per item (evaluation: train only).
        lam: the exposure penalty, >= 0 (0 = the scorer's own ranking).

    Shapes:
        score: users (B,) -> (B, N)
    """

    def __init__(self, scorer, popularity: torch.Tensor, lam: float) -> None:
        super().__init__()
        if lam < 0:
            raise ValueError(f"exposure_penalty must be >= 0, got {lam}")
        self.scorer = scorer
        self.training = bool(getattr(scorer, "training", False))  # so evaluate() restores the wrapped mode
        self.lam = float(lam)
        self.supports_cold = getattr(scorer, "supports_cold", True)
        self.register_buffer("pop_term", popularity_term(popularity))

    def score(self, users: torch.Tensor) -> torch.Tensor:
        s = self.scorer.score(users)
        return penalize(s, self.pop_term.to(s.device), self.lam)

    def forward(self, users: torch.Tensor) -> torch.Tensor:
        return self.score(users)
