"""View generators: shapes kept, seeded, masks honoured."""

import pytest
import torch

from graphrec.augment import (edge_dropout, feature_noise, history_subset, mask_modality, modality_dropout,
                              perturb_features, set_view)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_edge_dropout_seeded_subset():
    e = torch.stack([torch.arange(100) % 7, torch.arange(100) % 11])
    a, b = edge_dropout(e, 0.3, gen(1)), edge_dropout(e, 0.3, gen(1))
    assert torch.equal(a, b)
    assert 40 < a.shape[1] < 95 and a.shape[0] == 2
    assert not torch.equal(a, edge_dropout(e, 0.3, gen(2)))
    assert torch.equal(edge_dropout(e, 0.0), e)
    with pytest.raises(ValueError):
        edge_dropout(e, 1.0)


def csr():
    # user 0: items 0..5; user 1: none; user 2: item 7
    indptr = torch.tensor([0, 6, 6, 7])
    items = torch.tensor([0, 1, 2, 3, 4, 5, 7])
    return indptr, items


def test_history_subset_keeps_one_and_belongs_to_user():
    indptr, items = csr()
    users = torch.tensor([2, 0, 1])
    for s in range(20):
        rows, its = history_subset(indptr, items, users, keep=0.2, generator=gen(s))
        assert set(rows.tolist()) == {0, 1}  # user 1 has no history; others keep >= 1
        assert its[rows == 0].tolist() == [7]
        assert set(its[rows == 1].tolist()) <= set(range(6))
    r1 = history_subset(indptr, items, users, 0.5, gen(3))
    r2 = history_subset(indptr, items, users, 0.5, gen(3))
    assert all(torch.equal(x, y) for x, y in zip(r1, r2))
    rows, its = history_subset(indptr, items, users, 1.0, gen(0), max_items=2)
    assert (rows == 1).sum() == 2 and (rows == 0).sum() == 1
    rows, its = history_subset(indptr, items, users, 1.0, gen(0))
    assert sorted(its[rows == 1].tolist()) == list(range(6))


def test_set_view_mean():
    emb = torch.arange(16, dtype=torch.float).view(8, 2)
    v = set_view(emb, torch.tensor([0, 0, 2]), torch.tensor([1, 3, 7]), 3)
    assert v.shape == (3, 2)
    assert torch.allclose(v[0], (emb[1] + emb[3]) / 2) and v[1].abs().sum() == 0 and torch.equal(v[2], emb[7])


def feats(n=50):
    g = gen(9)
    text = (torch.randn(n, 4, generator=g), torch.rand(n, generator=g) > 0.1)
    image = (torch.randn(n, 6, generator=g), torch.rand(n, generator=g) > 0.2)
    return {"text": (text[0] * text[1].unsqueeze(1), text[1]), "image": (image[0] * image[1].unsqueeze(1), image[1])}


def test_modality_dropout_shapes_masks_keep_one():
    f = feats()
    out, dropped = modality_dropout(f, 0.6, gen(0))
    had_any = f["text"][1] | f["image"][1]
    has_any = out["text"][1] | out["image"][1]
    assert torch.equal(had_any, has_any)  # keep_one: no item loses all its content
    for m in f:
        assert out[m][0].shape == f[m][0].shape and out[m][1].shape == f[m][1].shape
        assert (out[m][0][dropped[m]] == 0).all() and not out[m][1][dropped[m]].any()
        assert torch.equal(out[m][0][~dropped[m]], f[m][0][~dropped[m]])
        assert not (dropped[m] & ~f[m][1]).any()  # only present rows are dropped
    assert sum(int(d.sum()) for d in dropped.values()) > 10
    again, _ = modality_dropout(f, 0.6, gen(0))
    assert all(torch.equal(again[m][0], out[m][0]) for m in f)
    no_keep, d2 = modality_dropout(f, 0.9, gen(0), keep_one=False)
    assert (no_keep["text"][1] | no_keep["image"][1]).sum() < had_any.sum()
    only_img, d3 = modality_dropout(f, 0.9, gen(0), modalities=["image"])
    assert not d3["text"].any()
    assert f["text"][0].abs().sum() > 0  # input untouched


def test_mask_modality():
    f = feats()
    out = mask_modality(f, "image")
    assert not out["image"][1].any() and out["image"][0].abs().sum() == 0 and torch.equal(out["text"][0], f["text"][0])
    part = mask_modality(f, "text", torch.tensor([0, 1]))
    assert not part["text"][1][:2].any() and torch.equal(part["text"][1][2:], f["text"][1][2:])
    with pytest.raises(KeyError):
        mask_modality(f, "audio")


def test_feature_noise_seeded_and_masked():
    x, mask = feats()["image"]
    y = feature_noise(x, mask, 0.1, gen(4))
    assert y.shape == x.shape and torch.equal(y, feature_noise(x, mask, 0.1, gen(4)))
    assert torch.equal(y[~mask], x[~mask])  # absent rows stay zero
    rel = ((y - x)[mask].norm(dim=1) / x[mask].norm(dim=1)).mean()
    assert 0.05 < rel < 0.2
    assert torch.equal(feature_noise(x, mask, 0.0), x)
    p = perturb_features(feats(), 0.1, gen(0))
    assert set(p) == {"text", "image"}


def test_with_modality_removed_only_cold_items():
    from synthetic import make_synthetic

    from graphrec.augment import with_modality_removed

    d = make_synthetic()
    out = with_modality_removed(d, "image")
    cold = torch.unique(torch.cat([d.cold_val_items, d.cold_test_items]))
    assert not out.features["image"].mask[cold].any() and out.features["image"].x[cold].abs().sum() == 0
    warm = torch.ones(d.num_items, dtype=torch.bool)
    warm[cold] = False
    assert torch.equal(out.features["image"].x[warm], d.features["image"].x[warm])
    assert torch.equal(out.features["text"].x, d.features["text"].x) and out.train is d.train
    assert d.features["image"].mask[cold].any()  # the original is untouched
    assert out.features["image"].meta["removed_items"] == int(d.features["image"].mask[cold].sum())
    with pytest.raises(KeyError):
        with_modality_removed(d, "audio")


def test_sequence_subset_keeps_order_and_at_least_one_item():
    from graphrec.augment import sequence_subset

    seqs = torch.tensor([[5, 6, 7, 8, -1], [1, 2, -1, -1, -1], [-1, -1, -1, -1, -1], [9, 3, 4, 2, 0]])
    lens = torch.tensor([4, 2, 0, 5])
    g = torch.Generator().manual_seed(0)
    seen_partial = False
    for _ in range(50):
        out, n = sequence_subset(seqs, lens, 0.5, generator=g)
        assert out.shape == seqs.shape and n[2] == 0 and (out[2] == -1).all()
        for b in (0, 1, 3):
            assert 1 <= n[b] <= lens[b]
            kept = out[b, : n[b]].tolist()
            assert (out[b, n[b]:] == -1).all()
            orig = seqs[b, : lens[b]].tolist()
            assert [x for x in orig if x in kept] == kept  # a subsequence, in time order
            seen_partial |= n[b] < lens[b]
    assert seen_partial
    full, n_full = sequence_subset(seqs, lens, 1.0)
    assert torch.equal(full, seqs) and torch.equal(n_full, lens)
    with pytest.raises(ValueError, match="keep"):
        sequence_subset(seqs, lens, 0.0)
