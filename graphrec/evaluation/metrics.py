"""Per-user top-K ranking metrics, computed with :mod:`torch_geometric.metrics`.

The metric definitions are PyG's ``LinkPred*`` classes (torch_geometric 2.8.1,
``torch_geometric/metrics/link_pred.py``); this module only feeds them and returns one value
per user, so that means, bootstrap confidence intervals and per-bucket breakdowns can be
computed from the same numbers. PyG's definitions match the graphrec protocol
(docs/DESIGN.md, "Evaluation protocol"; Krichene & Rendle, "On Sampled Metrics for Item
Recommendation", KDD 2020, for full ranking):

* ``recall@K``    = hits@K / |positives|                   (``LinkPredRecall``)
* ``ndcg@K``      = DCG@K / IDCG over min(K, |positives|)  (``LinkPredNDCG``; binary relevance,
  discount ``1 / log2(rank + 1)``)
* ``hit@K``       = 1 if any positive is in the top K      (``LinkPredHitRatio``)
* ``precision@K`` = hits@K / K (K, not the list length, even when fewer than K candidates
  exist)                                                   (``LinkPredPrecision``)
* ``mrr@K``       = 1 / rank of the first hit within K, else 0  (``LinkPredMRR``)

Differences from PyG's public ``update``/``compute`` API, and why:

* PyG's ``compute()`` returns only the mean over users with >= 1 positive. We need the
  per-user values, so we call each metric's ``_compute(LinkPredMetricData)`` (the per-example
  function its ``update`` uses). The means we report are identical to PyG's ``compute()``
  (checked in ``tests/test_metrics.py``).
* Padding. When a user has fewer than K rankable candidates, the top-K list is padded. PyG
  has no padding value (a ``-1`` would alias another row's item in its flattened matching), so
  we pad with ``num_items`` (an index no positive can have) before calling PyG.
"""

from __future__ import annotations

from typing import Sequence

import torch

METRIC_NAMES = ("recall", "ndcg", "hit", "precision", "mrr")


def _pyg_metric(name: str, k: int):
    from torch_geometric.metrics import (LinkPredHitRatio, LinkPredMRR, LinkPredNDCG,
                                         LinkPredPrecision, LinkPredRecall)

    cls = {"recall": LinkPredRecall, "ndcg": LinkPredNDCG, "hit": LinkPredHitRatio,
           "precision": LinkPredPrecision, "mrr": LinkPredMRR}[name]
    return cls(k=k)


def ranking_metrics(
    topk: torch.Tensor,
    positives: torch.Tensor,
    ks: Sequence[int] = (10, 20, 50),
    metrics: Sequence[str] = METRIC_NAMES,
    pad_index: int | None = None,
) -> dict[str, torch.Tensor]:
    """Per-user Recall/NDCG/HitRate/Precision/MRR at each K, from top-K index lists.

    Args:
        topk: ranked item indices per user, best first. Entries equal to ``pad_index`` (or any
            negative entry) are padding: fewer than ``topk.size(1)`` items were rankable.
        positives: ``[row, item]`` pairs; ``row`` indexes rows of ``topk`` (not user ids).
            Duplicate pairs must be removed by the caller.
        ks: cut-offs; each must be <= ``topk.size(1)``.
        metrics: subset of :data:`METRIC_NAMES`.
        pad_index: value used for padding in ``topk``; negative entries are padding too.

    Returns:
        ``{"recall@20": (R,) float tensor, ...}``: one value per row of ``topk``. Rows without
        positives get 0 (the caller evaluates only users with >= 1 positive).

    Shapes:
        topk: (R, Kmax) long; positives: (2, P) long; outputs: (R,) float32 each.
    """
    from torch_geometric.metrics.link_pred import LinkPredMetricData

    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; expected some of {METRIC_NAMES}")
    if topk.dim() != 2:
        raise ValueError(f"topk must be (rows, K), got shape {tuple(topk.shape)}")
    kmax = topk.size(1)
    bad = [k for k in ks if k < 1 or k > kmax]
    if bad:
        raise ValueError(f"cut-offs {bad} outside 1..{kmax} (the top-K list length)")
    topk = topk.long()
    positives = positives.long()
    top = int(topk.max()) if topk.numel() else 0
    pmax = int(positives[1].max()) if positives.numel() else 0
    safe_pad = max(top, pmax, pad_index if pad_index is not None else 0) + 1
    padded = topk < 0
    if pad_index is not None:
        padded |= topk == pad_index
    topk = topk.masked_fill(padded, safe_pad)  # (R, Kmax); PyG never matches safe_pad

    # one relevance matrix shared by every metric; each PyG metric slices its own [:, :k]
    data = LinkPredMetricData(pred_index_mat=topk, edge_label_index=positives)
    out: dict[str, torch.Tensor] = {}
    for k in sorted(set(int(k) for k in ks)):
        for name in metrics:
            out[f"{name}@{k}"] = _pyg_metric(name, k)._compute(data).float()  # (R,)
    return out
