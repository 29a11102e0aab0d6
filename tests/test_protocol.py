"""Full-ranking protocol: settings, exclusions, top-K files, per-user arrays, errors."""

import math

import pandas as pd
import pytest
import torch

from graphrec.evaluation.index import EvalIndex
from graphrec.evaluation.protocol import SETTINGS, evaluate, make_validator, validation_score
from graphrec.evaluation.topk_io import write_topk_files
from synthetic import DotScorer, FixedScorer, make_synthetic


@pytest.fixture(scope="module")
def data():
    return make_synthetic(num_users=30, num_items=40, seed=0)


@pytest.fixture(scope="module")
def scores(data):
    g = torch.Generator().manual_seed(0)
    return torch.rand(data.num_users, data.num_items, generator=g)  # continuous: no ties


def _pairs(t):
    return {(int(u), int(i)) for u, i in t.T}


def brute_force(data, scores, phase, setting, k):
    """Independent loop implementation of the DESIGN.md protocol (sets, sorted lists)."""
    sfx = "test" if phase == "test" else "val"
    warm_pos = _pairs(getattr(data, f"{sfx}_warm"))
    cold_pos = _pairs(getattr(data, f"{sfx}_cold"))
    cold_items = set((data.cold_test_items if phase == "test" else data.cold_val_items).tolist())
    warm_items = set(data.warm_items.tolist())
    cand, pos = {
        "cold": (cold_items, cold_pos),
        "warm": (warm_items, warm_pos),
        "hybrid": (warm_items | cold_items, warm_pos | cold_pos),
        "cold_full": (set(range(data.num_items)), cold_pos),
    }[setting]
    known = _pairs(data.train)
    if phase == "test":
        known |= _pairs(data.val_warm) | _pairs(data.val_cold)
    rec, ndcg, n = 0.0, 0.0, 0
    for u in range(data.num_users):
        p = {i for (v, i) in pos if v == u}
        if not p:
            continue
        items = [i for i in cand if (u, i) not in known]
        ranked = sorted(items, key=lambda i: -float(scores[u, i]))[:k]
        hits = [1 if i in p else 0 for i in ranked]
        rec += sum(hits) / len(p)
        ndcg += sum(h / math.log2(r + 2) for r, h in enumerate(hits)) / sum(1 / math.log2(r + 2) for r in range(min(k, len(p))))
        n += 1
    return rec / n, ndcg / n, n


@pytest.mark.parametrize("phase", ["val", "test"])
def test_matches_brute_force(data, scores, phase):
    res = evaluate(FixedScorer(scores), data, phase=phase, ks=(5, 20))
    assert set(res) == set(SETTINGS)
    for s in SETTINGS:
        for k in (5, 20):
            rec, ndcg, n = brute_force(data, scores, phase, s, k)
            assert res[s][f"recall@{k}"] == pytest.approx(rec, abs=1e-6), (s, k)
            assert res[s][f"ndcg@{k}"] == pytest.approx(ndcg, abs=1e-6), (s, k)
            assert res[s]["n_users"] == n


def test_result_keys_and_types(data, scores):
    res = evaluate(FixedScorer(scores), data)
    for s in SETTINGS:
        for k in (10, 20, 50):
            for m in ("recall", "ndcg", "hit", "precision", "mrr"):
                assert isinstance(res[s][f"{m}@{k}"], float)
        assert isinstance(res[s]["n_users"], int)
    assert res.as_dict() == dict(res)


def test_known_history_never_recommended(data, scores):
    # make known items score highest: they must still never appear
    boosted = scores.clone()
    for part in (data.train, data.val_warm, data.val_cold):
        boosted[part[0], part[1]] += 10
    res = evaluate(FixedScorer(boosted), data, phase="test")
    known = _pairs(data.train) | _pairs(data.val_warm) | _pairs(data.val_cold)
    for s, (users, top) in res.topk.items():
        for u, row in zip(users.tolist(), top.tolist()):
            assert not any((u, i) in known for i in row if i >= 0), s
    res_val = evaluate(FixedScorer(boosted), data, phase="val")
    train = _pairs(data.train)
    for s, (users, top) in res_val.topk.items():
        for u, row in zip(users.tolist(), top.tolist()):
            assert not any((u, i) in train for i in row if i >= 0), s


def test_candidates_respected(data, scores):
    res = evaluate(FixedScorer(scores), data, phase="test")
    cold = set(data.cold_test_items.tolist())
    warm = set(data.warm_items.tolist())
    allowed = {"cold": cold, "warm": warm, "hybrid": cold | warm, "cold_full": set(range(data.num_items))}
    for s, (_, top) in res.topk.items():
        got = {i for i in top.view(-1).tolist() if i >= 0}
        assert got <= allowed[s], s
    # cold has 8 candidates < K=50: the list is padded with -1
    assert (res.topk["cold"][1] == -1).any()


def test_batch_size_invariance(data, scores):
    a = evaluate(FixedScorer(scores), data, batch_size=7)
    b = evaluate(FixedScorer(scores), data, batch_size=1024)
    assert a == b


def test_per_user_arrays(data, scores):
    res = evaluate(FixedScorer(scores), data, per_user=True)
    for s in SETTINGS:
        pu = res.per_user[s]
        assert pu["users"].numel() == res[s]["n_users"]
        assert float(pu["recall@20"].double().mean()) == pytest.approx(res[s]["recall@20"])
    assert evaluate(FixedScorer(scores), data).per_user is None


def test_supports_cold_false(data, scores):
    res = evaluate(FixedScorer(scores, supports_cold=False), data, model_name="mf")
    assert list(res) == ["warm"]
    assert set(res.notes) == {"cold", "hybrid", "cold_full"}
    assert "supports_cold=False" in res.notes["cold"]
    with pytest.raises(ValueError, match="not evaluated"):
        validation_score(FixedScorer(scores, supports_cold=False), data, setting="cold")


