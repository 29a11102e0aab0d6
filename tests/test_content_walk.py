"""The learned content walk: its start is the content walk, training finds the content directions that
predict co-consumption, selection on validation, and serving / checkpoints reproduce it exactly."""

from types import SimpleNamespace

import pytest
import torch
from synthetic import assert_serving_reproduces, make_synthetic, train

from graphrec.nn import ModelConfig
from graphrec.nn.content_walk import LearnedWalk
from graphrec.recipes.walk import fit_walk
from graphrec.nn.ensemble import GraphRecEnsemble
from graphrec.training import TrainConfig

MC = ModelConfig(dim=8, proj_hidden=16, num_layers=1, knn_k=3)


def _taste_graph(seed: int = 0, users: int = 300, items: int = 200):
    """Items: 2 taste dimensions drowned in 30 louder noise dimensions; each user takes the items
    nearest their taste. A plain cosine sees mostly noise; the directions that predict what a user
    takes are learnable. Returns vectors (I, F), train edges (2, E), held-out edges (2, E')."""
    g = torch.Generator().manual_seed(seed)
    taste = torch.randn(items, 2, generator=g)
    x = torch.nn.functional.normalize(torch.cat([taste, 3.0 * torch.randn(items, 30, generator=g)], 1), dim=1)
    pref = torch.randn(users, 2, generator=g)
    near = torch.cdist(pref, taste).argsort(1)[:, :12]  # (U, 12) each user's items
    perm = torch.rand(near.shape, generator=g).argsort(1)
    near = near.gather(1, perm)
    u = torch.arange(users).unsqueeze(1).expand_as(near)
    train = torch.stack([u[:, :8].reshape(-1), near[:, :8].reshape(-1)])
    held = torch.stack([u[:, 8:].reshape(-1), near[:, 8:].reshape(-1)])
    return x, train, held


def _held_out_recall(walk: LearnedWalk, train: torch.Tensor, held: torch.Tensor, users: int, k: int = 10) -> float:
    s = walk.scores(torch.arange(users))
    s[train[0], train[1]] = float("-inf")  # rank the items the user has not taken
    top = s.topk(k, dim=1).indices
    hit = torch.zeros_like(s, dtype=torch.bool)
    hit[held[0], held[1]] = True
    return float(hit.gather(1, top).sum() / held.shape[1])


def _bare_model(x, tr, n_users, temperature=0.1):
    """What :func:`fit_walk` reads of a GraphRec: its walk (attached), warm mask and train edges."""
    walk = LearnedWalk(x.shape[1], temperature=temperature)
    walk.attach(x, tr, n_users)
    return SimpleNamespace(walk=walk, warm=torch.ones(x.shape[0], dtype=torch.bool), train_edges=tr, _eval_cache=None)


def test_the_walk_starts_as_the_content_walk_and_training_learns_the_taste_directions():
    x, tr, held = _taste_graph()
    n_users = 300
    m = _bare_model(x, tr, n_users)
    m.walk.install(m.walk.task(m.warm, tr, 0.5).state())  # the start: A = B = identity, w = 0
    prof = torch.nn.functional.normalize(torch.zeros(n_users, x.shape[1]).index_add_(0, tr[0], x[tr[1]]), dim=1)
    torch.testing.assert_close(m.walk.scores(torch.arange(n_users)), prof @ x.T / 0.1, rtol=1e-5, atol=1e-5)
    start = _held_out_recall(m.walk, tr, held, n_users)
    m = _bare_model(x, tr, n_users)
    rec = fit_walk(m, TrainConfig(walk_epochs=60, walk_lr=1e-2, walk_batch_size=64), validator=None)
    assert not rec["selected"] and len(rec["history"]) == 60 and bool(m.walk.fitted)
    learned = _held_out_recall(m.walk, tr, held, n_users)
    assert learned > start + 0.15, (start, learned)  # held-out items were never in the profile of a training target


