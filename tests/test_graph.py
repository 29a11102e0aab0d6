"""Graph construction: HeteroData from train only, LightGCN normalisation, warm-only content kNN."""

import torch
from synthetic import make_synthetic

from graphrec.graph import build_hetero, centred_normalised, knn_graph_to_sources, normalized_adjacency
from graphrec.nn.gnn import LightGCNPropagation


def test_hetero_uses_train_edges_only():
    d = make_synthetic()
    g = build_hetero(d)
    ei = g["user", "rates", "item"].edge_index
    assert torch.equal(ei, d.train)
    assert torch.equal(g["item", "rev_rates", "user"].edge_index, d.train.flip(0))
    assert g["item"].num_nodes == d.num_items and g["user"].num_nodes == d.num_users
    assert g["item"].ids == d.item_ids and g["user"].ids == d.user_ids
    cold = torch.cat([d.cold_val_items, d.cold_test_items])
    assert not torch.isin(ei[1], cold).any()  # cold items are nodes without edges
    assert not g["item"].warm[cold].any()
    assert g["item"].x_text.shape == (d.num_items, d.features["text"].dim)


def test_propagation_matches_pyg_lgconv():
    from torch_geometric.nn import LGConv

    d = make_synthetic()
    n = d.num_users + d.num_items
    adj = normalized_adjacency(d.train, d.num_users, d.num_items)
    x = torch.randn(n, 5)
    ei = torch.cat([torch.stack([d.train[0], d.train[1] + d.num_users]), torch.stack([d.train[1] + d.num_users, d.train[0]])], 1)
    conv = LGConv()
    ref, h = x.clone(), x
    for _ in range(3):
        h = conv(h, ei)
        ref = ref + h
    ref = ref / 4
    assert torch.allclose(LightGCNPropagation(3)(x, adj), ref, atol=1e-5)


def test_knn_sources_are_warm_and_exclude_self():
    torch.manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(20, 6), dim=1)
    warm = torch.arange(0, 20, 2)
    pos = torch.full((20,), -1)
    pos[warm] = torch.arange(len(warm))
    idx, w = knn_graph_to_sources(x, x[warm], 3, 0.1, exclude=pos)
    assert idx.shape == (20, 3) and torch.allclose(w.sum(1), torch.ones(20))
    for i in warm.tolist():
        assert pos[i].item() not in idx[i].tolist()
    # a query's neighbours depend only on its own row
    idx2, w2 = knn_graph_to_sources(x[5:6], x[warm], 3, 0.1)
    assert torch.equal(idx2[0], idx[5]) and torch.allclose(w2[0], w[5])


def test_centred_normalised_zeroes_missing():
    x = torch.randn(4, 3)
    m = torch.tensor([True, False, True, True])
    y = centred_normalised(x, m, x[m].mean(0))
    assert torch.all(y[1] == 0) and torch.allclose(y[m].norm(dim=1), torch.ones(3))
