"""The independent recomputation of metrics from top-K files agrees with evaluate() and with hand values."""

import json
import math

import pandas as pd
import torch

from graphrec.data import RecData
from graphrec.evaluation.protocol import evaluate
from graphrec.evaluation.topk_io import write_topk_files
from graphrec.evaluation.recompute import check_run, recompute


def test_hand_values(tmp_path):
    pd.DataFrame({"user_id": ["1", "1", "2"], "item_id": ["a", "b", "c"]}).to_csv(tmp_path / "test_cold.csv", index=False)
    pd.DataFrame({"user_id": ["1", "1", "2", "2"], "item_id": ["x", "a", "c", "y"], "rank": [1, 2, 1, 2]}).to_csv(tmp_path / "t.csv", index=False)
    got = recompute(tmp_path / "t.csv", tmp_path, "cold", k=2)
    # user 1: hit at rank 2 of 2 positives -> recall 1/2, ndcg (1/log2 3) / (1 + 1/log2 3); user 2: hit at rank 1 -> 1, 1
    assert math.isclose(got["recall@2"], (0.5 + 1) / 2)
    assert math.isclose(got["ndcg@2"], ((1 / math.log2(3)) / (1 + 1 / math.log2(3)) + 1) / 2)


class Fixed:
    def __init__(self, s):
        self.s = s

    def score(self, users):
        return self.s[users]


def test_matches_evaluate_on_a_run_directory(tmp_path):
    g = torch.Generator().manual_seed(0)
    users, items = [f"u{i}" for i in range(12)], [f"i{i}" for i in range(30)]
    pairs = {(users[u], items[i]) for u in range(12) for i in torch.randperm(30, generator=g)[:8].tolist()}
    df = pd.DataFrame(sorted(pairs), columns=["user_id", "item_id"])
    cold_test, cold_val = items[:5], items[5:9]
    warm = df[~df.item_id.isin(cold_test + cold_val)]
    splits = {"train": warm.iloc[::2], "val_warm": warm.iloc[1::4], "test_warm": warm.iloc[3::4],
              "val_cold": df[df.item_id.isin(cold_val)], "test_cold": df[df.item_id.isin(cold_test)]}
    (tmp_path / "split").mkdir()
    for n, t in splits.items():
        t.to_csv(tmp_path / "split" / f"{n}.csv", index=False)
    data = RecData.from_frames(splits, pd.DataFrame({"item_id": items, "title": items}))
    res = evaluate(Fixed(torch.randn(12, 30, generator=g)), data, "test")
    write_topk_files(res, data, tmp_path / "evaluation" / "topk", "m")
    (tmp_path / "evaluation" / "metrics.json").write_text(json.dumps({"m": {s: dict(v) for s, v in res.items()}}))
    rows = check_run(tmp_path)
    assert len(rows) == 8 and all(r["ok"] for r in rows)
