"""Ablation helpers: cumulative variants, summaries, table (training itself is covered by a slow test)."""

import pytest

from graphrec.ablation import VARIANTS, summarize, variant_overrides, write_table


def test_variants_are_cumulative():
    ov = variant_overrides(list(VARIANTS))
    assert list(ov) == list(VARIANTS)
    assert ov["lp"]["loss_weights.align"] == 0.0 and ov["lp"]["loss_weights.barlow"] == 0.0
    assert ov["+infonce"]["loss_weights.align"] > 0 and ov["+infonce"]["loss_weights.barlow"] == 0.0
    assert ov["+dynamic"]["loss_weights.barlow"] > 0 and ov["+dynamic"]["loss_weights.consist"] > 0
    assert ov["+dynamic"]["loss_weighting"] == "validation" and ov["+consist"]["loss_weighting"] == "fixed"
    with pytest.raises(ValueError):
        variant_overrides(["+magic"])


def fake_run(v):
    m = {"recall@20": v, "ndcg@20": v / 2}
    return {"val": {"cold": {"ndcg@20": v}}, "test": {s: dict(m) for s in ("cold", "warm", "hybrid")},
            "missing_modality": {"both": dict(m), "no_image": dict(m), "no_text": dict(m)}}


def test_summary_selects_on_validation_and_writes_table(tmp_path):
    res = {"lp": [fake_run(0.1), fake_run(0.12)], "+barlow": [fake_run(0.2), fake_run(0.22)]}
    s = summarize(res)
    assert s["selected_on_validation"] == "+barlow"
    assert s["variants"]["lp"]["test"]["cold"]["recall@20"]["mean"] == pytest.approx(0.11)
    path = write_table(s, tmp_path / "a.md", "# t")
    text = path.read_text()
    assert "`+barlow` **(selected)**" in text and "cold R@20 no image" in text and "0.1100 ±" in text


def test_stored_runs_are_reused_only_for_the_same_config():
    import json

    from graphrec.ablation import same_run_config
    from graphrec.nn import ModelConfig
    from graphrec.training import TrainConfig

    mc, tc = ModelConfig(), TrainConfig(epochs=6)
    key = lambda m, t: json.dumps({"model": m.to_dict(), "train": t.to_dict()}, sort_keys=True)  # noqa: E731
    stored = json.loads(key(mc, tc))
    del stored["train"]["user_view"]  # a run stored before `user_view` existed
    stored = json.dumps(stored)
    assert same_run_config(stored, key(mc, tc), mc, tc)  # new option at its default: reuse
    assert not same_run_config(stored, key(mc, tc.replace(user_view="set")), mc, tc)  # non-default: retrain
    assert not same_run_config(stored, key(mc, tc.replace(epochs=7)), mc, tc)
    assert not same_run_config(stored, key(mc.replace(dim=32), tc), mc, tc)
