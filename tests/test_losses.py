"""Loss functions checked against values worked out by hand."""

import math

import torch

from graphrec.losses import LogitScale, bpr_loss, info_nce, l2_reg, sampled_softmax_loss


def test_bpr_by_hand():
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 0.0])
    expect = (-math.log(1 / (1 + math.exp(-1))) - math.log(0.5)) / 2
    assert abs(bpr_loss(pos, neg).item() - expect) < 1e-6
    assert bpr_loss(pos, neg.unsqueeze(1).repeat(1, 3)).item() == bpr_loss(pos, neg).item()


def test_sampled_softmax_by_hand():
    pos, neg = torch.tensor([1.0]), torch.tensor([[0.0, 0.0]])
    expect = -math.log(math.e / (math.e + 2))
    assert abs(sampled_softmax_loss(pos, neg).item() - expect) < 1e-6
    # temperature scales the logits
    assert abs(sampled_softmax_loss(pos * 0.5, neg, 0.5).item() - expect) < 1e-6


def test_info_nce_aligned_beats_shuffled():
    torch.manual_seed(0)
    a = torch.randn(16, 8)
    scale = torch.tensor(10.0)
    aligned = info_nce(a, a + 0.01 * torch.randn(16, 8), scale)
    shuffled = info_nce(a, a[torch.randperm(16)], scale)
    assert aligned < 0.1 < shuffled
    # two identical 1-hot pairs: loss = -log(e^s / (e^s + 1)) for orthogonal rows
    e = torch.eye(2)
    assert abs(info_nce(e, e, torch.tensor(1.0)).item() - math.log(1 + math.exp(-1))) < 1e-6
    assert info_nce(a[:1], a[:1], scale).item() == 0.0


def test_logit_scale_is_clamped_and_learnable():
    ls = LogitScale(0.1, 0.05, 1.0)
    assert abs(ls().item() - 10.0) < 1e-4
    with torch.no_grad():
        ls.log_scale.fill_(100.0)
    assert abs(ls().item() - 20.0) < 1e-3
    with torch.no_grad():
        ls.log_scale.fill_(-100.0)
    assert abs(ls().item() - 1.0) < 1e-6
    assert ls.log_scale.requires_grad


def test_l2_reg():
    assert l2_reg(torch.ones(2, 3), torch.ones(2, 1)).item() == 4.0


def test_info_nce_equals_symmetric_cross_entropy():
    # the column term is a log_softmax over dim 0, not a cross-entropy of logits.T: same value, same gradients
    torch.manual_seed(1)
    a, b = torch.randn(12, 5, requires_grad=True), torch.randn(12, 5, requires_grad=True)
    scale = torch.tensor(7.0)
    got = info_nce(a, b, scale)
    ga = torch.autograd.grad(got, (a, b))
    an, bn = torch.nn.functional.normalize(a, dim=-1), torch.nn.functional.normalize(b, dim=-1)
    logits, t = scale * an @ bn.T, torch.arange(12)
    ref = 0.5 * (torch.nn.functional.cross_entropy(logits, t) + torch.nn.functional.cross_entropy(logits.T, t))
    gr = torch.autograd.grad(ref, (a, b))
    assert abs(got.item() - ref.item()) < 1e-5
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(ga, gr))


def test_mask_bias_equals_masked_sampled_softmax():
    from graphrec.losses import mask_bias

    torch.manual_seed(2)
    pos, neg = torch.randn(6), torch.randn(6, 9)
    mask = torch.rand(6, 9) > 0.3
    mask[0] = False  # a row whose negatives are all ignored: only the positive is left, loss 0 for it
    masked = sampled_softmax_loss(pos, neg, 1.0, mask)
    biased = sampled_softmax_loss(pos, neg + mask_bias(mask))
    assert torch.isfinite(masked) and abs(masked.item() - biased.item()) < 1e-6
    # dividing the scores by T equals the temperature argument
    assert abs(sampled_softmax_loss(pos / 0.1, neg / 0.1, 1.0, mask).item()
               - sampled_softmax_loss(pos, neg, 0.1, mask).item()) < 1e-4


