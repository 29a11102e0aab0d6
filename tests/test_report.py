"""Report outputs: metrics.json shape and round trip, CI json, Markdown report, PNG plots."""

import json
import math

import pytest
import torch

from graphrec.evaluation.beyond import bucket_recall
from graphrec.evaluation.plots import plot_bucket_recall, plot_recall_bars, plot_training_curves
from graphrec.evaluation.protocol import evaluate
from graphrec.evaluation.report import read_metrics_json, render_report_md, write_ci_json, write_metrics_json, write_report_md
from graphrec.evaluation.stats import bootstrap_result
from synthetic import DotScorer, make_synthetic


@pytest.fixture(scope="module")
def run():
    data = make_synthetic(seed=3)
    g = torch.Generator().manual_seed(0)
    a = DotScorer(torch.randn(data.num_users, 8, generator=g), torch.randn(data.num_items, 8, generator=g))
    b = DotScorer(torch.randn(data.num_users, 8, generator=g), torch.randn(data.num_items, 8, generator=g),
                  supports_cold=False)
    ra = evaluate(a, data, per_user=True, model_name="graphrec")
    rb = evaluate(b, data, per_user=True, model_name="mf_bpr")
    return data, {"graphrec": ra, "mf_bpr": rb}


def test_metrics_json_shape_and_round_trip(run, tmp_path):
    _, res = run
    p = write_metrics_json(tmp_path / "metrics.json", res)
    raw = json.loads(p.read_text())
    assert set(raw) == {"graphrec", "mf_bpr"}
    assert set(raw["graphrec"]) == {"cold", "warm", "hybrid", "cold_full"}
    assert set(raw["mf_bpr"]) == {"warm"}
    assert isinstance(raw["graphrec"]["cold"]["recall@20"], float)
    assert isinstance(raw["graphrec"]["cold"]["n_users"], int)
    back = read_metrics_json(p)
    assert back["graphrec"]["hybrid"]["ndcg@20"] == pytest.approx(res["graphrec"]["hybrid"]["ndcg@20"])


def test_metrics_json_nan_is_null_and_errors(tmp_path):
    p = write_metrics_json(tmp_path / "m.json", {"x": {"cold": {"recall@20": float("nan")}}})
    assert json.loads(p.read_text())["x"]["cold"]["recall@20"] is None
    assert math.isnan(read_metrics_json(p)["x"]["cold"]["recall@20"])
    with pytest.raises(ValueError, match="unknown setting 'cold-start'"):
        write_metrics_json(tmp_path / "m.json", {"x": {"cold-start": {"recall@20": 0.1}}})
    with pytest.raises(TypeError, match=r"\['x'\]\['cold'\]\['recall@20'\]"):
        write_metrics_json(tmp_path / "m.json", {"x": {"cold": {"recall@20": "high"}}})


def test_ci_json_and_report(run, tmp_path):
    data, res = run
    ci = {m: bootstrap_result(r.per_user, samples=50, seed=0) for m, r in res.items()}
    write_ci_json(tmp_path / "metrics_ci.json", ci)
    loaded = json.loads((tmp_path / "metrics_ci.json").read_text())
    assert set(loaded["graphrec"]["cold"]["recall@20"]) == {"mean", "lo", "hi"}
    notes = {m: r.notes for m, r in res.items()}
    buckets = {m: bucket_recall(r, data) for m, r in res.items()}
    p = write_report_md(tmp_path / "report.md", res, ci, notes, "graphrec evaluate --run x",
                        {"mf_bpr": {"trials": 8, "grid": "dim x lr"}, "graphrec": "12 trials"},
                        buckets=buckets, remarks=["synthetic data"], plots=["plots/recall.png"])
    text = p.read_text()
    for s in ("## cold", "## warm", "## hybrid", "## cold_full"):
        assert s in text
    assert "graphrec evaluate --run x" in text
    assert "supports_cold=False" in text  # why mf_bpr has no cold rows
    assert "| mf_bpr | trials: 8, grid: dim x lr |" in text
    assert f"{res['graphrec']['cold']['recall@20']:.4f}" in text
    assert "![recall](plots/recall.png)" in text
    # a table row per model in warm
    warm = text.split("## warm")[1].split("##")[0]
    assert "| graphrec |" in warm and "| mf_bpr |" in warm


def test_render_without_extras():
    text = render_report_md({"pop": {"warm": {"recall@20": 0.1, "ndcg@20": 0.05}}})
    assert "| pop | 0.1000 | 0.0500 | n/a | n/a | n/a |" in text


def _is_png(p):
    return p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots(run, tmp_path):
    data, res = run
    ci = {m: bootstrap_result(r.per_user, samples=20) for m, r in res.items()}
    assert _is_png(plot_recall_bars(res, tmp_path / "recall.png", ci=ci))
    buckets = {m: bucket_recall(r, data) for m, r in res.items()}
    assert _is_png(plot_bucket_recall(buckets, tmp_path / "buckets.png", settings=("warm", "hybrid")))
    curves = {"graphrec": [{"epoch": e, "loss": 1 / (e + 1), "val_ndcg@20": 0.1 * e} for e in range(5)],
              "mf_bpr": [{"epoch": e, "loss": 2 / (e + 1)} for e in range(3)]}
    assert _is_png(plot_training_curves(curves, tmp_path / "curves.png"))


def test_report_has_missing_modality_section_only_when_given():
    res = {"graphrec": {"cold": {"recall@20": 0.3, "ndcg@20": 0.2}}}
    rows = {"graphrec, both": {"recall@20 (mean)": 0.3}, "graphrec, no image": {"recall@20 (mean)": 0.25}}
    text = render_report_md(res, missing_modality=rows)
    section = text.split("## Cold items with a modality removed")[1]
    assert "| graphrec, no image | 0.2500 |" in section and "| graphrec, both | 0.3000 |" in section
    assert "modality removed" not in render_report_md(res)
