"""Loss functions: tensors in, tensors out.

Link prediction: BPR (Rendle et al., UAI 2009) and sampled softmax (Covington et al., RecSys
2016; Wu et al., "On the effectiveness of sampled softmax loss for item recommendation", TOIS
2023). Contrastive alignment: symmetric InfoNCE (van den Oord et al., 2018; CLIP, Radford et
al., 2021) with a learnable, clamped temperature as in open_clip's ``logit_scale``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor, neg_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Bayesian personalised ranking: ``-log sigmoid(s_pos - s_neg)`` averaged over valid pairs.

    Args:
        pos: positive scores.
        neg: negative scores.
        neg_mask: optional bool, False where a "negative" is not one (e.g. a train positive).

    Shapes:
        pos: (B,), neg: (B,) or (B, N), neg_mask like neg -> scalar
    """
    if neg.dim() == 2:
        pos = pos.unsqueeze(1)
    loss = -F.logsigmoid(pos - neg)
    if neg_mask is None:
        return loss.mean()
    w = neg_mask.to(loss.dtype)
    return (loss * w).sum() / w.sum().clamp_min(1.0)


class _SampledSoftmax(torch.autograd.Function):
    """``mean_b(logsumexp([pos_b, neg_b + bias_b]) - pos_b)`` with a hand-written backward.

    Same function as ``-log_softmax(cat([pos, neg + bias]), 1)[:, 0].mean()``, in fewer passes over
    the (B, N) scores: no concatenated (B, 1 + N) copy, no zero-filled gradient of the selected
    column; the forward keeps the negatives' softmax, whose scaled copy is their gradient. Computed
    in float32 whatever the input dtype (as autocast runs ``log_softmax``); gradients are returned
    in the inputs' dtypes.
    """

    @staticmethod
    def forward(ctx, pos, neg, bias):
        t = neg.float() + bias if bias is not None else neg.float().clone()
        p = pos.float()
        m = torch.maximum(t.amax(1), p)  # row max: exp never overflows; a fully masked row keeps m = pos
        t.sub_(m[:, None]).exp_()
        e_pos = (p - m).exp_()
        z = t.sum(1).add_(e_pos)
        t.div_(z[:, None])  # softmax of the negatives
        ctx.save_for_backward(t, e_pos.div_(z))
        ctx.dtypes = (pos.dtype, neg.dtype)
        return z.log_().add_(m).sub_(p).mean()

    @staticmethod
    def backward(ctx, grad):
        p_neg, p_pos = ctx.saved_tensors
        s = grad / p_neg.shape[0]
        return (p_pos - 1.0).mul_(s).to(ctx.dtypes[0]), (p_neg * s).to(ctx.dtypes[1]), None