def _reference_sampled_softmax(pos, neg, mask):
    logits = torch.cat([pos.unsqueeze(1), neg.masked_fill(~mask, float("-inf"))], 1)
    return -torch.log_softmax(logits, 1)[:, 0].mean()


def test_sampled_softmax_values_and_gradients_equal_the_log_softmax_of_the_concatenated_logits():
    # the loss has a hand-written backward: value and both gradients must be the textbook formula's,
    # also for large scores (stability), a fully masked row, and the bias form of the mask
    from graphrec.losses import mask_bias

    torch.manual_seed(3)
    for scale in (1.0, 80.0):
        pos = (torch.randn(7) * scale).requires_grad_()
        neg = (torch.randn(7, 11) * scale).requires_grad_()
        mask = torch.rand(7, 11) > 0.25
        mask[2] = False
        ref = _reference_sampled_softmax(pos, neg, mask)
        g_ref = torch.autograd.grad(ref, (pos, neg))
        for got in (sampled_softmax_loss(pos, neg, 1.0, mask), sampled_softmax_loss(pos, neg, bias=mask_bias(mask))):
            g = torch.autograd.grad(got, (pos, neg))
            assert torch.isfinite(got) and abs(got.item() - ref.item()) < 1e-5 * max(1.0, abs(ref.item()))
            assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(g, g_ref))
        assert g_ref[1][2].abs().sum() == 0  # masked negatives get no gradient
    # bfloat16 scores (autocast): computed in float32, gradients come back in bfloat16
    pos, neg = torch.randn(5, dtype=torch.bfloat16, requires_grad=True), torch.randn(5, 6, dtype=torch.bfloat16, requires_grad=True)
    got = sampled_softmax_loss(pos, neg)
    gp, gn = torch.autograd.grad(got, (pos, neg))
    ref = _reference_sampled_softmax(pos.float(), neg.float(), torch.ones(5, 6, dtype=torch.bool))
    assert got.dtype == torch.float32 and abs(got.item() - ref.item()) < 1e-5
    assert gp.dtype == gn.dtype == torch.bfloat16


def test_info_nce_is_stable_at_the_largest_scale_and_takes_bfloat16():
    torch.manual_seed(4)
    a, b = torch.randn(64, 8, requires_grad=True), torch.randn(64, 8, requires_grad=True)
    scale = torch.tensor(100.0)  # 1 / min_temperature: logits in [-100, 100]
    got = info_nce(a, b, scale)
    an, bn = torch.nn.functional.normalize(a, dim=-1), torch.nn.functional.normalize(b, dim=-1)
    logits, t = scale * an @ bn.T, torch.arange(64)
    ref = 0.5 * (torch.nn.functional.cross_entropy(logits, t) + torch.nn.functional.cross_entropy(logits.T, t))
    assert torch.isfinite(got) and abs(got.item() - ref.item()) < 1e-4
    g, g_ref = torch.autograd.grad(got, (a, b)), torch.autograd.grad(ref, (a, b))
    assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(g, g_ref))
    a16 = a.detach().bfloat16().requires_grad_()
    got16 = info_nce(a16, b.detach().bfloat16(), scale)
    assert torch.isfinite(got16) and torch.autograd.grad(got16, a16)[0].dtype == torch.bfloat16


def test_multinomial_loss_is_the_mean_log_likelihood_per_target_without_the_excluded_items():
    from graphrec.losses import multinomial_loss

    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0], [0.5, 0.5, 3.0, 0.0]])
    target = torch.tensor([[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    exclude = torch.tensor([[True, False, False, False], [False, False, False, False]])
    lp0 = torch.log_softmax(logits[0, 1:], 0)  # item 0 takes no part in row 0's softmax
    lp1 = torch.log_softmax(logits[1], 0)
    want = -((lp0[0] + lp0[1]) / 2 + lp1[0]) / 2
    torch.testing.assert_close(multinomial_loss(logits, target, exclude), want)
    changed = logits.clone()
    changed[0, 0] = 50.0  # an excluded item's logit changes nothing
    torch.testing.assert_close(multinomial_loss(changed, target, exclude), want)
    assert multinomial_loss(logits, target) > multinomial_loss(logits, target, exclude)
