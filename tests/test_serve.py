"""Serving: recommend excludes history; added items rank exactly as if they had been cold catalogue items."""

import hashlib

import numpy as np
import pandas as pd
import pytest
import torch

from synthetic import train

from graphrec.data import RecData
from graphrec.data.report import DataError
from graphrec.encoders import encode_items
from graphrec.encoders.base import EncodeResult, register_encoder
from graphrec.encoders.config import EncodersConfig
from graphrec.nn import ModelConfig
from graphrec.serve import ItemIndex, Recommender
from graphrec.training.config import TrainConfig


class HashTextEncoder:
    """Deterministic fake text encoder: a seeded random vector per distinct text (8-d)."""

    name, modality = "serve_fake_text", "text"

    def __init__(self, **_):
        pass

    @property
    def dim(self):
        return 8

    def fingerprint(self):
        return "serve-fake-text-v1"

    def input_keys(self, items):
        return [str(t) for t in items["text"].tolist()]

    def encode(self, items, progress=True):
        rows, mask, status = [], [], []
        for t in items["text"].fillna("").astype(str):
            seed = int(hashlib.sha1(t.encode()).hexdigest()[:8], 16)
            rows.append(np.random.default_rng(seed).normal(size=8) if t else np.zeros(8))
            mask.append(bool(t))
            status.append("ok" if t else "empty")
        return EncodeResult(torch.tensor(np.array(rows), dtype=torch.float32), torch.tensor(mask), status)


register_encoder("serve_fake_text", HashTextEncoder, overwrite=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    rng = np.random.default_rng(0)
    n_users, n_items = 24, 30
    items = pd.DataFrame({"item_id": [f"m{i}" for i in range(n_items)], "title": [f"Movie {i}" for i in range(n_items)],
                          "text": [f"text of movie {i} genre {i % 3}" for i in range(n_items)], "image_path": "", "genres": ""})
    enc_cfg = EncodersConfig.from_dict({"enabled": ["text"], "text": {"name": "serve_fake_text"}})
    feats, _ = encode_items(items, enc_cfg, tmp / "features", progress=False)
    cold = [f"m{i}" for i in range(24, 30)]  # never interacted: cold catalogue items
    pairs = {(f"u{u}", f"m{i}") for u in range(n_users) for i in rng.choice(24, size=6, replace=False)}
    df = pd.DataFrame(sorted(pairs), columns=["user_id", "item_id"])
    empty = df.iloc[:0]
    splits = {"train": df, "val_warm": empty, "test_warm": empty, "val_cold": empty, "test_cold": empty}
    data = RecData.from_frames(splits, items, feats)
    mcfg = ModelConfig(dim=16, num_layers=2, modalities=["text"], proj_hidden=16, knn_k=3)
    tcfg = TrainConfig(epochs=2, batch_size=64, num_negatives=4, tensorboard=False, patience=5)
    model, _ = train(data, mcfg, tcfg, tmp / "model", val_fn=lambda m, d: {"cold/ndcg@20": 0.0})
    return model, items, df, enc_cfg, tmp, cold


def test_recommend_excludes_history_and_names_titles(trained):
    model, items, df, enc_cfg, tmp, _ = trained
    rec = Recommender(model, items, df, enc_cfg, tmp / "features")
    out = rec.recommend(["u0", "u1"], k=5)
    assert list(out.columns) == ["user_id", "rank", "item_id", "title", "score"]
    for u in ("u0", "u1"):
        got = set(out[out.user_id == u].item_id)
        assert len(got) == 5 and not got & set(df[df.user_id == u].item_id)
        assert out[out.user_id == u]["rank"].tolist() == [1, 2, 3, 4, 5]
    assert out.title.str.startswith("Movie").all()
    seen = rec.recommend("u0", k=30, exclude_seen=False)
    assert len(seen) == 30
    with pytest.raises(KeyError, match="unknown user id 'nobody'"):
        rec.recommend(["nobody"])


def test_added_items_rank_as_if_present_from_the_start(trained):
    model, items, df, enc_cfg, tmp, cold = trained
    rec = Recommender(model, items[~items.item_id.isin(cold)], df, enc_cfg, tmp / "features", tmp / "serve")
    # drop the cold items from the serving index, then add them back under new ids from content alone
    keep = [i for i, v in enumerate(rec.index.item_ids) if v not in cold]
    rec.index = ItemIndex([rec.index.item_ids[i] for i in keep], rec.index.emb[keep])
    new = items[items.item_id.isin(cold)].copy()
    new["item_id"] = "new_" + new["item_id"]
    added = rec.add_items(new)
    assert len(added) == len(cold) and len(rec.index) == 30
    users = torch.arange(model.num_users)
    full = model.score(users)[:, [model.item_ids.index(c) for c in cold]]  # as cold catalogue items
    pos = [rec.index.position("new_" + c) for c in cold]
    served = rec.user_emb[users] @ rec.index.emb[pos].T
    torch.testing.assert_close(served, full, rtol=1e-5, atol=1e-5)
    # persisted: a new Recommender picks them up
    rec2 = Recommender(model, items[~items.item_id.isin(cold)], df, enc_cfg, tmp / "features", tmp / "serve")
    rec2.index = ItemIndex([rec2.index.item_ids[i] for i in keep], rec2.index.emb[keep])
    rec2._load_added()
    assert rec2.index.position("new_m25") is not None


def test_bad_new_items_are_clear_errors_and_add_nothing(trained, tmp_path):
    model, items, df, enc_cfg, tmp, _ = trained
    rec = Recommender(model, items, df, enc_cfg, tmp / "features")
    n = len(rec.index)
    bad = tmp_path / "new.csv"
    bad.write_text("item_id,title,text\nx1,A,some text\nm3,B,dup of catalogue\n")
    with pytest.raises(DataError, match=r"new\.csv, row 3, field 'item_id'.*already in the catalogue"):
        rec.add_items(bad, persist=False)
    bad.write_text("item_id,title,text,image_path\nx1,A,t,\nx2,,,\n")
    with pytest.raises(DataError, match=r"row 3.*neither text nor image"):
        rec.add_items(bad, persist=False)
    bad.write_text("item_id,title,text,image_path\nx1,A,t,nope.jpg\n")
    with pytest.raises(DataError, match=r"row 2, field 'image_path'"):
        rec.add_items(bad, persist=False)
    assert len(rec.index) == n


def test_faiss_backend_matches_exact_search():
    pytest.importorskip("faiss")
    g = torch.Generator().manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(200, 16, generator=g), dim=-1)
    q = torch.nn.functional.normalize(torch.randn(5, 16, generator=g), dim=-1)
    ids = [f"i{i}" for i in range(200)]
    exclude = [[0, 1, 2], [], [5], [7, 8], []]
    s_exact, p_exact = ItemIndex(ids, emb).search(q, 10, exclude)
    s_faiss, p_faiss = ItemIndex(ids, emb, backend="faiss").search(q, 10, exclude)
    assert torch.equal(p_exact, p_faiss)
    torch.testing.assert_close(s_exact, s_faiss, rtol=1e-4, atol=1e-4)


