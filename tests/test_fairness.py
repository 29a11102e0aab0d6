"""Fairness and exposure audit: each measure on hand-worked examples, the re-ranking knob, the driver."""

import json
import math

import pandas as pd
import pytest
import torch

from graphrec.data import RecData
from graphrec.data.features import ItemFeatures
from graphrec.evaluation.config import EvalConfig
from graphrec.evaluation.fairness import (activity_groups, attribute_groups, choose_lambdas, cold_inheritance,
                                          exposure_counts, fairness_audit, fairness_markdown, gini, group_exposure,
                                          group_quality, item_groupings, mean_item_scores, neighbour_popularity,
                                          rerank_curve, run_fairness, setting_exposure, spearman)
from graphrec.evaluation.index import setting_specs
from graphrec.evaluation.protocol import evaluate
from graphrec.rerank import RerankedScorer, penalize, popularity_term, rerank_topk
from synthetic import FixedScorer, make_synthetic


# ----------------------------------------------------------------------------- a hand-worked split
def tiny() -> RecData:
    """Users u0, u1; warm items i0-i2 (train popularity 2, 1, 1); cold-test items i3, i4.

    Content (one 2-d modality, train mean 0): i3 is nearest to i0, i4 nearest to i1.
    """
    df = lambda pairs: pd.DataFrame(pairs, columns=["user_id", "item_id"])  # noqa: E731
    splits = {"train": df([("u0", "i0"), ("u0", "i1"), ("u1", "i0"), ("u1", "i2")]),
              "val_warm": df([]), "val_cold": df([]),
              "test_warm": df([("u0", "i2"), ("u1", "i1")]),
              "test_cold": df([("u0", "i3"), ("u1", "i4")])}
    items = pd.DataFrame({"item_id": [f"i{j}" for j in range(5)], "title": "", "text": "t", "image_path": "",
                          "genres": ["A", "A|B", "B", "", "B"]})
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0], [0.9, 0.1], [0.1, 0.9]])
    feats = {"text": ItemFeatures("text", items.item_id.tolist(), x, torch.ones(5, dtype=torch.bool), "fp")}
    return RecData.from_frames(splits, items, feats)


# u0 ranks i3 > i4 > i2 (i0, i1 are history), u1 ranks i1 > i4 > i3 (i0, i2 history)
TINY_SCORES = torch.tensor([[9.0, 9.0, 1.0, 3.0, 2.0],
                            [9.0, 3.0, 9.0, 1.0, 2.0]])


@pytest.fixture(scope="module")
def small():
    data = tiny()
    res = evaluate(FixedScorer(TINY_SCORES), data, "test", ("cold", "warm", "hybrid"), ks=(2,), per_user=True)
    return data, res


def test_gini_hand_values():
    assert gini(torch.ones(7)) == pytest.approx(0.0)
    for n in (2, 5, 10):
        one = torch.zeros(n)
        one[3 % n] = 12
        assert gini(one) == pytest.approx((n - 1) / n)
    assert gini(torch.tensor([0.0, 0.0, 1.0, 3.0])) == pytest.approx(0.625)  # sum|xi-xj| / (2 n^2 mean) = 20/32
    assert math.isnan(gini(torch.zeros(3)))


def test_exposure_shares_hand_example():
    slots = exposure_counts(torch.tensor([[0, 1, 3], [0, 2, -1]]), 4, k=2)  # third rank beyond k; -1 padding
    assert slots.tolist() == [2, 1, 1, 0]
    w = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    out = group_exposure(slots, torch.tensor([1, 0, 0, 3]), torch.arange(4), w, ["A", "B"])
    assert out["A"]["exposure_share"] == pytest.approx(0.75) and out["B"]["exposure_share"] == pytest.approx(0.25)
    assert out["A"]["positive_share"] == pytest.approx(0.25) and out["B"]["positive_share"] == pytest.approx(0.75)
    assert out["A"]["exposure_to_positive"] == pytest.approx(3.0) and out["A"]["candidate_share"] == pytest.approx(0.5)
    assert out["A"]["n_items"] == 2