def test_selection_keeps_the_best_validated_epoch_and_the_start_competes():
    x, tr, _ = _taste_graph(seed=1, users=100, items=80)
    cfg = TrainConfig(walk_epochs=6, walk_eval_every=1, walk_patience=3, walk_lr=1e-2)

    def scripted(values):
        seen = []

        def validator(scorer, settings):
            seen.append(scorer.walk.a.clone())
            return {"cold/ndcg@20": next(values)}
        return validator, seen

    m = _bare_model(x, tr, 100)
    validator, seen = scripted(iter([0.1, 0.2, 0.5, 0.3, 0.2, 0.1]))  # start, then epochs 1..5
    rec = fit_walk(m, cfg, validator)
    assert rec["best"] == 0.5 and len(rec["history"]) == 5  # 3 validations without a gain stop it
    torch.testing.assert_close(m.walk.a, seen[2])  # the state that scored 0.5 is the one kept
    m = _bare_model(x, tr, 100)
    validator, seen = scripted(iter([0.9, 0.2, 0.3, 0.1]))
    fit_walk(m, cfg, validator)
    torch.testing.assert_close(m.walk.a, torch.eye(x.shape[1]))  # nothing beat the plain content walk



def _crowd_graph(seed: int = 0, users: int = 240, groups: int = 4):
    """Items of ``groups`` audiences. "Transparent" items show their audience in their content (a
    strong group coordinate); "opaque" warm items carry content unrelated to it (noise in other
    coordinates). Every user takes 10 opaque items of their audience; even users also 2 transparent
    ones, odd users none, so an odd user's content profile says nothing about them: only what taking
    an opaque item says about its takers (an item code) does. The held-out items are cold,
    transparent items of the user's audience. Returns x (I, F), train (2, E), held-out (2, E'), warm (I,)."""
    g = torch.Generator().manual_seed(seed)
    f = 16

    def items(n, audience):  # audience None = opaque
        if audience is None:
            return torch.cat([torch.zeros(n, f), torch.randn(n, f, generator=g)], 1)
        x = 0.3 * torch.randn(n, f, generator=g)
        x[:, audience] += 3.0
        return torch.cat([x, torch.zeros(n, f)], 1)

    xs, grp, kind = [], [], []  # kind 0 opaque, 1 transparent warm, 2 cold
    for c in range(groups):
        xs += [items(40, None), items(10, c)]
        grp += [c] * 50
        kind += [0] * 40 + [1] * 10
    for c in range(groups):
        xs.append(items(10, c))
        grp += [c] * 10
        kind += [2] * 10
    x, grp, kind = torch.nn.functional.normalize(torch.cat(xs), dim=1), torch.tensor(grp), torch.tensor(kind)
    audience = torch.randint(0, groups, (users,), generator=g)
    tr, held = [], []
    for u in range(users):
        for k, n in ((0, 10), (1, 2 if u % 2 == 0 else 0), (2, 4)):
            pool = torch.nonzero((grp == audience[u]) & (kind == k)).flatten()
            pick = pool[torch.randperm(len(pool), generator=g)[:n]]
            (held if k == 2 else tr).extend((u, int(i)) for i in pick)
    return x, torch.tensor(tr).T, torch.tensor(held).T, kind != 2


def _cold_recall(walk: LearnedWalk, held: torch.Tensor, warm: torch.Tensor, users: int, k: int = 5) -> float:
    s = walk.scores(torch.arange(users))
    s[:, warm] = float("-inf")  # rank the cold items only
    hit = torch.zeros_like(s, dtype=torch.bool)
    hit[held[0], held[1]] = True
    return float(hit.gather(1, s.topk(k, dim=1).indices).sum() / held.shape[1])


def test_item_codes_let_the_walk_read_a_user_whose_history_content_says_nothing():
    x, tr, held, warm = _crowd_graph()
    odd = held[:, held[0] % 2 == 1]  # users with opaque items only
    recall = {}
    for codes in (False, True):
        walk = LearnedWalk(x.shape[1], temperature=0.1, num_codes=x.shape[0] if codes else 0)
        walk.attach(x, tr, 240)
        m = SimpleNamespace(walk=walk, warm=warm, train_edges=tr, _eval_cache=None)
        fit_walk(m, TrainConfig(walk_epochs=60, walk_lr=1e-2, walk_batch_size=64), validator=None)
        recall[codes] = _cold_recall(walk, odd, warm, 240)
        if codes:
            assert walk.codes[~warm].abs().sum() == 0 and walk.codes[warm].abs().sum() > 0  # cold items have none
    walk.install((torch.eye(x.shape[1]),) * 2 + (torch.zeros(x.shape[1]), torch.zeros(x.shape[0], x.shape[1])))
    start = _cold_recall(walk, odd, warm, 240)  # codes at 0: the plain content walk
    assert recall[True] > recall[False] + 0.08 and recall[True] > start + 0.25, (start, recall)