def test_validation_score(data, scores):
    v = validation_score(FixedScorer(scores), data, setting="cold", metric="ndcg@20")
    assert v == pytest.approx(evaluate(FixedScorer(scores), data, phase="val")["cold"]["ndcg@20"])
    with pytest.raises(ValueError, match="ndcg@20"):
        validation_score(FixedScorer(scores), data, metric="ndcg")


def test_topk_files_recompute_metrics(data, scores, tmp_path):
    res = evaluate(FixedScorer(scores), data)
    write_topk_files(res, data, tmp_path / "topk", "m")
    uid, iid = data.user_ids, data.item_ids

    def split_df(t):  # what the split files hold: original ids
        return pd.DataFrame({"user_id": [uid[u] for u in t[0].tolist()], "item_id": [iid[i] for i in t[1].tolist()]})

    pos_frames = {"cold": [data.test_cold], "warm": [data.test_warm], "hybrid": [data.test_warm, data.test_cold],
                  "cold_full": [data.test_cold]}
    for s in SETTINGS:
        top = pd.read_csv(tmp_path / "topk" / f"m_{s}.csv", dtype={"user_id": str, "item_id": str})
        assert list(top.columns) == ["user_id", "item_id", "rank"]
        assert top["rank"].min() == 1 and top["rank"].max() <= 50
        pos = pd.concat([split_df(t) for t in pos_frames[s]]).drop_duplicates()
        rec, ndcg = [], []
        for u, p in pos.groupby("user_id"):
            p = set(p["item_id"])
            ranked = top[(top["user_id"] == u) & (top["rank"] <= 20)].sort_values("rank")["item_id"].tolist()
            hits = [1 if i in p else 0 for i in ranked]
            rec.append(sum(hits) / len(p))
            ndcg.append(sum(h / math.log2(r + 2) for r, h in enumerate(hits)) / sum(1 / math.log2(r + 2) for r in range(min(20, len(p)))))
        assert sum(rec) / len(rec) == pytest.approx(res[s]["recall@20"], abs=1e-6), s
        assert sum(ndcg) / len(ndcg) == pytest.approx(res[s]["ndcg@20"], abs=1e-6), s


def test_module_scorer_mode_restored(data):
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.u = torch.nn.Embedding(data.num_users, 4)
            self.i = torch.nn.Embedding(data.num_items, 4)

        def score(self, users):
            assert not self.training
            return self.u(users) @ self.i.weight.T

    m = M().train()
    evaluate(m, data, settings=("warm",))
    assert m.training


def test_errors(data, scores):
    with pytest.raises(ValueError, match="shape"):
        evaluate(FixedScorer(scores[:, :5]), data)
    nan = scores.clone()
    nan[3, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        evaluate(FixedScorer(nan), data)
    with pytest.raises(ValueError, match="unknown setting"):
        evaluate(FixedScorer(scores), data, settings=("cold_start",))
    with pytest.raises(ValueError, match="index was built"):
        evaluate(FixedScorer(scores), data, phase="test", index=EvalIndex.build(data, "val"))
    with pytest.raises(ValueError, match="phase"):
        evaluate(FixedScorer(scores), data, phase="train")


def test_dot_scorer_info_counts(data):
    g = torch.Generator().manual_seed(1)
    res = evaluate(DotScorer(torch.randn(data.num_users, 8, generator=g), torch.randn(data.num_items, 8, generator=g)), data)
    assert res.info["cold"]["n_candidates"] == data.cold_test_items.numel()
    assert res.info["cold"]["n_positives"] == data.test_cold.size(1)
    assert res.info["cold_full"]["n_candidates"] == data.num_items


def test_oracle_data(data, scores):
    from graphrec.data.oracle import make_oracle_data
    from graphrec.evaluation.suite import gap_closed

    o = make_oracle_data(data, frac=0.5, seed=0)
    tc = _pairs(data.test_cold)
    moved = _pairs(o.train) - _pairs(data.train)
    assert moved | _pairs(o.test_cold) == tc and not moved & _pairs(o.test_cold)
    for i in data.cold_test_items.tolist():  # per item: floor(n / 2) moved
        n = sum(1 for (_, j) in tc if j == i)
        assert sum(1 for (_, j) in moved if j == i) == n // 2
    assert torch.equal(o.cold_test_items, data.cold_test_items)
    assert o.oracle_report["n_moved"] == len(moved)
    assert _pairs(make_oracle_data(data, 0.5, seed=0).test_cold) == _pairs(o.test_cold)
    res = evaluate(FixedScorer(scores), o, settings=("cold",))
    assert res["cold"]["n_users"] == len({u for u, _ in _pairs(o.test_cold)})
    assert gap_closed(0.3, 0.4, 0.2) == pytest.approx(0.5)
    assert math.isnan(gap_closed(0.3, 0.1, 0.2))
    with pytest.raises(ValueError, match="frac"):
        make_oracle_data(data, frac=1.0)


def test_validator_matches_evaluate_and_reuses_its_index(data, scores):
    v = make_validator(data, ks=(10, 20))
    got = v(FixedScorer(scores), ("cold", "warm"))
    ref = evaluate(FixedScorer(scores), data, phase="val", settings=("cold", "warm"), ks=(10, 20))
    assert got == {f"{s}/{m}": ref[s][m] for s in ("cold", "warm") for m in ref[s] if "@" in m}
    assert v(FixedScorer(scores), ("cold",)) == {k: x for k, x in got.items() if k.startswith("cold/")}
