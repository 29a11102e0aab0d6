"""Shared model contract on a tiny synthetic graph with fake encoders: shapes, save/load round
trip, determinism under a seed, finite scores for unseen items, every loss term decreasing."""

import pytest
import torch
from synthetic import make_synthetic, train

from graphrec.nn import ModelConfig, build_model
from graphrec.task import GraphRecTask
from graphrec.training import TrainConfig, load_checkpoint, seed_everything
from graphrec.training.sampling import NegativeSampler
from graphrec.recipes.graphrec import model_features

MC = ModelConfig(dim=16, proj_hidden=32, num_layers=2, knn_k=3)
TC = TrainConfig(epochs=2, batch_size=64, num_negatives=8, tensorboard=False, patience=5)



@pytest.fixture(scope="module")
def data():
    return make_synthetic(num_users=40, num_items=60, seed=1)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    model, history = train(data, MC, TC, out)
    return model, history, out


def _model(data, cfg=MC, seed=0):
    seed_everything(seed)
    feats = model_features(data, cfg.modalities)
    m = build_model(cfg, data.num_users, data.num_items, {k: v[0].shape[1] for k, v in feats.items()})
    m.set_graph(data.train, feats)
    return m


def test_shapes(data):
    m = _model(data).eval()
    s = m.score(torch.arange(7))
    assert s.shape == (7, data.num_items) and torch.isfinite(s).all()
    out = m.propagate()
    assert out["user"].shape == (data.num_users, 16)
    for k in ("collab", "content", "cold", "item"):
        assert out[k].shape == (data.num_items, 16)
    new = {k: (f.x[:3], f.mask[:3]) for k, f in data.features.items()}
    assert m.embed_items(new).shape == (3, 16)


def test_save_load_round_trip(data, trained):
    model, history, out = trained
    assert (out / "checkpoint.pt").exists() and (out / "config.yaml").exists()
    loaded = load_checkpoint(out / "checkpoint.pt")
    users = torch.arange(data.num_users)
    assert torch.equal(model.score(users), loaded.score(users))
    assert loaded.user_ids == data.user_ids and loaded.item_ids == data.item_ids
    assert loaded.fingerprints == {n: f.fingerprint for n, f in data.features.items()}
    info = loaded.checkpoint_info
    assert info["step"] > 0 and info["best_metric"] is not None and info["graphrec_version"]


def test_identical_under_seed(data, tmp_path):
    m1, h1 = train(data, MC, TC, tmp_path / "a")
    m2, h2 = train(data, MC, TC, tmp_path / "b")
    users = torch.arange(data.num_users)
    assert torch.equal(m1.score(users), m2.score(users))
    assert [h["loss"] for h in h1] == [h["loss"] for h in h2]


def test_unseen_items_get_catalogue_cold_embedding(data, trained):
    model = trained[0]
    cold = data.cold_test_items
    feats = {k: (f.x[cold], f.mask[cold]) for k, f in data.features.items()}
    new = model.embed_items(feats)
    _, items = model.embeddings()
    assert torch.allclose(new, items[cold], atol=1e-6)
    users, _ = model.serving_embeddings()
    scores = users[:5] @ model.serving_items(feats).T  # new items score as the cold catalogue items do
    torch.testing.assert_close(scores, model.score(torch.arange(5))[:, cold], rtol=1e-5, atol=1e-5)
    # an item with no modality at all, and one with only one modality, still score finitely
    x = {k: (torch.randn(2, f.dim), torch.tensor([False, k == "text"])) for k, f in data.features.items()}
    assert torch.isfinite(users[:5] @ model.serving_items(x).T).all()


def test_new_item_does_not_change_others(data, trained):
    """Cold items receive kNN messages but never send any: scores of catalogue items are unchanged
    by embedding new items, and a catalogue cold item is not a neighbour of anything."""
    model = trained[0]
    users = torch.arange(data.num_users)
    before = model.score(users).clone()
    model.embed_items({k: (torch.randn(4, f.dim), torch.ones(4, dtype=torch.bool)) for k, f in data.features.items()})
    assert torch.equal(model.score(users), before)
    senders = set(model.warm_index[model.knn_idx.flatten()].tolist())
    cold = set(torch.cat([data.cold_val_items, data.cold_test_items]).tolist())
    assert senders <= set(data.train[1].tolist()) and not senders & cold


def _optimise(data, cfg, weights, steps=15):
    tc = TC.replace(loss_weights=weights, lr=0.01)
    m = _model(data, cfg)
    task = GraphRecTask(m, tc)
    opt = torch.optim.Adam(task.parameters(), lr=tc.lr)
    g = seed_everything(0)
    users, pos = data.train[0, :64], data.train[1, :64]
    neg = NegativeSampler(data.train, data.num_items).sample(users, 8, g)
    first = {k: v.item() for k, v in task(users, pos, neg).items()}
    for _ in range(steps):
        terms = task(users, pos, neg)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
    last = {k: v.item() for k, v in task(users, pos, neg).items()}
    return first, last


