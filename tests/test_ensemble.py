"""Seed ensemble: mean of member scores, one-inner-product serving, new items, manifest checks."""

import pytest
import torch
from synthetic import make_synthetic, train

from graphrec.nn import ModelConfig
from graphrec.nn.ensemble import GraphRecEnsemble
from graphrec.training.manifest import load_ensemble, write_ensemble_manifest
from graphrec.training import TrainConfig
from graphrec.recipes.graphrec import model_features

MC = ModelConfig(dim=8, proj_hidden=16, num_layers=1, knn_k=2)


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    run = tmp_path_factory.mktemp("ens")
    data = make_synthetic(num_users=20, num_items=30, seed=4)
    out = []
    for seed, d in ((0, "model"), (1, "model_seed1")):
        tc = TrainConfig(seed=seed, epochs=2, batch_size=64, num_negatives=4, tensorboard=False, warm_refine_epochs=2)
        out.append(train(data, MC, tc, run / d)[0])
    return data, out, run


def test_score_is_the_mean_and_serving_reproduces_it(members):
    data, ms, _ = members
    ens = GraphRecEnsemble(ms)
    users = torch.arange(data.num_users)
    mean = (ms[0].score(users) + ms[1].score(users)) / 2
    torch.testing.assert_close(ens.score(users), mean)
    assert not torch.allclose(ms[0].score(users), ms[1].score(users))  # the seeds really differ
    u, i = ens.serving_embeddings()
    width = 2 * (2 * MC.dim + ms[0].backbone.dim) + int(ms[0].content_scores.serving_columns().sum()) + 1  # per member: cosines + backbone; one content block
    assert u.shape == (data.num_users, width) and i.shape == (data.num_items, width)
    torch.testing.assert_close(u @ i.T, mean, rtol=1e-5, atol=1e-5)


def test_new_items_land_where_cold_catalogue_items_are(members):
    data, ms, _ = members
    ens = GraphRecEnsemble(ms)
    cold = data.cold_test_items
    feats = model_features(data, MC.modalities)
    new = ens.embed_items({m: (x[cold], mask[cold]) for m, (x, mask) in feats.items()})
    _, items = ens.serving_embeddings()
    torch.testing.assert_close(new, items[cold], rtol=1e-5, atol=1e-5)


def test_members_must_match():
    a = make_synthetic(num_users=10, num_items=12, seed=0)
    from graphrec.nn import build_model

    feats = model_features(a, MC.modalities)
    dims = {m: f[0].shape[1] for m, f in feats.items()}
    with pytest.raises(ValueError, match="member 1 has 10 users / 13 items"):
        GraphRecEnsemble([build_model(MC, 10, 12, dims), build_model(MC, 10, 13, dims)])
    with pytest.raises(ValueError, match="at least one"):
        GraphRecEnsemble([])


def test_manifest_round_trip_and_staleness(members):
    data, ms, run = members
    manifest = run / "ensemble.json"
    assert load_ensemble(manifest)[0] is None  # no manifest yet
    write_ensemble_manifest(manifest, [run / "model", run / "model_seed1"])
    ens, why = load_ensemble(manifest)
    assert why == "ok" and len(ens.members) == 2
    users = torch.arange(data.num_users)
    torch.testing.assert_close(ens.score(users), GraphRecEnsemble(ms).score(users))
    ckpt = run / "model_seed1" / "checkpoint.pt"
    blob = ckpt.read_bytes()
    ckpt.write_bytes(blob + b"\0")  # a retrained member
    ens, why = load_ensemble(manifest)
    assert ens is None and "model_seed1" in why and "changed" in why
    ckpt.write_bytes(blob)