def test_a_walk_state_must_match_the_walk_it_is_installed_in():
    walk = LearnedWalk(4, num_codes=6)
    with pytest.raises(ValueError, match="with item codes"):
        walk.install((torch.eye(4), torch.eye(4), torch.zeros(4)))
    with pytest.raises(ValueError, match="without item codes"):
        LearnedWalk(4).install((torch.eye(4), torch.eye(4), torch.zeros(4), torch.zeros(6, 4)))


@pytest.fixture(scope="module")
def data():
    return make_synthetic(num_users=40, num_items=60, seed=5)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = []
    for seed in (0, 1):
        tc = TrainConfig(seed=seed, epochs=2, batch_size=64, num_negatives=8, tensorboard=False, warm_refine_epochs=0,
                         walk_epochs=3, walk_eval_every=1)
        d = tmp_path_factory.mktemp("walk") / f"m{seed}"
        out.append((train(data, MC, tc, d)[0], d))
    return out


def test_calibration_fits_the_walk_and_a_checkpoint_brings_it_back(data, trained):
    import json

    from graphrec.training import load_checkpoint

    model, out_dir = trained[0]
    assert bool(model.walk.fitted)
    rec = json.loads((out_dir / "calibration.json").read_text())
    assert rec["walk_fit"]["selected_on"] == "cold/ndcg@20" and "walk" in rec["chosen"]
    assert len(rec["walk_fit"]["history"]) == 3
    assert any(g.get("walk", 0) > 0 for g in rec["grid"])  # its weight was searched
    again = load_checkpoint(out_dir / "checkpoint.pt")
    torch.testing.assert_close(again.walk.a, model.walk.a)
    users = torch.arange(data.num_users)
    model.walk.weight.fill_(0.8)
    again.walk.weight.fill_(0.8)
    torch.testing.assert_close(again.score(users), model.score(users))
    model.walk.weight.fill_(float(rec["weights"]["walk_weight"]))


def _with_walk_weight(m, w):
    old = float(m.walk.weight)
    m.walk.weight.fill_(w)
    return old


def test_an_active_walk_changes_cold_items_only_and_serving_reproduces_it(data, trained):
    m = trained[0][0]
    users = torch.arange(data.num_users)
    old = _with_walk_weight(m, 0.0)
    before = m.score(users).clone()
    _with_walk_weight(m, 0.6)
    after = m.score(users)
    torch.testing.assert_close(after[:, m.warm], before[:, m.warm])
    assert not torch.allclose(after[:, ~m.warm], before[:, ~m.warm])
    assert_serving_reproduces(m, data, after, MC.modalities)  # a new item = its cold catalogue self
    _with_walk_weight(m, old)


def test_ensemble_serving_keeps_each_members_walk(data, trained):
    a, b = trained[0][0], trained[1][0]
    olds = _with_walk_weight(a, 0.5), _with_walk_weight(b, 1.5)
    assert not torch.allclose(a.walk.a, b.walk.a)  # trained apart (seeds)
    ens = GraphRecEnsemble([a, b])
    assert_serving_reproduces(ens, data, ens.score(torch.arange(data.num_users)), MC.modalities)
    _with_walk_weight(a, olds[0])
    _with_walk_weight(b, olds[1])


def test_a_new_text_share_drops_the_fitted_walk(data, trained):
    from graphrec.training import load_checkpoint

    m = load_checkpoint(trained[0][1] / "checkpoint.pt")
    assert bool(m.walk.fitted)
    m.set_content_text_weight(1.0)
    assert m.walk is not None and not bool(m.walk.fitted) and not m.walk.active
    assert m.walk.in_dim == m.modality_dims["text"]  # image has share 0: left out of the walk's input


def test_walk_options_are_checked():
    from graphrec.config_base import ConfigError

    with pytest.raises(ConfigError, match="walk_keep"):
        TrainConfig(walk_keep=1.0)
    with pytest.raises(ConfigError, match="walk_epochs"):
        TrainConfig(walk_epochs=0)
    with pytest.raises(ConfigError, match="walk_dim"):
        ModelConfig(walk_temperature=0.0)
    with pytest.raises(ConfigError, match="calibrate_walk"):
        TrainConfig(calibrate_walk=[1.0, -0.5])


def test_an_empty_walk_grid_leaves_the_walk_unfitted(data, tmp_path):
    import json

    tc = TrainConfig(epochs=1, batch_size=64, num_negatives=8, tensorboard=False, warm_refine_epochs=0, calibrate_walk=[])
    model, _ = train(data, MC, tc, tmp_path)
    assert model.walk is not None and not bool(model.walk.fitted) and not model.walk.active
    rec = json.loads((tmp_path / "calibration.json").read_text())
    assert "walk_fit" not in rec and all(g.get("walk", 0) == 0 for g in rec["grid"])