def test_tiny_split_exposure_cold_share_and_genres(small):
    data, res = small
    assert res.topk["hybrid"][1][:, :2].tolist() == [[3, 4], [1, 4]]
    spec = setting_specs(data, "test", ("hybrid",))["hybrid"]
    ex = setting_exposure(res.topk["hybrid"][1], spec, data, item_groupings(data, "test"), k=2)
    assert ex["gini@2"] == pytest.approx(0.5)  # slots over i0..i4 = [0, 1, 0, 1, 2]
    assert ex["cold_slot_share@2"] == pytest.approx(0.75) and ex["cold_positive_share"] == pytest.approx(0.5)
    assert ex["n_slots"] == 4 and ex["n_candidates"] == 5
    g = ex["groups"]["genre"]  # i1 = A|B splits its slot; i3 has no genre
    assert g["A"]["exposure_share"] == pytest.approx(0.125) and g["B"]["exposure_share"] == pytest.approx(0.625)
    assert g["(no genre)"]["exposure_share"] == pytest.approx(0.25)
    assert g["B"]["positive_share"] == pytest.approx((1 + 0.5 + 1) / 4)
    for grouping in ex["groups"].values():
        assert sum(v["exposure_share"] for v in grouping.values()) == pytest.approx(1.0)
        assert sum(v["positive_share"] for v in grouping.values()) == pytest.approx(1.0)
        assert sum(v["candidate_share"] for v in grouping.values()) == pytest.approx(1.0)


def test_per_group_recall_hand_values(small):
    data, res = small
    attrs = pd.DataFrame({"user_id": ["u0", "u1"], "gender": ["F", "M"]})
    g, labels = attribute_groups(data, attrs, "gender")
    out = group_quality(res.per_user["hybrid"], g, labels, ("recall@2", "ndcg@2"), samples=0, min_group_users=1)
    # u0: top-2 [i3, i4], positives {i2, i3}: recall 1/2, ndcg 1 / (1 + 1/log2 3); u1: [i1, i4] hits both
    assert out["groups"]["F"]["recall@2"]["mean"] == pytest.approx(0.5)
    assert out["groups"]["F"]["ndcg@2"]["mean"] == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert out["groups"]["M"]["recall@2"]["mean"] == pytest.approx(1.0)
    gap = out["gap"]["recall@2"]
    assert (gap["best"], gap["worst"], gap["gap"]) == ("M", "F", pytest.approx(0.5))


def test_groups_pool_small_ones_and_intervals_cover_the_mean():
    per_user = {"users": torch.arange(40), "recall@20": torch.linspace(0, 1, 40)}
    group = torch.tensor([0] * 25 + [1] * 10 + [2] * 3 + [-1] * 2)
    out = group_quality(per_user, group, ["a", "b", "c"], ("recall@20",), samples=200, min_group_users=5)
    assert set(out["groups"]) == {"a", "b"} and out["n_users_dropped"] == 3 and out["n_users_no_group"] == 2
    out = group_quality(per_user, group, ["a", "b", "c"], ("recall@20",), samples=200, min_group_users=12)
    pooled = [lb for lb in out["groups"] if lb.startswith("other")]
    assert len(pooled) == 1 and out["groups"][pooled[0]]["n_users"] == 13
    assert "gap" not in out  # one unpooled group left: no gap
    a = group_quality(per_user, group, ["a", "b", "c"], ("recall@20",), samples=200, min_group_users=5)["groups"]["a"]
    assert a["recall@20"]["lo"] <= a["recall@20"]["mean"] <= a["recall@20"]["hi"]
    assert a["recall@20"]["mean"] == pytest.approx(float(torch.linspace(0, 1, 40)[:25].mean()))


def test_activity_groups_follow_history_length():
    data = make_synthetic(num_users=40, num_items=40, seed=3)
    g, labels = activity_groups(data, 2)
    length = torch.bincount(torch.unique(data.train[0] * data.num_items + data.train[1]) // data.num_items,
                            minlength=data.num_users)
    assert (g >= 0).all() and len(labels) == int(g.max()) + 1
    assert length[g == 0].max() <= length[g == len(labels) - 1].min()


