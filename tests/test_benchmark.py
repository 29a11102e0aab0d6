"""Item k-fold benchmark: fold invariants, the end-to-end command, resumability, statistics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from mlstyle import FAST, write_movielens_style

from graphrec.data.split import item_folds, kfold_split
from graphrec.evaluation.stats import item_bootstrap, paired_ratio, t_interval


def _inter(n_users=50, n_items=70, seed=0):
    rng = np.random.default_rng(seed)
    pop = rng.zipf(1.6, n_items).clip(max=n_users)
    rows = {(f"u{u}", f"i{i}") for i in range(n_items) for u in rng.choice(n_users, size=int(pop[i]), replace=False)}
    rows |= {(f"u{u}", f"i{u % n_items}") for u in range(n_users)}
    return pd.DataFrame(sorted(rows), columns=["user_id", "item_id"])


def test_ten_runs_make_every_item_cold_test_once_and_never_warm_in_that_run():
    inter = _inter()
    k = 10
    folds = item_folds(inter, k, seed=3)
    assert sorted(set(folds.values())) == list(range(k))
    sizes = np.bincount(list(folds.values()))
    assert sizes.max() - sizes.min() <= 1  # stratified dealing: equal sizes
    seen_test = []
    for r in range(k):
        sp = kfold_split(inter, folds, r, k)
        test, val = set(sp.test_cold.item_id), set(sp.val_cold.item_id)
        warm = set(sp.train.item_id) | set(sp.val_warm.item_id) | set(sp.test_warm.item_id)
        assert not (test & warm) and not (val & warm) and not (test & val)
        assert test == {i for i, f in folds.items() if f == r} and val == {i for i, f in folds.items() if f == (r + 1) % k}
        # every interaction of a cold item is in its cold file
        assert len(sp.test_cold) == int(inter.item_id.isin(test).sum())
        seen_test += sorted(test)
    assert sorted(seen_test) == sorted(inter.item_id.unique())  # each item cold-test exactly once


def test_folds_are_stratified_by_popularity_and_seeded():
    inter = _inter(n_users=80, n_items=200, seed=1)
    folds = item_folds(inter, 10, seed=0)
    assert folds == item_folds(inter.sample(frac=1.0, random_state=2), 10, seed=0)  # row order does not matter
    assert folds != item_folds(inter, 10, seed=1)
    pop = inter.item_id.value_counts()
    top = pop.index[:10]  # the 10 most popular items land in 10 different folds
    assert len({folds[i] for i in top}) == 10


def test_paired_ratio_and_t_interval():
    assert t_interval([1.0, 1.0, 1.0])["ci95"] == [1.0, 1.0]
    p = paired_ratio([1.2, 1.3, 1.25, 1.22], [1.0, 1.0, 1.0, 1.0])
    assert p["wins"] == 4 and p["resolved"] == "better" and p["ci95"][0] > 1
    q = paired_ratio([1.2, 0.8, 1.1, 0.9], [1.0, 1.0, 1.0, 1.0])
    assert q["resolved"] == "not resolved" and q["wins"] == 2


def test_item_bootstrap_centres_on_the_exact_metrics():
    g = torch.Generator().manual_seed(0)
    n_users, items = 30, torch.arange(12)
    pos = torch.stack([torch.randint(n_users, (60,), generator=g), torch.randint(12, (60,), generator=g)])
    pos = torch.unique(pos, dim=1)
    top = torch.stack([torch.randperm(12, generator=g)[:5] for _ in range(n_users)])
    users = torch.arange(n_users)
    from graphrec.evaluation.metrics import METRIC_NAMES, ranking_metrics

    has = torch.zeros(n_users, dtype=torch.bool)
    has[pos[0]] = True
    m = ranking_metrics(top[has], torch.stack([torch.searchsorted(users[has], pos[0]), pos[1]]), [5], METRIC_NAMES, -1)
    draws = item_bootstrap(users[has], top[has], pos, items, k=5, samples=400, seed=1)
    assert draws.shape == (400, 2)
    assert abs(float(draws[:, 0].mean()) - float(m["recall@5"].mean())) < 0.05
    assert float(draws[:, 0].std()) > 0  # the item draw moves the metric
    again = item_bootstrap(users[has], top[has], pos, items, k=5, samples=400, seed=1)
    assert torch.equal(draws, again)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    import fakes  # noqa: F401

    from graphrec.cli import main
    from graphrec.init_config import main as init_main

    root = tmp_path_factory.mktemp("bench")
    ml = write_movielens_style(root / "ml", n_users=50, n_movies=70)
    cfg = root / "ml.yaml"
    assert init_main(["--interactions", str(ml["ratings"]), "--items", str(ml["movies"]), "--out", str(cfg),
                      "--run-dir", str(root / "run")]) == 0
    sets = {**FAST, "baselines.names": ["popularity", "content_knn", "mf_bpr"],
            "baselines.grids": {"mf_bpr": {"dim": [8, 16], "epochs": [3]}}, "baselines.budgets": {"mf_bpr": 2},
            "benchmark.runs": 3, "benchmark.folds": 5, "benchmark.jobs": 1, "benchmark.threads": 1,
            "benchmark.item_bootstrap": 50}
    argv = ["benchmark", "--config", str(cfg), "--no-progress"] + sum((["--set", f"{k}={json.dumps(v)}"] for k, v in sets.items()), [])
    assert main(argv) == 0
    return root, argv


def test_benchmark_writes_documented_outputs(bench):
    root, _ = bench
    b = root / "run" / "benchmark"
    s = json.loads((b / "summary.json").read_text())
    assert s["runs"] == 3 and s["folds"] == 5
    assert {"graphrec", "popularity", "content_knn", "mf_bpr"} <= set(s["models"])
    assert set(s["models"]["graphrec-gnn"]) == {"cold"}  # the mechanism ablation rows: cold setting only
    assert "graphrec-gnn" not in s["paired"]  # GraphRec's own variants are not baselines
    g = s["models"]["graphrec"]["cold"]["recall@20"]
    assert len(g["per_run"]) == 3 and g["ci95"][0] <= g["mean"] <= g["ci95"][1]
    p = s["paired"]["content_knn"]["cold"]["ndcg@20"]
    assert {"ratio", "ci95", "wins"} <= set(p)
    per = [r / c for r, c in zip(g["per_run"], s["models"]["content_knn"]["cold"]["recall@20"]["per_run"])]
    assert s["paired"]["content_knn"]["cold"]["recall@20"]["ratio"] == pytest.approx(sum(per) / 3)
    for r in range(3):
        run = b / f"run{r}"
        for f in ("train", "val_warm", "test_warm", "val_cold", "test_cold"):
            assert (run / "split" / f"{f}.csv").exists()
        assert (run / "evaluation" / "topk" / "graphrec_cold.csv").exists()
    assert "resolved" in (b / "report.md").read_text() and (b / "per_run.png").exists()
    # run 0 tuned mf_bpr (2 configs), the others reused its parameters
    t0 = json.loads((b / "run0" / "baselines" / "mf_bpr" / "tuning.json").read_text())
    t1 = json.loads((b / "run1" / "baselines" / "mf_bpr" / "tuning.json").read_text())
    assert len(t0["trials"]) == 2 and len(t1["trials"]) == 1 and t1["params"] == t0["params"]


def test_metrics_recompute_from_topk_files_in_every_run(bench):
    from graphrec.evaluation.recompute import check_run

    root, _ = bench
    for r in range(3):
        rows = check_run(root / "run" / "benchmark" / f"run{r}", tol=1e-4)
        assert rows and all(x["ok"] for x in rows), [x for x in rows if not x["ok"]]


def test_rerun_is_up_to_date_and_a_removed_model_is_retrained(bench, capsys):
    from graphrec.cli import main

    root, argv = bench
    ckpt = root / "run" / "benchmark" / "run1" / "model" / "checkpoint.pt"
    (root / "run" / "benchmark" / "run1" / "model" / "stage.json").unlink()  # as if killed before it finished
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("[train graphrec] running") == 1 and "[train mf_bpr] up to date" in out
    assert ckpt.exists()


def test_lane_markers_are_per_session_and_claims_exclusive(tmp_path):
    from graphrec.benchmark.lanes import _claim, _mark, _marked

    _mark(tmp_path, "laneA", "s1")
    assert _marked(tmp_path, "laneA", "s1") and not _marked(tmp_path, "laneA", "s2")  # an earlier session's marker
    assert _claim(tmp_path, "evaluate", "s1") and not _claim(tmp_path, "evaluate", "s1")  # one evaluator per run
    assert _claim(tmp_path, "evaluate", "s2")  # a stale claim of another session does not block


def test_lanes_split_the_models_by_teacher_chain():
    from graphrec.stages.train import lane_models
    from graphrec.config import Config

    lanes = lane_models(Config())
    assert lanes["A"][:2] == ["baseline:mf_bpr", "baseline:lightgcn"]  # warm models before their students
    assert {"baseline:dropoutnet", "baseline:aldi", "baseline:content_cf_nb"} <= set(lanes["A"])
    assert lanes["B"][0] == "graphrec" and "baseline:knn_pop" in lanes["B"]
    assert not set(lanes["A"]) & set(lanes["B"])


def test_lane_a_writes_every_split_before_it_trains(tmp_path, monkeypatch):
    """Lane B waits only for splits: lane A must write all of them before its (long) first training."""
    import graphrec.stages as stages
    from graphrec.benchmark.lanes import _marked, run_lane
    from graphrec.config import Config

    cfg = Config().replace(run_dir=str(tmp_path / "run"))
    events = []
    monkeypatch.setattr(stages, "stage_encode", lambda *a, **k: None)
    monkeypatch.setattr(stages, "stage_split", lambda c, f, log, paths, kfold: events.append(("split", kfold[0])))
    monkeypatch.setattr(stages, "stage_evaluate", lambda *a, **k: events.append(("evaluate", None)))

    def train(c, feats, force, log, progress, paths, fixed_params, only):
        events.append(("train", paths.root.name))
        assert all(_marked(cfg.paths.benchmark_run(r).root, "split", "s") for r in range(3))

    monkeypatch.setattr(stages, "stage_train", train)
    monkeypatch.setattr("graphrec.benchmark.lanes.tuned_params", lambda paths, names: {})
    run_lane(cfg, "A", "s", [0, 1, 2], log=lambda *_: None)
    assert events[:3] == [("split", 0), ("split", 1), ("split", 2)]
    assert [e for e in events if e[0] == "train"] == [("train", "run0"), ("train", "run1"), ("train", "run2")]
    assert ("evaluate", None) not in events  # lane B has not finished any run: lane A does not evaluate


def test_lane_b_takes_lane_a_share_of_the_last_unclaimed_runs(tmp_path, monkeypatch):
    """After its own share, lane B trains lane A's share of the runs lane A has not started (from the end)."""
    import graphrec.stages as stages
    from graphrec.benchmark.lanes import _claim, _mark, _marked, run_lane
    from graphrec.config import Config
    from graphrec.stages.train import lane_models

    cfg = Config().replace(run_dir=str(tmp_path / "run"))
    shares = lane_models(cfg)
    roots = [cfg.paths.benchmark_run(r).root for r in range(4)]
    for root in roots:
        _mark(root, "split", "s")
    for r in (0, 1):  # lane A finished run 0 and is busy with run 1
        assert _claim(roots[r], "chainA", "s")
    _mark(roots[0], "laneA", "s")
    trained, evaluated = [], []
    monkeypatch.setattr(stages, "stage_encode", lambda *a, **k: None)
    monkeypatch.setattr(stages, "stage_evaluate", lambda c, f, force, log, progress, paths: evaluated.append(paths.root.name))

    def train(c, feats, force, log, progress, paths, fixed_params, only):
        trained.append((paths.root.name, "A" if only(shares["A"][0]) else "B"))
        assert not (only(shares["A"][0]) and only(shares["B"][0]))

    monkeypatch.setattr(stages, "stage_train", train)
    monkeypatch.setattr("graphrec.benchmark.lanes.tuned_params", lambda paths, names: {})
    run_lane(cfg, "B", "s", [0, 1, 2, 3], log=lambda *_: None)
    assert trained == [("run0", "B"), ("run1", "B"), ("run2", "B"), ("run3", "B"), ("run3", "A"), ("run2", "A")]
    assert evaluated == ["run0", "run3", "run2"]  # run 1 waits for lane A, which evaluates it
    assert _marked(roots[2], "laneA", "s") and not _marked(roots[1], "laneA", "s")