def sampled_softmax_loss(pos: torch.Tensor, neg: torch.Tensor, temperature: float = 1.0,
                         neg_mask: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of the positive against sampled negatives: ``-log softmax([pos, neg] / T)[0]``.

    Args:
        pos: positive scores.
        neg: negative scores.
        temperature: logits are divided by it.
        neg_mask: optional bool, False where a "negative" must be ignored (a train positive).
        bias: optional additive mask (:func:`mask_bias`), added to ``neg / T``; several terms of a
            batch can share it (an alternative to ``neg_mask``).

    Shapes:
        pos: (B,), neg: (B, N), neg_mask / bias: (B, N) -> scalar
    """
    if neg_mask is not None:
        mb = mask_bias(neg_mask)
        bias = mb if bias is None else bias + mb
    if temperature != 1.0:
        pos, neg = pos / temperature, neg / temperature
    return _SampledSoftmax.apply(pos, neg, bias)


def multinomial_loss(logits: torch.Tensor, target: torch.Tensor, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Multinomial log-likelihood of each row's targets under a softmax over its logits, per target
    item, averaged over rows (Mult-DAE/VAE, Liang et al., WWW 2018); ``exclude`` items take no
    part in the softmax (e.g. the ones the row's input already holds). Rows without targets count 0.

    Shapes:
        logits: (B, N), target: (B, N) 0/1 (or weights), exclude: (B, N) bool -> scalar
    """
    if exclude is not None:
        logits = logits.masked_fill(exclude, float("-inf"))
    logp = torch.log_softmax(logits, 1)
    if exclude is not None:
        logp = logp.masked_fill(exclude, 0.0)
    return -((logp * target).sum(1) / target.sum(1).clamp_min(1.0)).mean()


def mask_bias(neg_mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Additive form of a negative mask: 0 where kept, ``-inf`` where ignored.

    Adding it to the negative scores equals ``sampled_softmax_loss(..., neg_mask=...)``; one bias
    serves several loss terms of a batch, and an addition costs nothing in the backward.

    Shapes: (B, N) bool -> (B, N)
    """
    return torch.zeros(neg_mask.shape, dtype=dtype, device=neg_mask.device).masked_fill_(~neg_mask, float("-inf"))


class _SymmetricCE(torch.autograd.Function):
    """``-(mean diag log_softmax(L, 1) + mean diag log_softmax(L, 0)) / 2`` with a hand-written backward.

    The gradient is ``(softmax(L, 1) + softmax(L, 0) - 2 I) / 2N``: the forward builds it in place
    of the two softmaxes and keeps only it (no log-softmax backward, no zero-filled diagonal
    gradients). Float32 whatever the input dtype; the gradient is returned in the input's dtype.
    """

    @staticmethod
    def forward(ctx, logits):
        x = logits.float()
        n = x.shape[0]
        mr, mc = x.amax(1, keepdim=True), x.amax(0, keepdim=True)
        r = (x - mr).exp_()
        zr = r.sum(1, keepdim=True)
        c = (x - mc).exp_()
        zc = c.sum(0, keepdim=True)
        d = x.diagonal()
        loss = 0.5 * ((zr.log().add_(mr).squeeze(1) - d).mean() + (zc.log().add_(mc).squeeze(0) - d).mean())
        g = r.div_(zr).add_(c.div_(zc))
        g.diagonal().sub_(2.0)
        ctx.save_for_backward(g.mul_(0.5 / n))
        ctx.dtype = logits.dtype
        return loss

    @staticmethod
    def backward(ctx, grad):
        (g,) = ctx.saved_tensors
        return (g * grad).to(ctx.dtype)


def info_nce(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE between paired rows of ``a`` and ``b`` (other rows are negatives).

    Rows are L2-normalised inside. With fewer than two pairs the loss is 0 (no negatives).

    Shapes:
        a, b: (N, d); logit_scale: scalar (1 / temperature) -> scalar
    """
    if a.shape[0] < 2:
        return a.sum() * 0.0 + b.sum() * 0.0
    a = F.normalize(a, dim=-1)
    b = F.normalize(b, dim=-1)
    return _SymmetricCE.apply((logit_scale * a) @ b.T)  # cross-entropy of rows (a -> b) and of columns (b -> a)


def l2_reg(*tensors: torch.Tensor) -> torch.Tensor:
    """Sum of squared entries divided by the batch size (rows of the first tensor), as in LightGCN.

    Shapes:
        tensors: (B, d) each -> scalar
    """
    n = max(tensors[0].shape[0], 1)
    return sum(t.pow(2).sum() for t in tensors) / n


class LogitScale(nn.Module):
    """A learnable inverse temperature ``exp(s)`` clamped to ``[1/max_t, 1/min_t]`` (open_clip style).

    Args:
        init_temperature: starting temperature.
        min_temperature / max_temperature: clamp range of the temperature.

    Shapes:
        forward: () -> scalar
    """

    def __init__(self, init_temperature: float = 0.1, min_temperature: float = 0.01, max_temperature: float = 1.0) -> None:
        super().__init__()
        self.init_temperature = init_temperature
        self.lo, self.hi = math.log(1 / max_temperature), math.log(1 / min_temperature)
        self.log_scale = nn.Parameter(torch.empty(()))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.constant_(self.log_scale, math.log(1 / self.init_temperature))

    def forward(self) -> torch.Tensor:
        return self.log_scale.clamp(self.lo, self.hi).exp()
