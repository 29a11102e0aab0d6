"""GraphRec's content score terms: definitions, calibration on validation, serving equality."""

import pytest
import torch
from synthetic import assert_serving_reproduces, make_synthetic, train

from graphrec.nn import ModelConfig, build_model
from graphrec.nn.ensemble import GraphRecEnsemble
from graphrec.recipes.calibrate import calibrate
from graphrec.recipes.graphrec import model_features
from graphrec.training import TrainConfig

MC = ModelConfig(dim=8, proj_hidden=16, num_layers=1, knn_k=3)


@pytest.fixture(scope="module")
def data():
    return make_synthetic(num_users=40, num_items=60, seed=5)


@pytest.fixture(scope="module")
def models(data, tmp_path_factory):
    root = tmp_path_factory.mktemp("cs")
    out = []
    for seed in (0, 1):
        tc = TrainConfig(seed=seed, epochs=2, batch_size=64, num_negatives=8, tensorboard=False, warm_refine_epochs=1)
        out.append(train(data, MC, tc, root / f"m{seed}")[0])
    return out


def _attached(data):
    feats = model_features(data, MC.modalities)
    m = build_model(MC, data.num_users, data.num_items, {k: v[0].shape[1] for k, v in feats.items()})
    m.set_graph(data.train, feats)
    return m.eval()


def _assert_serving_reproduces(m, data, scores):
    assert_serving_reproduces(m, data, scores, MC.modalities)


def test_profile_term_is_content_knn_and_prior_is_the_ridge_fit(data):
    from graphrec.baselines import fit_baseline

    m = _attached(data)
    knn = fit_baseline("content_knn", data, {"text_weight": 0.5})
    users = torch.arange(data.num_users)
    torch.testing.assert_close(m.content_scores.profile_scores(users), knn.score(users), atol=1e-5, rtol=1e-5)
    cs = m.content_scores
    warm = m.warm
    x, y = cs.item_vec[warm].double(), torch.log1p(torch.bincount(data.train[1], minlength=data.num_items)[warm].double())
    w = torch.linalg.solve(x.T @ x + MC.prior_ridge * torch.eye(x.shape[1], dtype=torch.float64), x.T @ (y - y.mean()))
    raw = cs.item_vec.double() @ w + y.mean()
    torch.testing.assert_close(cs.prior.double(), (raw - raw[warm].mean()) / raw[warm].std(), atol=1e-4, rtol=1e-4)
    # warm items' popularity is what the prior learnt: positively correlated on train items
    assert torch.corrcoef(torch.stack([cs.prior[warm].double(), y]))[0, 1] > 0


def test_terms_change_only_non_warm_items_and_serving_reproduces_them(data, models):
    m = models[0]
    users = torch.arange(data.num_users)
    before = m.score(users).clone()
    m.content_scores.set_weights(0.7, 0.3, -0.2)
    after = m.score(users)
    torch.testing.assert_close(after[:, m.warm], before[:, m.warm])
    assert not torch.allclose(after[:, ~m.warm], before[:, ~m.warm])
    _assert_serving_reproduces(m, data, after)
    m.content_scores.set_weights(0.0, 0.0, 0.0)


def test_ensemble_serving_with_calibrated_members(data, models):
    models[0].content_scores.set_weights(0.5, 0.2, 0.1)
    models[1].content_scores.set_weights(1.0, 0.0, -0.3)
    ens = GraphRecEnsemble(models)
    assert_serving_reproduces(ens, data, ens.score(torch.arange(data.num_users)), MC.modalities)
    for m in models:
        m.content_scores.set_weights(0.0, 0.0, 0.0)


