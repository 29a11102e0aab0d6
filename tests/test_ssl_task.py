"""Self-supervised terms wired into GraphRecTask and the trainer (tiny synthetic data)."""

import json

import pytest
import torch
from synthetic import make_synthetic, train

from graphrec.evaluation.missing import missing_modality_eval
from graphrec.nn import ModelConfig, build_model
from graphrec.task import GraphRecTask
from graphrec.training import TrainConfig
from graphrec.recipes.graphrec import model_features

MC = ModelConfig(dim=8, proj_hidden=16, num_layers=1, knn_k=2)
SSL = {"rec": 1.0, "cold_rec": 1.0, "align": 0.1, "modal": 0.05, "barlow": 0.05, "genre": 0.1, "recon": 0.1, "consist": 0.1}




@pytest.fixture(scope="module")
def data():
    d = make_synthetic(num_users=30, num_items=40, seed=2)
    g = ["Drama|Comedy", "Horror", "", "Comedy"]
    d.items["genres"] = [g[i % 4] for i in range(d.num_items)]
    return d


def make_task(data, **kw):
    from graphrec.data.genres import genre_targets

    feats = model_features(data, MC.modalities)
    model = build_model(MC, data.num_users, data.num_items, {m: f[0].shape[1] for m, f in feats.items()})
    model.set_graph(data.train, feats)
    t, mask, _, _ = genre_targets(data.items)
    cfg = TrainConfig(loss_weights=SSL, num_negatives=4, ssl_items=16, ssl_users=16, **kw)
    return GraphRecTask(model, cfg, t, mask, data.csr("train"))


def test_every_ssl_term_is_finite_and_trains_its_head(data):
    torch.manual_seed(0)
    task = make_task(data, modality_dropout=0.3, feature_noise=0.1).train()
    users, pos = data.train[0, :32], data.train[1, :32]
    out = task(users, pos, torch.randint(data.num_items, (4,)))
    for k in ("barlow", "genre", "recon", "consist"):
        assert torch.isfinite(out[f"{k}_loss"]) and out[f"{k}_loss"] > 0, k
    out["loss"].backward()
    for name in ("barlow_user", "barlow_item", "genre", "recon_text", "recon_image"):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in task.heads[name].parameters()), name
    # the weights the task uses are its own (dynamic weighting replaces them)
    task.weights["barlow"] = 0.0
    assert "barlow_loss" not in task(users, pos, torch.randint(data.num_items, (4,)))


def test_defaults_follow_the_ablation_and_errors_named(data):
    from graphrec.ablation import VARIANTS, apply_train_overrides, variant_overrides

    cfg = TrainConfig()
    # the defaults are the `+infonce` variant (link prediction + cross-modal InfoNCE; RESULTS.md): SSL terms opt-in
    selected = apply_train_overrides(cfg, variant_overrides(list(VARIANTS))["+infonce"])
    on = lambda w: {k: v for k, v in w.items() if v}  # noqa: E731
    assert on(selected.loss_weights) == on(cfg.loss_weights) and selected.loss_weighting == cfg.loss_weighting
    assert selected.modality_dropout == cfg.modality_dropout and cfg.weight("consist") == 0
    feats = model_features(data, MC.modalities)
    model = build_model(MC, data.num_users, data.num_items, {m: f[0].shape[1] for m, f in feats.items()})
    model.set_graph(data.train, feats)
    with pytest.raises(ValueError, match="genre"):
        GraphRecTask(model, TrainConfig(loss_weights={"rec": 1.0, "genre": 0.1}))
    with pytest.raises(ValueError, match="train_csr"):
        GraphRecTask(model, TrainConfig(loss_weights={"rec": 1.0, "barlow": 0.1}))


def test_trainer_dynamic_weighting_logs_and_plots(data, tmp_path):
    tc = TrainConfig(epochs=3, batch_size=64, num_negatives=4, loss_weights=SSL, loss_weighting="validation",
                     ssl_items=16, ssl_users=16, modality_dropout=0.2, tensorboard=True, patience=5)
    model, hist = train(data, MC, tc, tmp_path)
    assert all("weights" in h for h in hist if "epoch" in h)
    assert (tmp_path / "loss_weights.png").exists()
    assert "barlow_loss" in json.loads((tmp_path / "history.json").read_text())[0]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(tmp_path / "tb"))
    ea.Reload()
    assert "weights/barlow" in ea.Tags()["scalars"] and "train/genre_loss" in ea.Tags()["scalars"]
    res = missing_modality_eval(model, data, "val")
    assert set(res) == {"both", "no_text", "no_image"} and "recall@20" in res["no_image"]
    assert res["no_image"]["n_cold_items_affected"] > 0


