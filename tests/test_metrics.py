"""Ranking metrics: hand-worked values, an independent set-based implementation, PyG's compute()."""

import math
import random

import pytest
import torch

from graphrec.evaluation.metrics import METRIC_NAMES, ranking_metrics


# ---------------------------------------------------------------- independent implementation
def reference_metrics(ranked: list[int], positives: set[int], k: int) -> dict[str, float]:
    """Plain-Python definitions (docs/DESIGN.md): padding entries (< 0) are never hits."""
    top = [i for i in ranked[:k]]
    hits = [1 if (i >= 0 and i in positives) else 0 for i in top]
    n_hit = sum(hits)
    dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
    idcg = sum(1 / math.log2(r + 2) for r in range(min(k, len(positives))))
    first = next((r for r, h in enumerate(hits) if h), None)
    return {
        "recall": n_hit / len(positives),
        "ndcg": dcg / idcg if idcg > 0 else 0.0,
        "hit": 1.0 if n_hit else 0.0,
        "precision": n_hit / k,
        "mrr": 1.0 / (first + 1) if first is not None else 0.0,
    }


def _edges(pos: dict[int, set[int]]) -> torch.Tensor:
    pairs = sorted((r, i) for r, items in pos.items() for i in items)
    return torch.tensor(pairs, dtype=torch.long).T.reshape(2, -1)


# ---------------------------------------------------------------- hand-worked values
TOPK = torch.tensor([[5, 2, 7, 1], [3, 4, -1, -1]])
POS = {0: {2, 1, 9}, 1: {3}}  # user 0's item 9 is unranked; it is also the largest index,
# so a naive -1 padding in row 1 would alias it inside PyG's flattened matching.

HAND = {
    # user 0: hit at rank 2 (and rank 4); |pos| = 3. user 1: hit at rank 1; |pos| = 1.
    "recall@2": (1 / 3, 1.0),
    "precision@2": (1 / 2, 1 / 2),
    "hit@2": (1.0, 1.0),
    "mrr@2": (1 / 2, 1.0),
    "ndcg@2": ((1 / math.log2(3)) / (1 + 1 / math.log2(3)), 1.0),
    "recall@4": (2 / 3, 1.0),
    "precision@4": (2 / 4, 1 / 4),
    "hit@4": (1.0, 1.0),
    "mrr@4": (1 / 2, 1.0),
    # ideal DCG over min(K, |pos|) = 3 positions for user 0
    "ndcg@4": ((1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3) + 1 / math.log2(4)), 1.0),
}


def test_hand_worked_values():
    out = ranking_metrics(TOPK, _edges(POS), ks=(2, 4), pad_index=-1)
    assert set(out) == set(HAND)
    for name, expected in HAND.items():
        assert out[name].tolist() == pytest.approx(list(expected), abs=1e-6), name


def test_hand_values_match_reference_implementation():
    for name, expected in HAND.items():
        metric, k = name.split("@")
        got = [reference_metrics(TOPK[r].tolist(), POS[r], int(k))[metric] for r in range(2)]
        assert got == pytest.approx(list(expected), abs=1e-9), name


def test_custom_pad_index():
    topk = TOPK.masked_fill(TOPK < 0, 99)
    out = ranking_metrics(topk, _edges(POS), ks=(4,), pad_index=99)
    assert out["precision@4"].tolist() == pytest.approx([0.5, 0.25])


# ---------------------------------------------------------------- random comparison
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_against_reference(seed):
    rng = random.Random(seed)
    n_rows, n_items, kmax = 25, 30, 12
    rows, pos = [], {}
    for r in range(n_rows):
        ranked = rng.sample(range(n_items), rng.randint(3, kmax))
        ranked += [-1] * (kmax - len(ranked))
        rows.append(ranked)
        pos[r] = set(rng.sample(range(n_items), rng.randint(1, 8)))
    topk = torch.tensor(rows)
    ks = (1, 5, 10, 12)
    out = ranking_metrics(topk, _edges(pos), ks=ks)
    for k in ks:
        for m in METRIC_NAMES:
            ref = [reference_metrics(rows[r], pos[r], k)[m] for r in range(n_rows)]
            assert out[f"{m}@{k}"].tolist() == pytest.approx(ref, abs=1e-6), f"{m}@{k}"


