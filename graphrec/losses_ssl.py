"""Self-supervised and auxiliary losses: tensors in, tensors out.

* Redundancy reduction: Barlow Twins (Zbontar et al., "Barlow Twins: Self-Supervised Learning
  via Redundancy Reduction", ICML 2021); applied to user-sequence views by Liu et al. (2025).
* Masked attribute prediction: predict an item's hidden categorical attributes (genres) from
  its embedding (S3-Rec, Zhou et al., CIKM 2020, "masked attribute prediction").
* Feature reconstruction: reconstruct the frozen encoder features from the learned item
  embedding (an auto-encoding auxiliary task; cf. DropoutNet / Heater reconstruction terms).
* Consistency: an embedding should be stable under small perturbations and modality dropout
  (consistency regularisation, Sajjadi et al., NeurIPS 2016; SimSiam-style stop-gradient,
  Chen & He, CVPR 2021).

Contrastive InfoNCE is :func:`graphrec.losses.info_nce` (not duplicated here).

Every masked loss averages over the rows where ``mask`` is True only; with no such row it
returns a zero that still depends on the inputs (so ``backward`` works and the graph is kept).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _zero_like(*tensors: torch.Tensor) -> torch.Tensor:
    """A scalar zero connected to ``tensors`` (gradients are zeros, not missing)."""
    return sum(t.sum() * 0.0 for t in tensors)


def _check_rows(name: str, **tensors: torch.Tensor) -> None:
    rows = {k: int(v.shape[0]) for k, v in tensors.items()}
    if len(set(rows.values())) > 1:
        raise ValueError(f"{name}: row counts differ: {rows}")


def batch_standardize(z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-feature standardisation over the batch (BatchNorm without affine, biased variance).

    Shapes:
        z: (N, D) -> (N, D)
    """
    z = z - z.mean(0, keepdim=True)
    return z / torch.sqrt(z.pow(2).mean(0, keepdim=True) + eps)