def test_added_items_follow_a_switch_to_the_ensemble(trained, tmp_path):
    from graphrec.nn.ensemble import GraphRecEnsemble

    model, items, df, enc_cfg, tmp, cold = trained
    feats, _ = encode_items(items, enc_cfg, tmp / "features", progress=False)
    empty = df.iloc[:0]
    data = RecData.from_frames({"train": df, "val_warm": empty, "test_warm": empty, "val_cold": empty, "test_cold": empty},
                               items, feats)
    mcfg = ModelConfig(dim=16, num_layers=2, modalities=["text"], proj_hidden=16, knn_k=3)  # as in the fixture
    tcfg = TrainConfig(seed=1, epochs=2, batch_size=64, num_negatives=4, tensorboard=False, patience=5)
    other, _ = train(data, mcfg, tcfg, tmp_path / "seed1", val_fn=lambda m, d: {"cold/ndcg@20": 0.0})
    base = items[~items.item_id.isin(cold)]
    new = items[items.item_id.isin(cold)].copy()
    new["item_id"] = "new_" + new["item_id"]
    single = Recommender(model, base, df, enc_cfg, tmp / "features", tmp_path / "serve")
    single.add_items(new)
    ens = GraphRecEnsemble([model, other])
    rec = Recommender(ens, base, df, enc_cfg, tmp / "features", tmp_path / "serve")
    rec._load_added()  # persisted by the single model: re-embedded in the ensemble's space
    pos = [rec.index.position("new_" + c) for c in cold]
    assert None not in pos and rec.index.emb.shape[1] == 2 * (2 * 16 + model.backbone.dim) + int(model.content_scores.serving_columns().sum()) + 1
    users = torch.arange(model.num_users)
    full = ens.score(users)[:, [model.item_ids.index(c) for c in cold]]
    torch.testing.assert_close(rec.user_emb[users] @ rec.index.emb[pos].T, full, rtol=1e-5, atol=1e-5)
    again = Recommender(ens, base, df, enc_cfg, tmp / "features", tmp_path / "serve")
    again._load_added()  # now stored in the ensemble's space: loaded as is
    torch.testing.assert_close(again.index.emb[pos], rec.index.emb[pos])