def test_attribute_groups_natural_order_and_unknowns():
    data = make_synthetic(num_users=6, num_items=20, seed=0, per_user=4)
    attrs = pd.DataFrame({"user_id": data.user_ids[:5], "age": ["56+", "18-24", "<18", "", "25-34"]})
    g, labels = attribute_groups(data, attrs, "age")
    assert labels == ["<18", "18-24", "25-34", "56+"]
    assert g.tolist() == [3, 1, 0, -1, 2, -1]


def test_spearman_known_orderings_and_ties():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert spearman(a, 10 * a + 5) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(torch.tensor([1.0, 2.0, 2.0, 3.0]), a) == pytest.approx(4.5 / math.sqrt(22.5))
    assert math.isnan(spearman(torch.ones(4), a))
    scipy_stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(0, 5, (30,), generator=g).double(), torch.rand(30, generator=g).double()
    assert spearman(x, y) == pytest.approx(scipy_stats.spearmanr(x.numpy(), y.numpy()).statistic)


def test_neighbour_popularity_and_inheritance_hand_example():
    data = tiny()
    cold = torch.tensor([3, 4])
    assert neighbour_popularity(data, cold, k=1).tolist() == [2.0, 1.0]  # i3 ~ i0 (pop 2), i4 ~ i1 (pop 1)
    assert neighbour_popularity(data, cold, k=2).tolist() == [1.5, 1.5]  # i0 and i1 for both
    assert cold_inheritance(data, torch.tensor([5.0, 3.0]), cold, k=1) == pytest.approx(1.0)
    assert cold_inheritance(data, torch.tensor([3.0, 5.0]), cold, k=1) == pytest.approx(-1.0)
    ms = mean_item_scores(FixedScorer(TINY_SCORES), torch.tensor([0, 1]), cold)
    assert ms.tolist() == pytest.approx([0.0, 0.0])  # +-1/sqrt(2) per user after standardising, opposite signs


def test_popularity_copying_scorer_has_high_rho_score():
    data = make_synthetic(num_users=40, num_items=60, seed=2)
    cold = torch.unique(data.cold_test_items)
    npop = neighbour_popularity(data, torch.arange(data.num_items), k=5)
    scores = npop.float().unsqueeze(0).repeat(data.num_users, 1)  # each item scored by its neighbours' popularity
    res = {"copycat": evaluate(FixedScorer(scores), data, "test", ("cold",), ks=(20,), per_user=True)}
    audit = fairness_audit(res, data, None, 20, scorers={"copycat": FixedScorer(scores)}, inheritance_k=5, samples=0)
    assert audit["models"]["copycat"]["inheritance"]["rho_score"] == pytest.approx(1.0)
    assert cold.numel() == audit["inheritance_reference"]["n_items"]


# ----------------------------------------------------------------------------- the re-ranking knob
def test_penalty_zero_is_the_original_ranking_and_large_penalty_demotes_popular_items():
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(5, 30, generator=g)
    pop = torch.randint(0, 50, (30,), generator=g)
    term = popularity_term(pop)
    assert penalize(scores, term, 0.0) is scores
    v0, p0 = rerank_topk(scores, term, 0.0, 10)
    assert torch.equal(p0, scores.topk(10, dim=1).indices)
    _, pbig = rerank_topk(scores, term, 1e6, 30)
    assert (pop[pbig].diff(dim=1) >= 0).all()  # ranked by increasing popularity
    flat = torch.zeros(2, 30)
    _, pf = rerank_topk(flat, term, 0.5, 3)
    assert pop[pf[0]].max() <= pop.sort().values[2]  # equal scores: the least popular items
    with pytest.raises(ValueError, match=">= 0"):
        penalize(scores, term, -1.0)