def with_timestamps(data):
    import dataclasses

    g = torch.Generator().manual_seed(1)
    return dataclasses.replace(data, train_timestamps=torch.rand(data.train.shape[1], generator=g, dtype=torch.float64))


def test_user_view_follows_timestamps(data):
    from graphrec.recipes.graphrec import user_history_views

    cfg = TrainConfig(loss_weights={"rec": 1.0, "barlow": 0.1}, history_max=5)
    csr, seq = user_history_views(data, cfg)  # auto, no timestamps: set view
    assert seq is None and csr[0].shape == (data.num_users + 1,)
    timed = with_timestamps(data)
    csr, (hist, lens) = user_history_views(timed, cfg)  # auto with timestamps: sequence view
    assert csr is None and hist.shape == (data.num_users, 5)
    counts = torch.bincount(data.train[0], minlength=data.num_users)
    assert torch.equal(lens, counts.clamp(max=5))
    u = int(torch.argmax(counts))  # most recent item of the heaviest user is the last one kept
    mine = (data.train[0] == u).nonzero().flatten()
    assert hist[u, lens[u] - 1] == data.train[1, mine[timed.train_timestamps[mine].argmax()]]
    assert user_history_views(timed, cfg.replace(user_view="set"))[1] is None
    with pytest.raises(ValueError, match="user_view = 'sequence' needs timestamps"):
        user_history_views(data, cfg.replace(user_view="sequence"))


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_sequence_user_view_trains_its_encoder(data, tmp_path, kind):
    timed = with_timestamps(data)
    tc = TrainConfig(epochs=2, batch_size=64, num_negatives=4, ssl_users=16, patience=5, tensorboard=False,
                     warm_refine_epochs=0, loss_weights={"rec": 1.0, "cold_rec": 1.0, "barlow": 0.1},
                     barlow_views=["user"], sequence_encoder=kind, history_max=6)
    from graphrec.task import GraphRecTask
    from graphrec.recipes.graphrec import user_history_views

    feats = model_features(timed, MC.modalities)
    model = build_model(MC, timed.num_users, timed.num_items, {m: f[0].shape[1] for m, f in feats.items()})
    model.set_graph(timed.train, feats)
    task = GraphRecTask(model, tc, train_seq=user_history_views(timed, tc)[1]).train()
    assert "user_seq" in task.heads and task.heads["user_seq"].kind == kind
    out = task(timed.train[0, :32], timed.train[1, :32], torch.randint(timed.num_items, (4,)))
    assert torch.isfinite(out["barlow_loss"]) and out["barlow_loss"] > 0
    out["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in task.heads["user_seq"].parameters())
    _, hist = train(timed, MC, tc, tmp_path)  # end to end through the trainer
    assert "barlow_loss" in hist[0]


def test_genre_term_is_switched_off_with_a_note_when_it_cannot_apply(data, tmp_path, capsys):
    import dataclasses

    tc = TrainConfig(epochs=1, batch_size=64, num_negatives=4, tensorboard=False, warm_refine_epochs=0,
                     loss_weights={"rec": 1.0, "cold_rec": 1.0, "genre": 0.1})
    no_genres = dataclasses.replace(data, items=data.items.drop(columns="genres"))
    _, hist = train(no_genres, MC, tc, tmp_path / "a")
    assert "no `genres` column" in capsys.readouterr().err and "genre_loss" not in hist[0]
    assert "genre" in (tmp_path / "a" / "notes.txt").read_text()
    text_only = MC.replace(modalities=["text"])  # the default genre_hidden = ["text"] leaves nothing to predict from
    _, hist = train(data, text_only, tc, tmp_path / "b")
    assert "hides every modality" in capsys.readouterr().err and "genre_loss" not in hist[0]
    _, hist = train(data, MC, tc, tmp_path / "c")  # applies: trained with it
    assert "genre_loss" in hist[0] and not (tmp_path / "c" / "notes.txt").exists()


def test_model_config_follows_the_encoded_modalities():
    from graphrec.config import load_config

    cfg = load_config(None, [])
    logs = []
    assert cfg.model.restricted_to({"text": 1, "image": 2}) is cfg.model
    assert cfg.model.restricted_to({"text": 1}).modalities == ["text"]
    with pytest.raises(ValueError, match="encoders.enabled"):
        cfg.model.restricted_to({"audio": 1})