def test_mean_equals_pyg_compute():
    from torch_geometric.metrics import LinkPredNDCG, LinkPredRecall

    g = torch.Generator().manual_seed(0)
    topk = torch.stack([torch.randperm(50, generator=g)[:20] for _ in range(16)])
    pos = torch.stack([torch.randint(16, (60,), generator=g), torch.randint(50, (60,), generator=g)])
    key = torch.unique(pos[0] * 50 + pos[1])
    pos = torch.stack([key // 50, key % 50])
    ours = ranking_metrics(topk, pos, ks=(20,))
    has = torch.bincount(pos[0], minlength=16) > 0
    for cls, name in ((LinkPredRecall, "recall@20"), (LinkPredNDCG, "ndcg@20")):
        m = cls(k=20)
        m.update(topk, pos)
        assert float(m.compute()) == pytest.approx(float(ours[name][has].mean()), abs=1e-6)


def test_rows_without_positives_are_zero():
    out = ranking_metrics(torch.tensor([[0, 1], [2, 3]]), torch.tensor([[0], [0]]), ks=(2,))  # row 0, item 0
    assert out["recall@2"].tolist() == [1.0, 0.0]
    assert out["ndcg@2"].tolist() == [1.0, 0.0]


def test_bad_inputs():
    with pytest.raises(ValueError, match="cut-offs"):
        ranking_metrics(TOPK, _edges(POS), ks=(5,))
    with pytest.raises(ValueError, match="unknown metric"):
        ranking_metrics(TOPK, _edges(POS), ks=(2,), metrics=("auc",))
    with pytest.raises(ValueError, match="rows, K"):
        ranking_metrics(TOPK[0], _edges(POS), ks=(2,))


# ---------------------------------------------------------------- statistics
def test_bootstrap_ci_contains_mean_and_is_seeded():
    from graphrec.evaluation.stats import bootstrap_ci, bootstrap_result

    v = torch.rand(500, generator=torch.Generator().manual_seed(0))
    a = bootstrap_ci(v, samples=300, seed=1)
    assert a["lo"] < a["mean"] < a["hi"]
    assert a == bootstrap_ci(v, samples=300, seed=1)
    # half-width close to the normal approximation 1.96 * sd / sqrt(n)
    half = 1.96 * float(v.std()) / math.sqrt(500)
    assert (a["hi"] - a["lo"]) / 2 == pytest.approx(half, rel=0.25)
    r = bootstrap_result({"cold": {"users": torch.arange(500), "recall@20": v, "ndcg@20": v / 2}}, samples=300, seed=1)
    assert r["cold"]["recall@20"]["lo"] == pytest.approx(a["lo"])  # same resamples for every metric
    assert r["cold"]["ndcg@20"]["hi"] == pytest.approx(a["hi"] / 2)
    assert bootstrap_ci(v, samples=0)["lo"] == pytest.approx(float(v.double().mean()))


def test_paired_diff_and_seed_aggregation():
    from graphrec.evaluation.stats import aggregate_seeds, paired_bootstrap_diff

    v = torch.rand(200, generator=torch.Generator().manual_seed(0))
    a = {"users": torch.arange(200), "recall@20": v + 0.1}
    b = {"users": torch.arange(200).flip(0), "recall@20": (v).flip(0)}  # same users, other order
    d = paired_bootstrap_diff(a, b, "recall@20", samples=200)
    assert d["mean"] == pytest.approx(0.1) and d["lo"] == pytest.approx(0.1) and d["p_le_0"] == 0.0
    agg = aggregate_seeds([{"cold": {"r": 0.1}}, {"cold": {"r": 0.2}}, {"cold": {"r": 0.3}, "warm": {"r": 1.0}}])
    assert set(agg) == {"cold"}
    c = agg["cold"]["r"]
    assert c["mean"] == pytest.approx(0.2) and c["std"] == pytest.approx(0.1) and c["n"] == 3
    assert c["hi"] - c["mean"] == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-4)  # t(0.975, 2)
    one = aggregate_seeds([{"cold": {"r": 0.1}}])["cold"]["r"]
    assert one["std"] == 0 and one["lo"] == one["hi"] == 0.1


# ---------------------------------------------------------------- beyond accuracy
def test_beyond_hand_values():
    from graphrec.evaluation.beyond import coverage, novelty, recall_by_bucket, tail_share

    topk = torch.tensor([[0, 1, -1], [1, 2, 3]])
    cand = torch.tensor([0, 1, 2, 3, 4])
    assert coverage(topk, cand, k=2) == pytest.approx(3 / 5)  # items 0, 1, 2
    pop = torch.tensor([9, 4, 1, 0, 0])
    # slots: 0, 1, 1, 2 (k=2); p = (pop + 1) / (10 + 1)
    exp = sum(-math.log2((pop[i] + 1) / 11) for i in (0, 1, 1, 2)) / 4
    assert novelty(topk, pop, 10, k=2) == pytest.approx(exp)
    # 20% quantile of candidate popularity [9, 4, 1, 0, 0] is 0 -> tail = {3, 4}
    assert tail_share(topk, cand, pop, 0.2, k=3) == pytest.approx(1 / 5)  # slots 0,1,1,2,3 -> one tail
    assert math.isnan(tail_share(topk, cand, torch.zeros(5, dtype=torch.long), 0.2, k=3))
    bucket = torch.tensor([0, 0, 1, 1, 1])
    users = torch.tensor([7, 3])
    pos = torch.tensor([[7, 7, 3, 3], [0, 4, 3, 2]])  # user 7: {0 (b0), 4 (b1)}; user 3: {3, 2} (b1)
    out = recall_by_bucket(users, topk, pos, bucket, ["low", "high"], k=3)
    assert out["low"] == {"recall@3": 1.0, "n_users": 1, "n_positives": 1}
    assert out["high"]["recall@3"] == pytest.approx((0 / 1 + 2 / 2) / 2) and out["high"]["n_users"] == 2


def test_beyond_on_synthetic():
    from graphrec.evaluation.beyond import beyond_accuracy, bucket_recall, popularity_buckets
    from graphrec.evaluation.protocol import evaluate
    from synthetic import DotScorer, make_synthetic

    data = make_synthetic()
    g = torch.Generator().manual_seed(0)
    res = evaluate(DotScorer(torch.randn(data.num_users, 8, generator=g), torch.randn(data.num_items, 8, generator=g)), data)
    b = beyond_accuracy(res, data)
    assert set(b) == set(res) and 0 < b["hybrid"]["coverage@20"] <= 1
    assert math.isnan(b["cold"]["tail_share@20"])
    bucket, labels = popularity_buckets(data, 3)
    assert labels[-1] == "cold" and (bucket[data.cold_test_items] == len(labels) - 1).all()
    br = bucket_recall(res, data)
    assert list(br["cold"]) == ["cold"]
    assert br["cold"]["cold"]["recall@20"] == pytest.approx(res["cold"]["recall@20"])
