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