def cross_correlation(z1: torch.Tensor, z2: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Cross-correlation matrix of two batch-standardised views.

    Shapes:
        z1, z2: (N, D) -> (D, D)
    """
    return batch_standardize(z1, eps).T @ batch_standardize(z2, eps) / z1.shape[0]


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, off_diagonal_weight: float = 5e-3,
                      scale_by_dim: bool = False, eps: float = 1e-5) -> torch.Tensor:
    """Barlow Twins redundancy-reduction loss between two views of the same batch.

    ``C = BN(z1)^T BN(z2) / N``;  ``L = sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2``
    (Zbontar et al., ICML 2021, eq. 1-2; ``lambda = 5e-3`` in the paper). The invariance term
    pulls the views of a row together, the redundancy term decorrelates the features.

    Args:
        z1, z2: the two views (row ``n`` of each is the same user/item).
        off_diagonal_weight: ``lambda``.
        scale_by_dim: divide by ``D`` so the loss magnitude does not grow with the width
            (handy when it is mixed with other terms; the paper does not scale).
        eps: variance floor of the batch standardisation.

    Returns:
        scalar; 0 for fewer than 2 rows (no batch statistics).

    Shapes:
        z1, z2: (N, D) -> scalar
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"barlow_twins_loss: views must both be (N, D), got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if z1.shape[0] < 2:
        return _zero_like(z1, z2)
    c = cross_correlation(z1, z2, eps)  # (D, D)
    diag = torch.diagonal(c)
    on = (1.0 - diag).pow(2).sum()
    off = c.pow(2).sum() - diag.pow(2).sum()
    loss = on + off_diagonal_weight * off
    return loss / z1.shape[1] if scale_by_dim else loss


def masked_attribute_loss(logits: torch.Tensor, targets_multi_hot: torch.Tensor, mask: torch.Tensor | None = None,
                          pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Multi-label BCE for predicting hidden attributes (e.g. genres) of the rows in ``mask``.

    S3-Rec's masked attribute prediction (Zhou et al., CIKM 2020) as a multi-label task: each
    attribute is an independent binary label. Rows outside ``mask`` (items without known
    attributes) contribute nothing.

    Args:
        logits: classifier outputs.
        targets_multi_hot: 0/1 targets.
        mask: rows that count (default: all).
        pos_weight: optional per-attribute positive weight (for rare genres).

    Shapes:
        logits, targets_multi_hot: (N, G); mask: (N,) bool; pos_weight: (G,) -> scalar
    """
    if logits.shape != targets_multi_hot.shape:
        raise ValueError(f"masked_attribute_loss: logits {tuple(logits.shape)} vs targets {tuple(targets_multi_hot.shape)}")
    if mask is None:
        mask = torch.ones(logits.shape[0], dtype=torch.bool, device=logits.device)
    _check_rows("masked_attribute_loss", logits=logits, mask=mask)
    mask = mask.bool()
    if not mask.any():
        return _zero_like(logits)
    bce = F.binary_cross_entropy_with_logits(logits[mask], targets_multi_hot[mask].float(), pos_weight=pos_weight,
                                             reduction="none")  # (n, G)
    return bce.sum(1).mean() / logits.shape[1]



def _masked_pair(name: str, a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None,
                 kind: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Shared checks of the row-wise losses; the masked rows of ``a`` and ``b`` (None if no row counts)."""
    if a.shape != b.shape:
        raise ValueError(f"{name}: shapes {tuple(a.shape)} vs {tuple(b.shape)} differ")
    if kind not in ("cosine", "mse"):
        raise ValueError(f"{name}: kind must be 'cosine' or 'mse', got {kind!r}")
    if mask is None:
        mask = torch.ones(a.shape[0], dtype=torch.bool, device=a.device)
    _check_rows(name, a=a, mask=mask)
    mask = mask.bool()
    return (a[mask], b[mask]) if mask.any() else None

def feature_reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                                kind: str = "cosine") -> torch.Tensor:
    """Reconstruct frozen encoder features from the learned embedding (masked rows only).

    The target is treated as a constant (``detach``): the encoder features are frozen.

    Args:
        pred: reconstructions.
        target: frozen features.
        mask: rows whose features exist (an item without an image has no target).
        kind: ``"cosine"`` (``1 - cos``, scale-free, suits L2-normalised features) or
            ``"mse"`` (mean squared error per feature).

    Shapes:
        pred, target: (N, D); mask: (N,) bool -> scalar
    """
    rows = _masked_pair("feature_reconstruction_loss", pred, target, mask, kind)
    if rows is None:
        return _zero_like(pred)
    p, t = rows[0], rows[1].detach()
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(p, t, dim=-1)).mean()
    return (p - t).pow(2).mean()


def consistency_loss(z_a: torch.Tensor, z_b: torch.Tensor, mask: torch.Tensor | None = None, kind: str = "cosine",
                     stop_gradient: bool = False) -> torch.Tensor:
    """Keep an embedding stable under perturbation: distance between two views of each row.

    Args:
        z_a: embedding of the perturbed input (e.g. modality dropped, features noised).
        z_b: embedding of the clean input (the anchor).
        mask: rows that count (default: all).
        kind: ``"cosine"`` (``1 - cos``) or ``"mse"`` on L2-normalised rows.
        stop_gradient: treat ``z_b`` as a constant (SimSiam-style; the clean view teaches the
            perturbed one and is not pulled towards it).

    Shapes:
        z_a, z_b: (N, d); mask: (N,) bool -> scalar
    """
    rows = _masked_pair("consistency_loss", z_a, z_b, mask, kind)
    if rows is None:
        return _zero_like(z_a, z_b)
    a, b = rows
    if stop_gradient:
        b = b.detach()
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(a, b, dim=-1)).mean()
    return (F.normalize(a, dim=-1) - F.normalize(b, dim=-1)).pow(2).sum(-1).mean()