def test_calibration_takes_the_best_validation_point(data, models):
    from graphrec.recipes.calibrate import score_spreads

    m = models[0]
    assert m.backbone.ready  # trained by the stage-like helper
    cfg = TrainConfig(calibrate_profile=[0.0, 1.0, 2.0], calibrate_prior=[0.0, 0.5], calibrate_offset=[-1.0, 0.0, 1.0],
                      calibrate_transfer=[0.0, 1.0], calibrate_warm_gnn=[0.0, 0.5, 1.0], calibrate_text_weight=[])
    s, s_p, s_t, _ = score_spreads(m, seed=cfg.seed)
    target = {"profile": 1.0 * s / s_p, "prior": 0.5 * s, "offset": -1.0 * s, "transfer": 1.0 * s / s_t, "warm": 0.5 * s_t / s}

    def scripted(model, settings):  # prefers the target's actual weights, one setting at a time
        if not hasattr(model, "content_scores"):  # the learned walk alone, while it is fitted: no preference
            return {"cold/ndcg@20": 0.0}
        cs, bb = model.content_scores, model.backbone
        if settings == ("warm",):
            return {"warm/ndcg@20": -abs(float(bb.warm_gnn_weight) - target["warm"])}
        if settings == ("cold",):
            return {"cold/ndcg@20": -abs(float(cs.profile_weight) - target["profile"])
                    - abs(float(cs.prior_weight) - target["prior"]) - abs(float(bb.transfer_weight) - target["transfer"])}
        return {"hybrid/ndcg@20": -abs(float(cs.cold_offset) - target["offset"])}

    rec = calibrate(m, cfg, scripted)
    # the walk adds nothing to this validator, so its weight stays 0 (its points are in the grid: 12 x 4 weights > 0)
    assert rec["chosen"] == {"gnn_warm": 0.5, "transfer": 1.0, "profile": 1.0, "prior": 0.5, "walk": 0.0, "offset": -1.0}
    assert len(rec["grid"]) == 12 + 12 * 4 + 2 and len(rec["warm"]) == 3
    # transfer (1.0) and prior (0.5) are their grids' largest values: each is tried doubled, once (worse: stop)
    assert [{k: r[k] for k in ("transfer", "profile", "prior")} for r in rec["grid"][-2:]] == [
        {"transfer": 2.0, "profile": 1.0, "prior": 0.5}, {"transfer": 1.0, "profile": 1.0, "prior": 1.0}]
    # -1 is the grid's edge: one offset beyond it (-2) is tried, worse, and the search stops
    assert [r["offset"] for r in rec["offsets"]] == [-1.0, 0.0, 1.0, -2.0]
    m.content_scores.set_weights(0.0, 0.0, 0.0)
    m.backbone.transfer_weight.fill_(0.0)
    m.backbone.warm_gnn_weight.fill_(1.0)


def test_calibration_without_cold_validation_leaves_the_gnn_score(data, models):
    rec = calibrate(models[0], TrainConfig(), lambda model, settings: {})
    assert any("no cold-validation positives" in n for n in rec["notes"]) and not models[0].content_scores.active


def test_trained_and_calibrated_checkpoint_keeps_its_weights(data, tmp_path):
    from graphrec.training import load_checkpoint

    tc = TrainConfig(epochs=2, batch_size=64, num_negatives=8, tensorboard=False, warm_refine_epochs=0)
    model, _ = train(data, MC, tc, tmp_path)
    again = load_checkpoint(tmp_path / "checkpoint.pt")
    assert again.checkpoint_info["calibrated"] and (tmp_path / "calibration.json").exists()
    users = torch.arange(data.num_users)
    torch.testing.assert_close(again.score(users), model.score(users))