def test_rerank_topk_excludes_and_pads():
    scores = torch.tensor([[3.0, 2.0, 1.0]])
    v, p = rerank_topk(scores, popularity_term(torch.tensor([5, 1, 0])), 0.1, 4, exclude=[[0]])
    assert p.tolist() == [[1, 2, -1, -1]] and math.isinf(v[0, 2]) and v[0, 2] < 0


def test_reranked_scorer_at_zero_evaluates_identically_and_large_lambda_raises_cold_share():
    data = make_synthetic(num_users=40, num_items=50, seed=1)
    g = torch.Generator().manual_seed(1)
    base = FixedScorer(torch.rand(data.num_users, data.num_items, generator=g))
    a = evaluate(base, data, "test", ("hybrid",), ks=(5,))
    from graphrec.evaluation.beyond import item_popularity

    b = evaluate(RerankedScorer(base, item_popularity(data), 0.0), data, "test", ("hybrid",), ks=(5,))
    assert a.as_dict() == b.as_dict() and torch.equal(a.topk["hybrid"][1], b.topk["hybrid"][1])
    curve = rerank_curve(base, data, [0.0, 0.5, 5.0], "test", k=5)
    assert [p["lam"] for p in curve] == [0.0, 0.5, 5.0]
    assert curve[0]["recall@5"] == pytest.approx(a["hybrid"]["recall@5"])
    assert curve[-1]["cold_slot_share@5"] > curve[0]["cold_slot_share@5"]
    assert curve[-1]["cold_slot_share@5"] == pytest.approx(1.0)  # cold items (pop 0) fill every list first


def test_reranked_scorer_leaves_the_wrapped_model_in_its_mode():
    data = make_synthetic(num_users=20, num_items=30, seed=0)

    class Net(torch.nn.Module):
        def score(self, users):
            assert not self.training
            return torch.rand(users.numel(), data.num_items)

    net = Net().eval()
    evaluate(RerankedScorer(net, torch.arange(data.num_items), 0.5), data, "test", ("hybrid",), ks=(5,))
    assert not net.training  # evaluate() must not switch the wrapped model to train mode afterwards


def test_choose_lambdas_marks_accuracy_gini_and_calibrated_points():
    def pt(lam, rec, gini, cold):
        return {"lam": lam, "recall@20": rec, "gini@20": gini, "cold_slot_share@20": cold, "cold_positive_share": 0.4}

    curve = [pt(0.0, 0.50, 0.60, 0.10), pt(0.5, 0.52, 0.55, 0.30), pt(1.0, 0.50, 0.50, 0.45), pt(2.0, 0.30, 0.40, 0.41)]
    assert choose_lambdas(curve, 0.05) == {"accuracy": 0.5, "gini": 1.0, "calibrated": 1.0}  # 0.50 >= 0.95 * 0.52
    assert choose_lambdas(curve, 0.0) == {"accuracy": 0.5, "gini": 0.5, "calibrated": 0.5}
    assert choose_lambdas(curve, 0.5) == {"accuracy": 0.5, "gini": 2.0, "calibrated": 2.0}
    curve[1]["cold_slot_share@20"] = 0.39
    assert choose_lambdas(curve, 0.05)["calibrated"] == 0.5


def test_recommend_with_exposure_penalty():
    from graphrec.serve import Recommender

    class Fake:
        user_ids, item_ids = ["a", "b", "c"], [f"m{j}" for j in range(6)]

        def embeddings(self):
            return torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]), torch.tensor(
                [[1.0, 0.0], [0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8], [0.0, 0.0]])

    items = pd.DataFrame({"item_id": Fake.item_ids, "title": [f"T{j}" for j in range(6)]})
    history = pd.DataFrame({"user_id": ["b", "b", "b", "a", "c"], "item_id": ["m0", "m1", "m3", "m4", "m0"]})
    rec = Recommender(Fake(), items, history)
    assert rec.popularity().tolist() == [2, 1, 0, 1, 1, 0]
    plain = rec.recommend("a", k=3)
    same = rec.recommend("a", k=3, exposure_penalty=0.0)
    pd.testing.assert_frame_equal(plain, same)
    assert plain.item_id.tolist() == ["m0", "m1", "m2"]
    pen = rec.recommend("a", k=3, exposure_penalty=100.0)
    assert pen.item_id.tolist() == ["m2", "m5", "m1"]  # never-seen items first, then by score; m4 still excluded
    assert "m4" not in pen.item_id.tolist()
    with pytest.raises(ValueError, match=">= 0"):
        rec.recommend("a", k=3, exposure_penalty=-1.0)


