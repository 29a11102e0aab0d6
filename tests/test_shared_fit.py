"""Fits shared between a run's models (graphrec.baselines.shared_fit): stored once, read by the next
caller, waited for while another process fits them, keyed by everything that decides the fit."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest
import torch

from graphrec.baselines import fit_baseline
from graphrec.baselines.shared_fit import FitCache
from graphrec.baselines.store import save_scorer
from graphrec.baselines.tune import tune
from graphrec.evaluation.protocol import make_validator
from graphrec.nn.backbone import CFBackbone
from graphrec.training.config import TrainConfig
from tests.test_baselines import make_data

P = {"dim": 8, "layers": 2, "lr": 5e-3, "reg": 1e-4, "batch_size": 256, "epochs": 4, "eval_every": 1, "patience": 5}


@pytest.fixture(scope="module")
def data():
    return make_data()


def _fit(data, params=P, seed=0):
    return fit_baseline("lightgcn", data, params, seed, make_validator(data), False)


def _counting(data, params=P, seed=0):
    calls = []

    def fit():
        calls.append(1)
        return _fit(data, params, seed)
    return fit, calls


def test_second_caller_reads_the_stored_fit(tmp_path, data):
    cache = FitCache(tmp_path, log=lambda _: None)
    fit, calls = _counting(data)
    first, how1 = cache.get_or_fit("lightgcn", P, 0, data, fit)
    second, how2 = cache.get_or_fit("lightgcn", P, 0, data, fit)
    assert (how1, how2, len(calls)) == ("fitted", "stored", 1)
    assert torch.equal(first.user_emb, second.user_emb) and torch.equal(first.item_emb, second.item_emb)
    assert second.history["best_epoch"] == first.history["best_epoch"]
    meta = json.loads(next(tmp_path.glob("lightgcn-*.json")).read_text())
    assert meta["params"] == P and meta["seed"] == 0 and not list(tmp_path.glob("*.lock"))


def test_key_covers_params_seed_data_teacher_and_defaults(tmp_path, data):
    cache = FitCache(tmp_path)
    k = cache.key("lightgcn", P, 0, data)
    other = make_data(seed=1)
    assert cache.key("lightgcn", {**P, "lr": 1e-3}, 0, data) != k
    assert cache.key("lightgcn", P, 1, data) != k
    assert cache.key("lightgcn", P, 0, other) != k
    assert cache.key("lightgcn", P, 0, data, (torch.ones(2, 2), torch.ones(3, 2))) != k
    assert cache.key("mf_bpr", {"dim": 8}, 0, data) != cache.key("lightgcn", {"dim": 8}, 0, data)
    # parameters left at their defaults and the same parameters spelled out are the same fit
    from graphrec.baselines.lightgcn import DEFAULTS
    assert cache.key("lightgcn", {"dim": 8}, 0, data) == cache.key("lightgcn", {**DEFAULTS, "dim": 8}, 0, data)


def test_refresh_fits_again_and_a_corrupt_entry_is_refitted(tmp_path, data):
    logs = []
    fit, calls = _counting(data)
    FitCache(tmp_path, log=logs.append).get_or_fit("lightgcn", P, 0, data, fit)
    _, how = FitCache(tmp_path, refresh=True, log=logs.append).get_or_fit("lightgcn", P, 0, data, fit)
    assert how == "fitted" and len(calls) == 2
    next(tmp_path.glob("lightgcn-*.pt")).write_bytes(b"not a torch file")
    _, how = FitCache(tmp_path, log=logs.append).get_or_fit("lightgcn", P, 0, data, fit)
    assert how == "fitted" and len(calls) == 3 and any("unreadable" in m for m in logs)


def test_waits_for_a_live_process_fitting_the_same_entry(tmp_path, data):
    """A lock held by a live process: the second caller does not fit, it waits and reads the result."""
    cache = FitCache(tmp_path, poll_s=0.05, log=lambda _: None)
    pt, _, lock = cache.paths("lightgcn", cache.key("lightgcn", P, 0, data))
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname()}))
        done = _fit(data)

        def other_process_finishes():
            time.sleep(0.4)
            save_scorer(pt, done)
            lock.unlink()

        threading.Thread(target=other_process_finishes).start()
        fit, calls = _counting(data)
        got, how = cache.get_or_fit("lightgcn", P, 0, data, fit)
    finally:
        holder.kill()
        holder.wait()
    assert how == "waited" and calls == [] and torch.equal(got.user_emb, done.user_emb)


def test_stale_lock_is_taken_over_and_a_failed_fit_releases_it(tmp_path, data):
    cache = FitCache(tmp_path, poll_s=0.05, log=lambda _: None)
    _, _, lock = cache.paths("lightgcn", cache.key("lightgcn", P, 0, data))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    fit, calls = _counting(data)
    _, how = cache.get_or_fit("lightgcn", P, 0, data, fit)
    assert how == "fitted" and len(calls) == 1 and not lock.exists()

    def boom():
        raise RuntimeError("out of memory")
    with pytest.raises(RuntimeError):
        cache.get_or_fit("lightgcn", {**P, "lr": 1e-3}, 0, data, boom)
    assert not list(tmp_path.glob("*.lock"))


def test_another_hosts_lock_is_not_waited_for_nor_removed(tmp_path, data):
    cache = FitCache(tmp_path, poll_s=0.05, log=lambda _: None)
    _, _, lock = cache.paths("lightgcn", cache.key("lightgcn", P, 0, data))
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname() + "-elsewhere"}))
    fit, calls = _counting(data)
    _, how = cache.get_or_fit("lightgcn", P, 0, data, fit)
    assert how == "fitted" and len(calls) == 1 and lock.exists()


def test_tuning_and_the_backbone_share_one_lightgcn_fit(tmp_path, data):
    """The baseline's tuning stores its fits; GraphRec's backbone with the same parameters and seed
    reads the one it needs, and gets exactly the vectors a fresh fit of its own would give."""
    from graphrec.recipes.backbone import train_backbone

    validator = make_validator(data)
    cache = FitCache(tmp_path, log=lambda _: None)
    grid = {k: [v] for k, v in P.items() if k != "lr"} | {"lr": [2e-3, 5e-3]}
    _, _, trials = tune("lightgcn", data, grid, 4, 0, validator, False, cache=cache)
    assert [t["shared_fit"] for t in trials] == ["fitted", "fitted"]
    _, _, again = tune("lightgcn", data, grid, 4, 0, validator, False, cache=cache)  # an interrupted tuning, rerun
    assert [t["shared_fit"] for t in again] == ["stored", "stored"]
    assert [t["value"] for t in again] == [t["value"] for t in trials]

    cfg = TrainConfig(seed=0, backbone_layers=P["layers"], backbone_lr=P["lr"], backbone_reg=P["reg"],
                      backbone_batch_size=P["batch_size"], backbone_epochs=P["epochs"],
                      backbone_eval_every=P["eval_every"], backbone_patience=P["patience"])

    def stub():
        return SimpleNamespace(backbone=CFBackbone(data.num_users, data.num_items, P["dim"]), _eval_cache=None)
    shared, fresh = stub(), stub()
    hist = train_backbone(shared, data, cfg, validator, cache=cache)
    train_backbone(fresh, data, cfg, validator)
    assert hist["shared_fit"] == "stored"
    assert torch.equal(shared.backbone.user, fresh.backbone.user) and torch.equal(shared.backbone.item, fresh.backbone.item)
    other_seed = train_backbone(stub(), data, cfg.replace(seed=1), validator, cache=cache)
    assert other_seed["shared_fit"] == "fitted"  # another seed is another fit