def test_mechanism_variants_follow_the_validation_grid(data, models):
    from graphrec.evaluation.mechanisms import mechanism_variants

    rec = {"cos_spread": 2.0, "profile_spread": 4.0, "backbone_spread": 1.0,
           "grid": [{"profile": 0.0, "prior": 0.0, "value": 0.1}, {"profile": 1.0, "prior": 0.0, "value": 0.3},
                    {"profile": 0.0, "prior": 0.5, "value": 0.2}, {"profile": 1.0, "prior": 0.5, "value": 0.4}]}
    v = mechanism_variants(models[0], rec)
    assert v["graphrec-gnn"].weights == (0.0, 0.0, 0.0) and "graphrec-no_transfer" not in v  # no transfer in that grid
    assert v["graphrec-no_walk"].weights == (0.0, 0.5 * 2.0, 0.0)
    assert v["graphrec-no_prior"].weights == (1.0 * 2.0 / 4.0, 0.0, 0.0)
    users = torch.arange(5)
    before = models[0].score(users)
    s = v["graphrec-no_prior"].score(users)
    assert not torch.allclose(s, before) and torch.equal(models[0].score(users), before)  # weights restored


def test_calibration_term_scores_equal_the_model_score(data, models):
    from graphrec.recipes.calibrate import TermScores

    m = models[0]
    terms = TermScores(m)
    users = torch.arange(data.num_users)
    for weights in ((0.0, 0.0, 0.0, 0.0, 1.0), (0.7, 0.3, -0.2, 0.5, 0.25)):
        m.content_scores.set_weights(*weights[:3])
        m.backbone.transfer_weight.fill_(weights[3])
        m.backbone.warm_gnn_weight.fill_(weights[4])
        torch.testing.assert_close(terms.score(users), m.score(users), rtol=1e-5, atol=1e-5)
    m.content_scores.set_weights(0.0, 0.0, 0.0)
    m.backbone.transfer_weight.fill_(0.0)
    m.backbone.warm_gnn_weight.fill_(1.0)


def test_content_text_weight_reweights_the_content_terms_and_serving_follows(data, models):
    m = models[0]
    users = torch.arange(data.num_users)
    m.content_scores.set_weights(0.7, 0.3, -0.2)
    before = m.score(users).clone()
    m.set_content_text_weight(0.9)
    after = m.score(users)
    assert m.model_config.content_text_weight == 0.9  # travels with the checkpoint's config
    torch.testing.assert_close(after[:, m.warm], before[:, m.warm])
    assert not torch.allclose(after[:, ~m.warm], before[:, ~m.warm])
    # the profile term is content kNN with the same text share
    from graphrec.baselines import fit_baseline

    knn = fit_baseline("content_knn", data, {"text_weight": 0.9})
    torch.testing.assert_close(m.content_scores.profile_scores(users), knn.score(users), atol=1e-5, rtol=1e-5)
    _assert_serving_reproduces(m, data, after)
    m.set_content_text_weight(None)
    torch.testing.assert_close(m.score(users), before)
    m.content_scores.set_weights(0.0, 0.0, 0.0)


def test_serving_space_leaves_out_the_content_columns_no_user_reads(data, models):
    m, users = models[0], torch.arange(data.num_users)
    dims = m.modality_dims
    full = 2 * MC.dim + m.backbone.dim
    m.set_content_text_weight(1.0)  # image's share 0: its columns are zero in every profile
    m.content_scores.set_weights(0.7, 0.3, -0.2)
    cols = m.content_scores.serving_columns()
    assert int(cols.sum()) == dims["text"] < m.content_scores.item_vec.shape[1]
    u, i = m.serving_embeddings()
    assert u.shape[1] == i.shape[1] == full + dims["text"] + 1
    _assert_serving_reproduces(m, data, m.score(users))  # exact, new items included
    m.content_scores.set_weights(0.0, 0.3, -0.2)  # the content walk off: no content column at all
    assert m.serving_embeddings()[0].shape[1] == full + 1
    _assert_serving_reproduces(m, data, m.score(users))
    m.set_content_text_weight(None)
    m.content_scores.set_weights(0.0, 0.0, 0.0)