# ----------------------------------------------------------------------------- the audit and the driver
def test_audit_is_json_and_holds_no_per_user_values(tmp_path):
    data = make_synthetic(num_users=60, num_items=50, seed=1)
    g = torch.Generator().manual_seed(0)
    sc = FixedScorer(torch.rand(data.num_users, data.num_items, generator=g))
    warm_only = FixedScorer(torch.rand(data.num_users, data.num_items, generator=g), supports_cold=False)
    results = {"graphrec": evaluate(sc, data, "test", ks=(10, 20), per_user=True),
               "mf": evaluate(warm_only, data, "test", ks=(10, 20), per_user=True)}
    attrs = pd.DataFrame({"user_id": data.user_ids, "gender": ["F" if j % 3 else "M" for j in range(60)],
                          "zip": [f"ZIP{j:05d}" for j in range(60)]})  # unique per user: pooled/dropped
    cfg = EvalConfig(bootstrap_samples=20, fairness_min_group_users=10, rerank_lambdas=[0.0, 1.0])
    md = run_fairness(results, data, attrs, tmp_path, cfg, scorers={"graphrec": sc, "mf": warm_only}, log=lambda m: None)
    text = (tmp_path / "fairness.json").read_text()
    audit = json.loads(text)
    for name in ("fairness_exposure.png", "fairness_users.png", "fairness_rerank.png"):
        assert (tmp_path / name).stat().st_size > 1000
    assert set(audit["models"]) == {"graphrec", "mf"}
    assert set(audit["models"]["mf"]["exposure"]) == {"warm"}
    assert "rho_score" in audit["models"]["graphrec"]["inheritance"]
    chosen = audit["rerank"]["graphrec"]["chosen"]
    assert set(chosen) == {"accuracy", "gini", "calibrated"} and set(chosen.values()) <= {0.0, 1.0}
    assert len(audit["rerank"]["graphrec"]["test"]) == 2
    assert not any(u in text for u in data.user_ids) and "ZIP0" not in text  # group aggregates only
    zipg = audit["models"]["graphrec"]["users"]["hybrid"]["zip"]
    assert zipg["groups"] == {} or all(lb.startswith("other") for lb in zipg["groups"])
    for part in ("## Fairness and exposure audit", "### Exposure summary", "per user gender group",
                 "### Exposure re-ranking: graphrec", "(accuracy", "fairness_rerank.png"):
        assert part in md
    assert fairness_markdown(audit).startswith("## Fairness and exposure audit")  # re-renders from the JSON


def test_audit_rejects_mixed_phases():
    data = make_synthetic(num_users=20, num_items=30, seed=0)
    sc = FixedScorer(torch.rand(data.num_users, data.num_items))
    with pytest.raises(ValueError, match="mix phases"):
        fairness_audit({"a": evaluate(sc, data, "val", ks=(20,)), "b": evaluate(sc, data, "test", ks=(20,))}, data)


def test_report_places_extra_sections_before_the_budgets():
    from graphrec.evaluation.report import render_report_md

    md = render_report_md({"m": {"warm": {"recall@20": 0.5}}}, tuning_budgets={"m": "1 trial"},
                          sections=["## Fairness and exposure audit\n\nbody\n"])
    assert md.index("## Fairness and exposure audit") < md.index("## Tuning budgets")


def test_cli_recommend_takes_the_exposure_penalty():
    from graphrec.cli import build_parser

    args = build_parser().parse_args(["recommend", "--user", "1", "--exposure-penalty", "0.5"])
    assert args.exposure_penalty == 0.5
    assert build_parser().parse_args(["recommend", "--user", "1"]).exposure_penalty == 0.0
