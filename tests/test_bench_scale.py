"""benchmarks/bench_scale.py: its synthetic graph is a valid cold-start split; the DDP slot says what is missing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "benchmarks" / "bench_scale.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_interactions_are_distinct_and_popularity_is_skewed(bench):
    u, i = bench.make_interactions(300, 200, 6000, seed=0)
    assert len(u) == len(i) == 6000
    assert len(torch.unique(u * 200 + i)) == 6000  # no duplicate pair
    assert int(u.max()) < 300 and int(i.max()) < 200
    counts = torch.bincount(i, minlength=200).sort(descending=True).values
    assert counts[:20].sum() > 2 * counts[-20:].sum()  # a head and a tail


def test_recdata_split_respects_the_cold_start_rules(bench):
    data = bench.make_recdata(200, 120, 3000, seed=1)
    cold = set(data.cold_val_items.tolist()) | set(data.cold_test_items.tolist())
    assert cold and not cold & set(data.train[1].tolist())  # cold items never in train
    assert set(data.val_cold[1].tolist()) <= set(data.cold_val_items.tolist())
    assert set(data.warm_items.tolist()) == set(data.train[1].tolist())
    total = sum(getattr(data, n).shape[1] for n in ("train", "val_warm", "test_warm", "val_cold", "test_cold"))
    assert total == 3000
    assert {n: f.x.shape[1] for n, f in data.features.items()} == {"text": 384, "image": 1280}


def test_ddp_slot_raises_not_implemented_until_the_entry_point_exists(bench, monkeypatch):
    monkeypatch.setattr(bench, "DDP_ENTRY", ("graphrec.training.no_such_module", "train_graphrec_ddp"))
    with pytest.raises(NotImplementedError, match="DDP"):
        bench.main(["--what", "train", "--nproc", "2"])
