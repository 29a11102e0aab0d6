"""Leakage rules and reproducibility of the item cold-start split."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graphrec.data import cold_start_split, load_split, write_split
from graphrec.data.config import SplitConfig
from graphrec.config_base import ConfigError

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ml1m-mm"


def synthetic(n_users=60, n_items=80, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = {(str(u), str(i)) for u in range(n_users) for i in rng.choice(n_items, size=rng.integers(3, 25), replace=False)}
    return pd.DataFrame(sorted(rows), columns=["user_id", "item_id"])


def check_rules(split, inter: pd.DataFrame, cfg: SplitConfig) -> None:
    f = split.frames()
    pairs = {n: set(zip(t.user_id, t.item_id)) for n, t in f.items()}
    items = {n: set(t.item_id) for n, t in f.items()}
    # every interaction lands in exactly one file
    assert sum(len(p) for p in pairs.values()) == len(inter)
    assert set().union(*pairs.values()) == set(zip(inter.user_id, inter.item_id))
    # cold sets disjoint from each other and from every warm file
    warm_items = items["train"] | items["val_warm"] | items["test_warm"]
    assert not (items["val_cold"] & items["test_cold"])
    assert not (items["val_cold"] & warm_items) and not (items["test_cold"] & warm_items)
    # all interactions of a cold item go to its cold set
    for name in ("val_cold", "test_cold"):
        sub = inter[inter.item_id.isin(items[name])]
        assert set(zip(sub.user_id, sub.item_id)) == pairs[name]
    n_items = inter.item_id.nunique()
    n_cold = len(items["val_cold"]) + len(items["test_cold"])
    assert n_cold == round(cfg.cold_item_frac * n_items)
    assert abs(len(items["val_cold"]) - len(items["test_cold"])) <= 1
    assert split.info["seed"] == cfg.seed


def test_rules_on_synthetic():
    inter = synthetic()
    cfg = SplitConfig(seed=3)
    split = cold_start_split(inter, cfg)
    check_rules(split, inter, cfg)
    # per-user warm split close to 80/10/10, at least one training item per user with warm items
    tr, vw, tw = (len(split.train), len(split.val_warm), len(split.test_warm))
    total = tr + vw + tw
    assert 0.75 < tr / total < 0.85 and 0.05 < vw / total < 0.15
    warm_users = set(split.train.user_id) | set(split.val_warm.user_id) | set(split.test_warm.user_id)
    assert warm_users == set(split.train.user_id)


def test_reproducible_under_seed_and_independent_of_row_order(tmp_path):
    inter = synthetic()
    a = cold_start_split(inter, SplitConfig(seed=7))
    b = cold_start_split(inter.sample(frac=1.0, random_state=1), SplitConfig(seed=7))
    c = cold_start_split(inter, SplitConfig(seed=8))
    for n in a.frames():
        pd.testing.assert_frame_equal(a.frames()[n], b.frames()[n])
    assert set(a.test_cold.item_id) != set(c.test_cold.item_id)
    write_split(a, tmp_path / "s")
    back = load_split(tmp_path / "s")
    for n in a.frames():
        pd.testing.assert_frame_equal(a.frames()[n], back.frames()[n])
    assert back.info["counts"]["train_interactions"] == len(a.train)
    assert not list((tmp_path / "s").glob("*.tmp"))


def test_bad_fractions_are_rejected():
    with pytest.raises(ConfigError, match="cold_item_frac"):
        SplitConfig(cold_item_frac=1.5)
    with pytest.raises(ConfigError, match="unknown config key split_seed"):
        SplitConfig.from_dict({"split_seed": 1})


@pytest.mark.data
def test_rules_on_real_split(tmp_path):
    from data_prep.ml1m_mm import prepare
    from graphrec.data import load_prepared

    rep = prepare(REAL, tmp_path / "prep")
    assert rep.kept["interactions"] == 575_280 and rep.kept["users"] == 6_037
    assert rep.kept["items_with_interactions"] == 3_533 and rep.kept["items"] == 3_883
    assert rep.flagged["items_without_image"] == 11 and rep.flagged["empty_text_field:plot_text"] == 38
    inter, _ = load_prepared(tmp_path / "prep")
    cfg = SplitConfig()
    split = cold_start_split(inter, cfg)
    check_rules(split, inter, cfg)
    again = cold_start_split(inter, cfg)
    for n in split.frames():
        pd.testing.assert_frame_equal(split.frames()[n], again.frames()[n])


def test_timestamps_travel_with_pairs_without_changing_the_split(tmp_path):
    inter = synthetic()
    rng = np.random.default_rng(0)
    timed = inter.assign(timestamp=rng.integers(1_000, 2_000, len(inter)))
    plain, with_ts = cold_start_split(inter, SplitConfig(seed=5)), cold_start_split(timed, SplitConfig(seed=5))
    lookup = {(u, i): t for u, i, t in zip(timed.user_id, timed.item_id, timed.timestamp)}
    for n, f in with_ts.frames().items():
        pd.testing.assert_frame_equal(f[["user_id", "item_id"]], plain.frames()[n])  # same assignment
        assert list(f.timestamp) == [lookup[p] for p in zip(f.user_id, f.item_id)]
    write_split(with_ts, tmp_path / "s")
    assert (tmp_path / "s" / "train.csv").read_text().splitlines()[0] == "user_id,item_id,timestamp"
    assert "timestamp" not in load_split(write_split(plain, tmp_path / "p")).train.columns


def test_recdata_train_timestamps_align_with_train_edges(tmp_path):
    from graphrec.data import RecData

    inter = synthetic()
    timed = inter.assign(timestamp=[str(10 * j) for j in range(len(inter))])  # strings, as load_prepared reads them
    split = load_split(write_split(cold_start_split(timed, SplitConfig(seed=5)), tmp_path / "s"))
    items = pd.DataFrame({"item_id": sorted(inter.item_id.unique(), key=int), "title": "", "text": "t", "image_path": "",
                          "genres": ""})
    data = RecData.from_frames(split.frames(), items)
    lookup = {(u, i): t for u, i, t in zip(timed.user_id, timed.item_id, timed.timestamp)}
    assert data.train_timestamps.shape == (data.train.shape[1],)
    for j in range(0, data.train.shape[1], 37):
        u, i = data.user_ids[data.train[0, j]], data.item_ids[data.train[1, j]]
        assert data.train_timestamps[j].item() == float(lookup[(u, i)])
    assert RecData.from_frames(cold_start_split(inter, SplitConfig(seed=5)).frames(), items).train_timestamps is None
    bad = split.frames()
    bad["train"] = bad["train"].copy()
    bad["train"].loc[3, "timestamp"] = "soon"
    with pytest.raises(ValueError, match="train.csv, row 5, field 'timestamp': timestamp 'soon' is not a number"):
        RecData.from_frames(bad, items)
