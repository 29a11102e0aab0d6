"""Contract tests of the baselines on tiny synthetic data (fast, deterministic)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from graphrec.baselines import BASELINES, fit_baseline, get_baseline
from graphrec.baselines.common import BPRSampler, content_features
from graphrec.baselines.config import BaselinesConfig
from graphrec.baselines.store import load_scorer, save_scorer
from graphrec.baselines.tune import expand_grid, tune, tune_all
from graphrec.config_base import ConfigError
from graphrec.data.dataset import RecData
from graphrec.data.features import ItemFeatures
from graphrec.evaluation.protocol import make_validator, validation_score


def fit(name, d, params, seed=0, teacher=None):
    return fit_baseline(name, d, params, seed, make_validator(d), False, teacher)


def make_data(num_users: int = 60, num_items: int = 90, dim: int = 8, seed: int = 0, k: int = 12) -> RecData:
    """Users like items whose hidden vector aligns with theirs; features are noisy views of it.

    The first 2/3 of the items are warm (edges split train / val_warm / test_warm), then
    1/6 cold-val and 1/6 cold-test. "text" sees the hidden vector plus noise (a few rows missing), "image"
    a random linear map of it plus more noise.
    """
    g = torch.Generator().manual_seed(seed)
    zu = torch.randn(num_users, dim, generator=g)
    zi = torch.randn(num_items, dim, generator=g)
    logits = zu @ zi.T
    c_val, c_test = num_items * 2 // 3, num_items * 5 // 6
    top = logits.topk(k, 1).indices  # each user's 12 favourite items
    rows = {n: [] for n in ("train", "val_warm", "test_warm", "val_cold", "test_cold")}
    for u in range(num_users):
        for rank, i in enumerate(top[u].tolist()):
            if i >= c_test:
                name = "test_cold"
            elif i >= c_val:
                name = "val_cold"
            else:
                r = (u + rank) % 6
                name = "val_warm" if r == 0 else "test_warm" if r == 1 else "train"
            rows[name].append((f"u{u}", f"i{i}"))
    splits = {n: pd.DataFrame(v, columns=["user_id", "item_id"]) for n, v in rows.items()}
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(num_items)]})
    ids = items["item_id"].tolist()
    text_mask = torch.ones(num_items, dtype=torch.bool)
    text_mask[[3, 65, 80]] = False
    text = (zi + 0.3 * torch.randn(num_items, dim, generator=g)) * text_mask.unsqueeze(1)
    proj = torch.randn(dim, 12, generator=g)
    image = zi @ proj + 1.0 * torch.randn(num_items, 12, generator=g) + 5.0  # large common offset
    feats = {"text": ItemFeatures("text", ids, text, text_mask),
             "image": ItemFeatures("image", ids, image, torch.ones(num_items, dtype=torch.bool))}
    return RecData.from_frames(splits, items, feats)


T = {"dim": 8, "epochs": 3, "eval_every": 3}  # tiny teacher, one validation pass
SMALL = {
    "random": {},
    "popularity": {},
    "content_knn": {"text_weight": 0.5},
    "mf_bpr": {"dim": 8, "epochs": 4, "batch_size": 128, "eval_every": 1},
    "lightgcn": {"dim": 8, "epochs": 4, "batch_size": 256, "eval_every": 1},
    "dropoutnet": {"dim": 8, "hidden": 16, "epochs": 3, "batch_size": 128, "eval_every": 3, "teacher": T},
    "heater": {"dim": 8, "hidden": 16, "epochs": 3, "batch_size": 128, "eval_every": 3, "teacher": T},
    "clcrec": {"dim": 8, "hidden": 16, "epochs": 3, "batch_size": 128, "num_neg": 16, "eval_every": 3},
    "aldi": {"hidden": 16, "epochs": 3, "batch_size": 128, "eval_every": 3, "teacher": T},
    "item_knn": {"k": 5, "alpha": 2.0},
    "knn_pop": {"weight": 0.5, "ridge": 1.0},
    "content_cf_nb": {"k": 4, "temperature": 0.1, "teacher": T},
    "content_cf_reg": {"hidden": 16, "epochs": 3, "batch_size": 128, "eval_every": 3, "teacher": T},
}


@pytest.fixture(scope="module")
def data() -> RecData:
    return make_data()


def test_registry_covers_all():
    assert set(SMALL) == set(BASELINES)
    with pytest.raises(KeyError, match="unknown baseline"):
        get_baseline("nope")


@pytest.mark.parametrize("name", sorted(SMALL))
def test_fit_scores_shape_finite_deterministic(data, name):
    users = torch.arange(data.num_users)
    s1 = fit(name, data, SMALL[name], seed=3).score(users)
    assert s1.shape == (data.num_users, data.num_items)
    assert torch.isfinite(s1).all()
    sc = fit(name, data, SMALL[name], seed=3)
    assert torch.equal(sc.score(users), s1)
    # batching does not change scores
    assert torch.allclose(sc.score(users[:7]), s1[:7], atol=1e-5)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_stored_scorer_scores_the_same(data, name, tmp_path):
    sc = fit(name, data, SMALL[name], seed=1)
    path = save_scorer(tmp_path / "scorer.pt", sc, meta={"name": name})
    back = load_scorer(path)
    users = torch.arange(data.num_users)
    assert torch.equal(back.score(users), sc.score(users))
    assert back.meta == {"name": name} and getattr(back, "supports_cold", True) == getattr(sc, "supports_cold", True)


def test_corrupt_stored_scorer_is_named(tmp_path):
    p = tmp_path / "scorer.pt"
    p.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="scorer.pt"):
        load_scorer(p)


@pytest.mark.parametrize("name", ["mf_bpr", "lightgcn"])
def test_warm_only_models_declare_it(data, name):
    assert get_baseline(name).supports_cold is False
    sc = fit(name, data, SMALL[name], seed=0)
    assert sc.supports_cold is False
    s = sc.score(torch.arange(5))
    cold = torch.cat([data.cold_val_items, data.cold_test_items])
    # items without training edges rank below every warm item
    assert (s[:, cold].max(1).values < s[:, data.warm_items].min(1).values).all()


@pytest.fixture(scope="module")
def signal_data() -> RecData:
    return make_data(num_users=80, num_items=240, k=20, seed=1)


TEACHER = {"dim": 8, "epochs": 30, "lr": 5e-2, "batch_size": 256, "eval_every": 10}
LEARN = {"epochs": 12, "patience": 12, "lr": 1e-2, "batch_size": 256, "eval_every": 4}
SIGNAL = {
    "content_knn": {},
    "item_knn": {"k": 20},
    "knn_pop": {"weight": 0.25},
    "dropoutnet": {**LEARN, "dim": 8, "hidden": 32, "teacher": TEACHER},
    "heater": {**LEARN, "dim": 8, "hidden": 32, "teacher": TEACHER},
    "clcrec": {**LEARN, "dim": 8, "hidden": 32, "num_neg": 32},
    "aldi": {**LEARN, "hidden": 32, "teacher": TEACHER},
}


@pytest.mark.parametrize("name", [n if n in ("content_knn", "clcrec", "item_knn", "knn_pop") else pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(SIGNAL)])
def test_content_models_beat_random_on_cold(signal_data, name):
    d = signal_data
    rnd = validation_score(fit("random", d, {}), d, "cold", "ndcg@20")
    got = validation_score(fit(name, d, SIGNAL[name]), d, "cold", "ndcg@20")
    assert got > rnd + 0.1, (name, got, rnd)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_fits_shared_synthetic(name):
    from tests.synthetic import make_synthetic

    d = make_synthetic()
    s = fit(name, d, SMALL[name]).score(torch.arange(d.num_users))
    assert s.shape == (d.num_users, d.num_items) and torch.isfinite(s).all()


def test_unknown_param_is_an_error(data):
    with pytest.raises(KeyError, match="content_knn.*'k'"):
        fit("content_knn", data, {"k": 3})


def test_content_features_fit_on_train_items_only(data):
    x = content_features(data, ["image"], {"image": 1.0})
    train_items = torch.unique(data.train[1])
    raw = data.features["image"].x
    # changing cold items' raw features must not change warm items' processed rows
    data2 = make_data()
    data2.features["image"].x[data.cold_test_items] += 100.0
    x2 = content_features(data2, ["image"], {"image": 1.0})
    assert torch.allclose(x[train_items], x2[train_items], atol=1e-6)
    assert torch.allclose(x.norm(dim=1), torch.ones(len(raw)), atol=1e-5)
    t = content_features(data, ["text"], {"text": 1.0})
    assert (t[~data.features["text"].mask] == 0).all()


def test_bpr_negatives_exclude_train_positives(data):
    s = BPRSampler(data, torch.Generator().manual_seed(0))
    u = data.train[0].repeat(20)
    neg = s.negatives(u)
    assert not s.is_positive(u, neg).any()
    warm = torch.zeros(data.num_items, dtype=torch.bool)
    warm[data.train[1]] = True
    assert warm[neg].all()  # negatives come from training items only


def test_lightgcn_propagation_matches_pyg(data):
    from torch_geometric.nn.models import LightGCN

    from graphrec.baselines.lightgcn import normalized_adjacency, propagate, train_graph

    n = data.num_users + data.num_items
    torch.manual_seed(0)
    model = LightGCN(n, 8, 2)
    ei = train_graph(data)
    assert torch.allclose(propagate(model, normalized_adjacency(ei, n)), model.get_embedding(ei), atol=1e-5)


def test_expand_grid_respects_budget():
    grid = {"a": [1, 2, 3], "b": [0.1, 0.2]}
    assert len(expand_grid(grid, 10, 0)) == 6
    sub = expand_grid(grid, 4, 0)
    assert len(sub) == 4 and sub == expand_grid(grid, 4, 0)
    assert expand_grid({}, 3, 0) == [{}]


def test_tune_selects_on_validation(data):
    v = make_validator(data)
    scorer, params, trials = tune("content_knn", data, {"text_weight": [0.0, 1.0]}, budget=4, seed=0, validate=v,
                                  progress=False)
    assert len(trials) == 2
    best = max(trials, key=lambda t: t["value"])
    assert params == best["params"]
    assert all(t["setting"] == "cold" and t["metric"] == "ndcg@20" for t in trials)
    _, _, mf_trials = tune("mf_bpr", data, {"lr": [1e-2]}, 1, 0, v, False, fixed={"dim": 8, "epochs": 2})
    assert mf_trials[0]["setting"] == "warm"


def test_tune_all_shares_teacher(data):
    cfg = BaselinesConfig(names=["mf_bpr", "aldi"], budget=1, progress=False,
                          grids={"mf_bpr": {"dim": [8], "epochs": [2]},
                                 "aldi": {"hidden": [16], "epochs": [2]}})
    res = tune_all(data, cfg, make_validator(data))
    assert res["aldi"]["teacher"] == "mf_bpr"
    assert res["mf_bpr"]["supports_cold"] is False and res["aldi"]["budget"] == 1
    # the shared teacher is the tuned MF-BPR itself: ALDI scores warm items with its vectors
    mf = res["mf_bpr"]["scorer"]
    users = torch.arange(5)
    warm = data.warm_items
    assert torch.allclose(res["aldi"]["scorer"].score(users)[:, warm], mf.score(users)[:, warm], atol=1e-5)


def test_config_is_strict():
    with pytest.raises(ConfigError, match="names"):
        BaselinesConfig(names=["nope"])
    from graphrec.config import Config

    with pytest.raises(ConfigError, match="grids.mf_bpr.lrr"):
        Config.from_dict({"baselines": {"grids": {"mf_bpr": {"lrr": [1]}}}})
    assert BaselinesConfig().budget_of("content_knn") == 5


def test_item_knn_matches_its_definition(data):
    """score(u, i) = sum over the user's train items j among i's k nearest warm items of sim(i, j) ** alpha."""
    p = {"k": 3, "alpha": 2.0, "text_weight": 0.5}
    sc = fit("item_knn", data, p)
    from graphrec.baselines.content_knn import modality_weights

    x = content_features(data, weights=modality_weights(data, 0.5))
    warm = torch.unique(data.train[1])
    u = 4
    hist = set(data.train[1][data.train[0] == u].tolist())
    for i in (0, int(data.cold_test_items[0])):
        sim = x[i] @ x[warm].T
        sim[warm == i] = float("-inf")
        top = sim.topk(3)
        want = sum(max(v, 0.0) ** 2 for v, j in zip(top.values.tolist(), warm[top.indices].tolist()) if j in hist)
        assert sc.score(torch.tensor([u]))[0, i].item() == pytest.approx(want, abs=1e-5)


def test_knn_pop_weight_zero_is_content_knn_ranking(data):
    users = torch.arange(data.num_users)
    a = fit("knn_pop", data, {"weight": 0.0, "text_weight": 0.5}).score(users)
    b = fit("content_knn", data, {"text_weight": 0.5}).score(users)
    torch.testing.assert_close(a / a.norm(), b / b.norm(), atol=1e-6, rtol=1e-4)  # the same scores up to scale
    c = fit("knn_pop", data, {"weight": 100.0, "text_weight": 0.5}).score(users)
    top = [set(c[u].argsort(descending=True)[:10].tolist()) for u in (0, 1)]
    assert len(top[0] & top[1]) >= 8  # the prior dominates: users get (nearly) the same list


def test_content_cf_nb_uses_teacher_vectors(data):
    P = torch.randn(data.num_users, 4)
    Q = torch.randn(data.num_items, 4)
    sc = fit("content_cf_nb", data, {"k": 2}, teacher=(P, Q))
    warm = torch.unique(data.train[1])
    torch.testing.assert_close(sc.item_emb[warm], Q[warm])
    assert torch.allclose(sc.user_emb, P)


def test_inert_settings_are_not_tuned(data):
    from graphrec.data.dataset import RecData

    text_only = RecData(**{k: getattr(data, k) for k in ("user_ids", "item_ids", "train", "val_warm", "test_warm", "val_cold",
                                                          "test_cold", "warm_items", "cold_val_items", "cold_test_items")},
                        features={"text": data.features["text"]})
    _, params, trials = tune("content_knn", text_only, {"text_weight": [0.0, 0.5, 1.0]}, 5, 0, make_validator(text_only), False)
    assert len(trials) == 1 and "text_weight" not in params
    assert "one modality" in trials[0]["not_tuned"]["text_weight"]