def test_the_ablation_without_the_learned_walk_is_read_from_the_calibration_grid(data, trained):
    import json

    from graphrec.evaluation.mechanisms import mechanism_variants

    model, out_dir = trained[0]
    rec = json.loads((out_dir / "calibration.json").read_text())
    v = mechanism_variants(model, rec)
    no_walk = v["graphrec-no_learned_walk"]
    grid = [g for g in rec["grid"] if g.get("text_weight") == rec.get("text_weight")]
    best = max((g for g in grid if g.get("walk", 0) == 0), key=lambda g: g["value"])
    assert no_walk.walk_weight == 0.0 and no_walk.weights[0] == pytest.approx(
        best["profile"] * rec["cos_spread"] / rec["profile_spread"])
    users = torch.arange(data.num_users)
    old = _with_walk_weight(model, 0.9)
    before = model.score(users).clone()
    s = no_walk.score(users)
    assert float(model.walk.weight) == pytest.approx(0.9) and torch.equal(model.score(users), before)  # restored
    model.walk.weight.fill_(0.0)
    cs, bb = model.content_scores, model.backbone
    saved = (float(cs.profile_weight), float(cs.prior_weight), float(cs.cold_offset)), float(bb.transfer_weight)
    cs.set_weights(*no_walk.weights)
    bb.transfer_weight.fill_(no_walk.transfer_weight)
    torch.testing.assert_close(s, model.score(users))  # = the model with the walk's weight at 0
    cs.set_weights(*saved[0])
    bb.transfer_weight.fill_(saved[1])
    _with_walk_weight(model, old)


def test_ensemble_of_members_with_different_text_shares_still_serves_exactly(data, trained, tmp_path):
    from graphrec.training import load_checkpoint

    a = load_checkpoint(trained[0][1] / "checkpoint.pt")
    b = load_checkpoint(trained[1][1] / "checkpoint.pt")
    b.set_content_text_weight(0.9)  # its calibration chose another share: other content vectors
    b.content_scores.set_weights(0.4, 0.2, -0.1)
    ens = GraphRecEnsemble([a, b])
    assert_serving_reproduces(ens, data, ens.score(torch.arange(data.num_users)), MC.modalities)


def test_calibration_term_scores_include_the_walk_on_cold_columns_only(data, trained):
    from graphrec.recipes.calibrate import TermScores

    m = trained[0][0]
    old = _with_walk_weight(m, 0.8)
    terms = TermScores(m)
    assert terms.walk_scores.shape == (data.num_users, int((~m.warm).sum()))  # cold columns only
    users = torch.arange(data.num_users)
    torch.testing.assert_close(terms.score(users), m.score(users), rtol=1e-5, atol=1e-5)
    _with_walk_weight(m, old)


def test_a_walk_with_item_codes_round_trips_a_checkpoint_and_serves_exactly(data, tmp_path):
    from graphrec.training import load_checkpoint

    mc = ModelConfig(dim=8, proj_hidden=16, num_layers=1, knn_k=3, walk_codes=True)
    tc = TrainConfig(epochs=2, batch_size=64, num_negatives=8, tensorboard=False, warm_refine_epochs=0, walk_epochs=3,
                     walk_eval_every=1, walk_lr=1e-2)
    model, _ = train(data, mc, tc, tmp_path)
    w = model.walk
    assert w.codes is not None and w.codes.shape == (data.num_items, w.dim) and bool(w.fitted)
    users = torch.arange(data.num_users)
    again = load_checkpoint(tmp_path / "checkpoint.pt")
    torch.testing.assert_close(again.walk.codes, w.codes)
    torch.testing.assert_close(again.score(users), model.score(users))
    g = torch.Generator().manual_seed(0)
    codes = torch.zeros_like(w.codes)
    codes[model.warm] = torch.randn(int(model.warm.sum()), w.dim, generator=g)  # codes that count, whatever the fit chose
    before = model.score(users).clone()
    w.install((w.a.clone(), w.b.clone(), w.w.clone(), codes))
    w.weight.fill_(0.7)
    scores = model.score(users)
    assert not torch.allclose(scores[:, ~model.warm], before[:, ~model.warm])
    assert_serving_reproduces(model, data, scores, mc.modalities)  # a new item = its cold catalogue self
    model.reset_walk()  # keeps the walk's kind
    assert model.walk.codes is not None and not bool(model.walk.fitted)
