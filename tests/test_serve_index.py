"""ItemIndex backend "auto": exact below the catalogue-size threshold, faiss HNSW from it on (issue 15)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from graphrec.serve import ItemIndex, Recommender
from graphrec.serve.index import ANN_MIN_ITEMS

faiss = pytest.importorskip("faiss")


def catalogue(n=600, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    emb = torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=-1)
    q = torch.nn.functional.normalize(torch.randn(8, d, generator=g), dim=-1)
    return [f"i{k}" for k in range(n)], emb, q


def test_auto_below_threshold_is_exact_search():
    ids, emb, q = catalogue()
    exclude = [[0, 5, 9], [], [1], [], [2, 3], [], [], [599]]
    auto = ItemIndex(ids, emb, backend="auto")
    assert len(ids) < ANN_MIN_ITEMS and auto.active_backend == "exact"
    s_auto, p_auto = auto.search(q, 20, exclude)
    s_exact, p_exact = ItemIndex(ids, emb, backend="exact").search(q, 20, exclude)
    assert torch.equal(p_auto, p_exact) and torch.equal(s_auto, s_exact)
    assert auto._faiss is None  # nothing was built


def test_auto_above_threshold_uses_hnsw_built_once_and_grown_by_add():
    ids, emb, q = catalogue()
    idx = ItemIndex(ids, emb, backend="auto", ann_min_items=500, ef_search=64)
    assert idx.active_backend == "faiss-hnsw32"
    exclude = [[0, 5, 9], [], [1], [], [2, 3], [], [], [599]]
    s, p = idx.search(q, 20, exclude)
    built = idx._faiss
    assert built is not None and built.ntotal == 600 and built.hnsw.efSearch == 64
    _, p_exact = ItemIndex(ids, emb).search(q, 20, exclude)
    recall = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(p, p_exact)) / p_exact.numel()
    assert recall >= 0.95  # tiny catalogue: HNSW finds (almost) exactly the same top-20
    for r, ex in enumerate(exclude):
        assert not set(ex) & set(p[r].tolist())
    assert torch.all(s[:, :-1] >= s[:, 1:])  # sorted

    idx.search(q, 5)
    assert idx._faiss is built  # not rebuilt by a second search
    # new items, each one query's best match: found at once, the index grown in place
    idx.add([f"new{r}" for r in range(len(q))], 3 * q)
    assert idx._faiss is built and built.ntotal == 608
    _, p2 = idx.search(q, 1)
    assert p2[:, 0].tolist() == [idx.position(f"new{r}") for r in range(len(q))]
    with pytest.raises(ValueError, match="already"):
        idx.add(["new0"], q[:1])


def test_auto_switches_when_adds_cross_the_threshold():
    ids, emb, q = catalogue(n=100)
    idx = ItemIndex(ids[:90], emb[:90], backend="auto", ann_min_items=95)
    assert idx.active_backend == "exact"
    idx.search(q, 5)
    idx.add(ids[90:], emb[90:])
    assert idx.active_backend.startswith("faiss-hnsw")
    _, p = idx.search(q, 5)
    assert idx._faiss.ntotal == 100 and (p >= 0).all()


def test_fewer_candidates_than_k_are_padded():
    ids, emb, q = catalogue(n=12)
    idx = ItemIndex(ids, emb, backend="auto", ann_min_items=10)
    s, p = idx.search(q[:2], 20, [list(range(10)), []])
    assert (p[0, 2:] == -1).all() and torch.isinf(s[0, 2:]).all() and set(p[0, :2].tolist()) == {10, 11}
    assert (p[1, 12:] == -1).all() and (p[1, :12] >= 0).all()


def test_bad_backend_and_recommender_default():
    ids, emb, _ = catalogue(n=20)
    with pytest.raises(ValueError, match="backend"):
        ItemIndex(ids, emb, backend="annoy")

    class M:
        user_ids, item_ids = ["u0", "u1"], ids
        modalities: list = []
        fingerprints: dict = {}

        def embeddings(self):
            return emb[:2].clone(), emb

    rec = Recommender(M(), pd.DataFrame({"item_id": ids, "title": ids}), pd.DataFrame({"user_id": ["u0"], "item_id": ["i3"]}))
    assert rec.index.backend == "auto" and rec.index.active_backend == "exact"
    rec2 = Recommender(M(), pd.DataFrame({"item_id": ids, "title": ids}), pd.DataFrame({"user_id": ["u0"], "item_id": ["i3"]}),
                       ann_min_items=10)
    assert rec2.index.active_backend.startswith("faiss-hnsw")
    a, b = rec.recommend(["u0", "u1"], k=5), rec2.recommend(["u0", "u1"], k=5)
    assert "i3" not in set(a[a.user_id == "u0"].item_id) and "i3" not in set(b[b.user_id == "u0"].item_id)
    assert a.item_id.tolist() == b.item_id.tolist()  # 20 items: HNSW is exact here


def test_cli_recommend_backend_options(monkeypatch):
    from graphrec import cli

    seen = {}

    class Stop(Exception):
        pass

    def fake_load(run_dir, model="auto", log=None, backend="auto", ann_min_items=ANN_MIN_ITEMS):
        seen.update(backend=backend, ann_min_items=ann_min_items)
        raise Stop

    monkeypatch.setattr(Recommender, "load", staticmethod(fake_load))
    with pytest.raises(Stop):
        cli.main(["recommend", "--user", "1"])
    assert seen == {"backend": "auto", "ann_min_items": ANN_MIN_ITEMS}
    with pytest.raises(Stop):
        cli.main(["recommend", "--user", "1", "--backend", "exact", "--ann-min-items", "5000"])
    assert seen == {"backend": "exact", "ann_min_items": 5000}


def test_hnsw_graph_is_cached_by_embeddings_and_read_back(tmp_path):
    ids, emb, q = catalogue()
    first = ItemIndex(ids, emb, backend="auto", ann_min_items=500, cache_dir=tmp_path).build()
    files = list(tmp_path.glob("faiss-hnsw32_*.faiss"))
    assert first.faiss_source == "built" and len(files) == 1
    again = ItemIndex(ids, emb, backend="auto", ann_min_items=500, cache_dir=tmp_path).build()
    assert again.faiss_source == "cache" and again._faiss.ntotal == 600
    s1, p1 = first.search(q, 20)
    s2, p2 = again.search(q, 20)
    assert torch.equal(p1, p2) and torch.allclose(s1, s2)  # the same graph
    # other embeddings (or another graph degree) never read that file
    other = ItemIndex(ids, emb.flip(0), backend="auto", ann_min_items=500, cache_dir=tmp_path).build()
    assert other.faiss_source == "built" and len(list(tmp_path.glob("*.faiss"))) == 2
    m16 = ItemIndex(ids, emb, backend="faiss", hnsw_m=16, cache_dir=tmp_path).build()
    assert m16.faiss_source == "built" and len(list(tmp_path.glob("faiss-hnsw16_*.faiss"))) == 1
    assert ItemIndex(ids, emb, backend="auto", ann_min_items=500).build().faiss_source == "built"  # no cache_dir


def test_hnsw_cache_keeps_the_most_recently_used_graphs_only(tmp_path):
    import os

    ids, emb, q = catalogue()
    first = ItemIndex(ids, emb, backend="auto", ann_min_items=500, cache_dir=tmp_path, cache_keep=2).build()
    (f_first,) = tmp_path.glob("*.faiss")
    os.utime(f_first, ns=(1, 1))  # long ago
    flipped = ItemIndex(ids, emb.flip(0), backend="auto", ann_min_items=500, cache_dir=tmp_path, cache_keep=2).build()
    assert len(list(tmp_path.glob("*.faiss"))) == 2
    os.utime(flipped._cache_path(flipped.active_backend), ns=(2, 2))  # later than the first, still long ago
    again = ItemIndex(ids, emb, backend="auto", ann_min_items=500, cache_dir=tmp_path, cache_keep=2).build()
    assert again.faiss_source == "cache" and f_first.stat().st_mtime_ns > 1  # reading marks it as used
    third = ItemIndex(ids, emb * 2, backend="auto", ann_min_items=500, cache_dir=tmp_path, cache_keep=2).build()
    left = set(tmp_path.glob("*.faiss"))
    assert len(left) == 2 and f_first in left and third._cache_path(third.active_backend) in left  # the flipped one went
    with pytest.raises(ValueError, match="cache_keep"):
        ItemIndex(ids, emb, cache_keep=-1)
    torch.testing.assert_close(first.search(q, 5)[0], again.search(q, 5)[0])
