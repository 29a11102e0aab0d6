"""Self-supervised / auxiliary losses on tiny tensors."""

import math

import pytest
import torch

from graphrec.losses_ssl import (barlow_twins_loss, batch_standardize, consistency_loss, cross_correlation,
                                 feature_reconstruction_loss, masked_attribute_loss)


def whitened_batch(n=16, d=4, seed=0):
    """Columns: zero mean, unit (biased) variance, mutually orthogonal."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    x = x - x.mean(0)
    q, _ = torch.linalg.qr(x)  # orthonormal columns, still zero-mean (span of centred columns)
    return q * math.sqrt(n)


def test_barlow_zero_for_identical_decorrelated_views():
    z = whitened_batch()
    c = cross_correlation(z, z)
    assert torch.allclose(c, torch.eye(4), atol=1e-4)
    assert barlow_twins_loss(z, z).item() < 1e-6
    # invariant to per-feature scale and shift (batch normalisation inside)
    assert barlow_twins_loss(3 * z + 1, z).item() < 1e-6


def test_barlow_positive_otherwise():
    z = whitened_batch()
    g = torch.Generator().manual_seed(1)
    other = torch.randn(16, 4, generator=g)
    assert barlow_twins_loss(z, other).item() > 0.5
    # perfectly correlated but redundant features: invariance 0, redundancy > 0
    red = torch.cat([z[:, :1]] * 4, 1)
    on_zero = barlow_twins_loss(red, red, off_diagonal_weight=1.0)
    assert abs(on_zero.item() - 12.0) < 1e-2  # 12 off-diagonal entries equal to 1
    assert abs(barlow_twins_loss(red, red, off_diagonal_weight=0.0).item()) < 1e-4
    # scale_by_dim divides by D
    assert torch.isclose(barlow_twins_loss(z, other, scale_by_dim=True), barlow_twins_loss(z, other) / 4)


def test_barlow_gradients_flow_and_small_batch():
    z1 = torch.randn(8, 5, requires_grad=True)
    z2 = torch.randn(8, 5, requires_grad=True)
    barlow_twins_loss(z1, z2).backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0
    one = torch.randn(1, 5, requires_grad=True)
    loss = barlow_twins_loss(one, one)
    assert loss.item() == 0.0
    loss.backward()
    with pytest.raises(ValueError):
        barlow_twins_loss(torch.randn(4, 3), torch.randn(4, 2))


def test_batch_standardize():
    z = batch_standardize(torch.randn(32, 3) * 5 + 2)
    assert torch.allclose(z.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(z.pow(2).mean(0), torch.ones(3), atol=1e-3)


def test_masked_attribute_loss_by_hand_and_mask():
    logits = torch.tensor([[0.0, 0.0], [100.0, -100.0]], requires_grad=True)
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    only_first = masked_attribute_loss(logits, targets, torch.tensor([True, False]))
    assert abs(only_first.item() - math.log(2)) < 1e-6  # mean over genres of log 2
    # masked rows are ignored: changing them changes nothing
    logits2 = logits.detach().clone()
    logits2[1] = torch.tensor([-5.0, 7.0])
    assert masked_attribute_loss(logits2, targets, torch.tensor([True, False])).item() == only_first.item()
    only_first.backward()
    assert logits.grad[1].abs().sum() == 0 and logits.grad[0].abs().sum() > 0
    # no valid row -> 0 with a graph
    z = masked_attribute_loss(logits, targets, torch.tensor([False, False]))
    assert z.item() == 0.0 and z.requires_grad
    # a perfect classifier has near-zero loss
    assert masked_attribute_loss(torch.tensor([[20.0, -20.0]]), torch.tensor([[1.0, 0.0]])).item() < 1e-6


def test_feature_reconstruction_loss():
    t = torch.randn(4, 6)
    pred = t.clone().requires_grad_(True)
    assert feature_reconstruction_loss(pred, t).item() < 1e-6
    assert feature_reconstruction_loss(pred, t, kind="mse").item() < 1e-12
    assert abs(feature_reconstruction_loss(-t, t).item() - 2.0) < 1e-5
    mask = torch.tensor([True, True, False, False])
    bad = t.clone()
    bad[2:] = -bad[2:]
    assert feature_reconstruction_loss(bad, t, mask).item() < 1e-6  # wrong rows are masked out
    p = torch.randn(4, 6, requires_grad=True)
    target = torch.randn(4, 6, requires_grad=True)
    feature_reconstruction_loss(p, target, mask).backward()
    assert p.grad[:2].abs().sum() > 0 and p.grad[2:].abs().sum() == 0
    assert target.grad is None  # the target is frozen
    with pytest.raises(ValueError):
        feature_reconstruction_loss(p, target, kind="l1")


def test_consistency_loss():
    z = torch.randn(5, 3)
    assert consistency_loss(z, 2 * z).item() < 1e-6  # scale-free
    assert consistency_loss(z, -z).item() == pytest.approx(2.0, abs=1e-5)
    assert consistency_loss(z, -z, kind="mse").item() == pytest.approx(4.0, abs=1e-4)
    a = torch.randn(5, 3, requires_grad=True)
    b = torch.randn(5, 3, requires_grad=True)
    consistency_loss(a, b, stop_gradient=True).backward()
    assert a.grad.abs().sum() > 0 and b.grad is None
    mask = torch.tensor([True, False, False, False, False])
    a2 = a.detach().clone()
    a2[1:] = torch.randn(4, 3)
    assert consistency_loss(a2, b.detach(), mask).item() == pytest.approx(consistency_loss(a.detach(), b.detach(), mask).item())