@pytest.mark.parametrize("fusion", ["gated", "mean"])
def test_joint_loss_terms_decrease(data, fusion):
    """With all terms on, the total and every ranking/contrastive term go down over a few steps.

    (``reg`` starts at its minimum for the zero-initialised ID corrections, so it is checked
    on its own below.)"""
    cfg = MC.replace(dropout=0.0, id_dropout=0.0, fusion=fusion)
    first, last = _optimise(data, cfg, {"rec": 1.0, "cold_rec": 1.0, "align": 0.5, "modal": 0.5, "reg": 1e-3})
    assert set(first) == {"rec_loss", "cold_rec_loss", "align_loss", "modal_loss", "reg_loss", "loss"}
    for k in ("rec_loss", "cold_rec_loss", "align_loss", "modal_loss", "loss"):
        assert last[k] < first[k], (k, first[k], last[k])
    assert all(torch.isfinite(torch.tensor(v)) for v in last.values())


@pytest.mark.parametrize("term", ["rec", "cold_rec", "align", "modal", "reg"])
def test_each_loss_term_decreases_alone(data, term):
    cfg = MC.replace(dropout=0.0, id_dropout=0.0)
    first, last = _optimise(data, cfg, {term: 1.0}, steps=10)
    assert last[f"{term}_loss"] < first[f"{term}_loss"]


def test_zero_weight_terms_are_skipped(data):
    m = _model(data)
    task = GraphRecTask(m, TC.replace(loss_weights={"rec": 1.0}))
    terms = task(data.train[0, :8], data.train[1, :8], data.train[1, :8].unsqueeze(1))
    assert set(terms) == {"rec_loss", "loss"}


def test_model_without_knn_or_id(data):
    m = _model(data, MC.replace(knn_k=0, use_id_embedding=False, modalities=["text"])).eval()
    assert torch.isfinite(m.score(torch.arange(3))).all()


def test_projector_fast_path_on_constant_features_is_the_same_function():
    # constant inputs take the folded-LayerNorm path; an input that needs a gradient takes the plain
    # LayerNorm -> Linear path: same outputs and the same parameter gradients
    from graphrec.nn import ModalityProjector

    torch.manual_seed(3)
    proj = ModalityProjector(24, 8, hidden=16, dropout=0.0)
    with torch.no_grad():  # a trained LayerNorm is not the identity
        proj.norm.weight.uniform_(0.5, 1.5)
        proj.norm.bias.normal_(0.0, 0.3)
    x = torch.randn(30, 24) * 3 + 1

    def run(inp):
        proj.zero_grad()
        out = proj(inp)
        (out.sin().sum()).backward()
        return out.detach(), {n: p.grad.clone() for n, p in proj.named_parameters()}

    fast, g_fast = run(x)
    slow, g_slow = run(x.clone().requires_grad_(True))
    assert torch.allclose(fast, slow, atol=1e-5)
    assert g_fast.keys() == g_slow.keys()
    for n in g_fast:
        assert torch.allclose(g_fast[n], g_slow[n], atol=1e-4), n


def test_training_pass_on_warm_items_only_gives_the_same_losses(data):
    # training skips the item tower of items without train edges: isolated nodes, read by no loss term
    torch.manual_seed(0)
    cfg = MC.replace(dropout=0.0, id_dropout=0.0)
    feats = model_features(data, cfg.modalities)
    model = build_model(cfg, data.num_users, data.num_items, {k: v[0].shape[1] for k, v in feats.items()})
    model.set_graph(data.train, feats)
    assert 0 < len(model.warm_index) < data.num_items  # the synthetic split has cold items
    task = GraphRecTask(model, TC, train_csr=data.csr("train")).train()
    users, pos = data.train[0, :32], data.train[1, :32]
    neg, valid = NegativeSampler(data.train, data.num_items).sample_shared(users, 8, torch.Generator().manual_seed(0))
    got = task(users, pos, neg, valid)
    full = model.propagate(warm_only=False)
    part = model.propagate(warm_only=True)
    w = model.warm_index
    for key in ("user", "collab", "content", "cold", "item"):
        assert torch.allclose(full[key][w] if key != "user" else full[key], part[key][w] if key != "user" else part[key], atol=1e-6), key
    assert not part["content"][~model.warm].any()
    # the same task with the full pass
    orig = model.propagate
    model.propagate = lambda *a, **k: orig(*a, **{**k, "warm_only": False})
    try:
        ref = task(users, pos, neg, valid)
    finally:
        model.propagate = orig
    for k in ref:
        assert abs(got[k].item() - ref[k].item()) < 1e-5, k