def test_calibration_chooses_the_text_share_on_cold_validation(data, tmp_path):
    from graphrec.training import load_checkpoint

    tc = TrainConfig(epochs=2, batch_size=64, num_negatives=8, tensorboard=False, warm_refine_epochs=0,
                     calibrate_text_weight=[0.25, 1.0], calibrate_profile=[0.0, 1.0], calibrate_prior=[0.0, 0.5])
    model, _ = train(data, MC, tc, tmp_path)
    import json

    rec = json.loads((tmp_path / "calibration.json").read_text())
    values = {tw: max(g["value"] for g in rec["grid"] if g["text_weight"] == tw) for tw in (0.25, 1.0)}
    assert rec["text_weight"] == max(values, key=values.get)  # the share of the best cold-validation point
    assert rec["cold_val"]["calibrated"] == max(values.values())
    again = load_checkpoint(tmp_path / "checkpoint.pt")
    assert again.model_config.content_text_weight == rec["text_weight"] == again.content_text_weight
    users = torch.arange(data.num_users)
    torch.testing.assert_close(again.score(users), model.score(users))
    with pytest.raises(Exception, match="calibrate_text_weight"):
        TrainConfig(calibrate_text_weight=[1.5])


def test_cold_weights_at_their_grid_edge_are_pushed_further_while_it_helps():
    from graphrec.recipes.calibrate import _extend_edges

    def peak(p):  # best at profile 10, prior 0.5
        return -abs(p["profile"] - 10.0) - abs(p["prior"] - 0.5)

    rows = []
    pt, v = _extend_edges({"profile": 4.0, "prior": 0.5}, peak({"profile": 4.0, "prior": 0.5}),
                          {"profile": [0.0, 2.0, 4.0], "prior": [0.0, 0.5]}, 5, peak, rows, {"text_weight": 1.0})
    assert pt == {"profile": 8.0, "prior": 0.5} and v == peak(pt)
    assert [(r["profile"], r["prior"]) for r in rows] == [(8.0, 0.5), (16.0, 0.5), (8.0, 1.0)]
    assert all(r["text_weight"] == 1.0 for r in rows)
    rows.clear()
    assert _extend_edges({"profile": 2.0, "prior": 0.0}, 0.0, {"profile": [0.0, 2.0, 4.0], "prior": [0.0, 0.5]},
                         5, peak, rows, {})[0] == {"profile": 2.0, "prior": 0.0} and rows == []  # inside: untouched
    assert _extend_edges({"profile": 4.0}, peak({"profile": 4.0, "prior": 0.5}), {"profile": [0.0, 4.0]}, 0,
                         lambda p: peak({**p, "prior": 0.5}), rows, {})[0] == {"profile": 4.0} and rows == []


def test_offset_search_extends_past_the_edge_while_it_improves():
    from graphrec.recipes.calibrate import _offset_search

    calls = []

    def peak_at(target):
        def f(p):
            calls.append(p["offset"])
            return -abs(p["offset"] - target)
        return f

    pt, rows = _offset_search([-1.0, 0.0, 1.0], 5, peak_at(-20.0))
    assert pt == {"offset": -16.0} and calls == [-1.0, 0.0, 1.0, -2.0, -4.0, -8.0, -16.0, -32.0]
    assert [p["offset"] for p, _ in rows] == calls
    calls.clear()
    assert _offset_search([-1.0, 0.0, 1.0], 0, peak_at(-20.0))[0] == {"offset": -1.0} and len(calls) == 3
    calls.clear()
    assert _offset_search([-1.0, 0.0, 1.0], 5, peak_at(0.2))[0] == {"offset": 0.0} and len(calls) == 3  # inside: no extension
    calls.clear()
    assert _offset_search([-1.0, 0.0, 1.0], 2, peak_at(50.0))[0] == {"offset": 4.0} and calls[3:] == [2.0, 4.0]  # cap
    calls.clear()
    assert _offset_search([0.0, 1.0], 3, peak_at(-3.0))[0] == {"offset": -2.0} and calls[2:] == [-1.0, -2.0, -4.0]
