"""Trainer: strict configs, YAML next to the run, checkpoints, resume, TensorBoard, negatives."""

import pytest
import torch
import yaml
from synthetic import make_synthetic, train

from graphrec.config_base import ConfigError
from graphrec.nn import ModelConfig
from graphrec.training import NegativeSampler, TrainConfig, load_checkpoint

MC = ModelConfig(dim=8, proj_hidden=16, num_layers=1, knn_k=2)
TC = TrainConfig(epochs=3, batch_size=64, num_negatives=4, tensorboard=False)



@pytest.fixture(scope="module")
def data():
    return make_synthetic(num_users=30, num_items=40, seed=2)


def test_configs_are_strict():
    with pytest.raises(ConfigError, match="unknown config key lrr"):
        TrainConfig.from_dict({"lrr": 0.1})
    with pytest.raises(ConfigError, match="unknown config key dimm"):
        ModelConfig.from_dict({"dimm": 3})
    with pytest.raises(ConfigError, match="loss_weights.bogus"):
        TrainConfig(loss_weights={"bogus": 1.0})
    with pytest.raises(ConfigError, match="fusion"):
        ModelConfig.from_dict({"fusion": "concat"})
    with pytest.raises(ConfigError, match="knn_k"):
        ModelConfig(knn_k=-1)


def test_yaml_round_trip_and_run_files(data, tmp_path):
    train(data, MC, TC.replace(epochs=1, tensorboard=True), tmp_path)
    cfg = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert ModelConfig.from_dict(cfg["model"]) == MC
    assert TrainConfig.from_dict(cfg["train"]) == TC.replace(epochs=1, tensorboard=True)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    for key in ("model_config", "train_config", "user_ids", "item_ids", "fingerprints", "step", "best_metric", "graphrec_version"):
        assert key in state
    assert (tmp_path / "history.json").exists()


def test_tensorboard_has_every_term(data, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(data, MC, TC.replace(epochs=1, tensorboard=True), tmp_path)
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for t in ("train/rec_loss", "train/cold_rec_loss", "train/align_loss", "train/modal_loss", "train/reg_loss", "train/loss",
              "val/cold/ndcg@20", "val/warm/recall@20"):
        assert t in tags, (t, tags)


def test_resume_continues_identically(data, tmp_path):
    full, h_full = train(data, MC, TC, tmp_path / "full")
    train(data, MC, TC.replace(epochs=2), tmp_path / "part")
    resumed, h_res = train(data, MC, TC, tmp_path / "part", resume=True)
    assert [h["loss"] for h in h_full] == [h["loss"] for h in h_res]
    users = torch.arange(data.num_users)
    assert torch.equal(full.score(users), resumed.score(users))


def test_early_stopping_uses_validation(data, tmp_path):
    calls = []

    def val_fn(model, d):
        calls.append(1)
        return {"cold/ndcg@20": 1.0 / len(calls), "warm/recall@20": 0.0}  # gets worse every epoch

    _, hist = train(data, MC, TC.replace(epochs=10, patience=1), tmp_path, val_fn=val_fn)
    assert len(hist) == 2  # best at epoch 0, one bad epoch (patience 1) then stop
    assert load_checkpoint(tmp_path / "checkpoint.pt").checkpoint_info["epoch"] == 0


def test_negatives_exclude_train_positives(data):
    s = NegativeSampler(data.train, data.num_items)
    users = data.train[0].repeat(5)
    neg = s.sample(users, 6, torch.Generator().manual_seed(0))
    pos = set(zip(data.train[0].tolist(), data.train[1].tolist()))
    bad = sum((u, i) in pos for u, row in zip(users.tolist(), neg.tolist()) for i in row)
    assert bad == s.num_unresolved
    warm = set(data.train[1].tolist())
    assert set(neg.flatten().tolist()) <= warm


def test_missing_feature_set_is_named(data, tmp_path):
    with pytest.raises(KeyError, match="poster"):
        train(data, MC.replace(modalities=["text", "poster"]), TC, tmp_path)


@pytest.mark.parametrize("dense_limit", [0, 10**9])
def test_shared_negatives_mask_train_positives(data, dense_limit):
    s = NegativeSampler(data.train, data.num_items, dense_limit=dense_limit)
    users = data.train[0, :50]
    neg, valid = s.sample_shared(users, 30, torch.Generator().manual_seed(0))
    pos = set(zip(data.train[0].tolist(), data.train[1].tolist()))
    expect = torch.tensor([[(u, i) not in pos for i in neg.tolist()] for u in users.tolist()])
    assert torch.equal(valid, expect)
    assert not valid.all()  # the tiny graph is dense enough to hit some positives


def test_bf16_precision_trains_under_autocast_with_float32_weights(data, tmp_path):
    # the dense layers run in bfloat16, the sparse propagation and the losses in float32
    c32, c16 = TC.replace(epochs=2, seed=0), TC.replace(epochs=2, seed=0, precision="bf16")
    _, h32 = train(data, MC, c32, tmp_path / "fp32", refine=False)
    model, h16 = train(data, MC, c16, tmp_path / "bf16", refine=False)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert len(h16) == len(h32) == 2
    for a, b in zip(h32, h16):
        assert a["loss"] != b["loss"]  # the forward really ran in bfloat16 ...
        assert abs(a["loss"] - b["loss"]) < 0.05 * abs(a["loss"])  # ... and computed the same objective
    with pytest.raises(ConfigError, match="precision"):
        TrainConfig.from_dict({"precision": "fp16"})


def test_autocast_propagation_stays_float32():
    from graphrec.graph.build import normalized_adjacency
    from graphrec.nn.gnn import LightGCNPropagation

    adj = normalized_adjacency(torch.tensor([[0, 1, 1], [0, 0, 1]]), 2, 2)
    x = torch.randn(4, 3, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = LightGCNPropagation(2)(x.to(torch.bfloat16), adj)
    assert out.dtype == torch.float32
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
