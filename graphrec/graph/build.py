"""User-item graph construction from the training split only.

Leakage rule: every structure here is built from ``RecData.train`` edges (and statistics over
train items); cold items are nodes with features and no interaction edges.
"""

from __future__ import annotations

import torch

from graphrec.data.dataset import RecData


def build_hetero(data: RecData, modalities: list[str] | None = None):
    """A PyG ``HeteroData`` of users and items with train interactions and their reverse.

    Item nodes carry ``x_<modality>`` and ``mask_<modality>`` for every feature set; id maps
    (original string ids, position = index) are kept as ``user_ids`` / ``item_ids`` node
    attributes.

    Args:
        data: the split in index space.
        modalities: feature sets to attach (default: all of ``data.features``).

    Returns:
        HeteroData with node types ``user``, ``item`` and edge types
        ``(user, rates, item)`` and ``(item, rev_rates, user)``.

    Shapes:
        ``['user','rates','item'].edge_index``: (2, E_train).
    """
    from torch_geometric.data import HeteroData

    names = sorted(data.features) if modalities is None else list(modalities)
    missing = [n for n in names if n not in data.features]
    if missing:
        raise KeyError(f"feature sets {missing} not in RecData.features ({sorted(data.features)})")
    g = HeteroData()
    g["user"].num_nodes = data.num_users
    g["user"].ids = list(data.user_ids)
    g["item"].num_nodes = data.num_items
    g["item"].ids = list(data.item_ids)
    for n in names:
        g["item"][f"x_{n}"] = data.features[n].x
        g["item"][f"mask_{n}"] = data.features[n].mask
    g["item"].warm = item_degree(data.train, data.num_items) > 0
    ei = data.train.clone()
    g["user", "rates", "item"].edge_index = ei
    g["item", "rev_rates", "user"].edge_index = ei.flip(0)
    return g


def item_degree(train: torch.Tensor, num_items: int) -> torch.Tensor:
    """Train-interaction count per item. Shapes: train (2, E) -> (num_items,)."""
    return torch.bincount(train[1], minlength=num_items)


def normalized_adjacency(train: torch.Tensor, num_users: int, num_items: int) -> torch.Tensor:
    """Symmetrically normalised bipartite adjacency ``D^-1/2 A D^-1/2`` as a sparse CSR matrix.

    Node order is users first, then items (item ``i`` is node ``num_users + i``). This is the
    propagation matrix of LightGCN (He et al., SIGIR 2020) and equals PyG ``LGConv`` with
    ``gcn_norm`` (no self loops) on the undirected edge list.

    Shapes:
        train: (2, E) -> (U + I, U + I) sparse CSR with 2E non-zeros.
    """
    n = num_users + num_items
    u, i = train[0], train[1] + num_users
    row = torch.cat([u, i])
    col = torch.cat([i, u])
    deg = torch.bincount(row, minlength=n).float()
    dinv = deg.pow(-0.5)
    dinv[torch.isinf(dinv)] = 0.0
    val = dinv[row] * dinv[col]
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        adj = torch.sparse_coo_tensor(torch.stack([row, col]), val, (n, n), check_invariants=True).coalesce()
        return adj.to_sparse_csr()


def centred_normalised(x: torch.Tensor, mask: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """Subtract a (train-fitted) mean, L2-normalise rows, zero rows without the modality.

    Shapes: x (N, D), mask (N,), mean (D,) -> (N, D).
    """
    y = torch.nn.functional.normalize(x - mean, dim=-1)
    return y * mask.unsqueeze(-1).to(y.dtype)


def knn_graph_to_sources(
    query: torch.Tensor,
    keys: torch.Tensor,
    k: int,
    temperature: float,
    exclude: torch.Tensor | None = None,
    chunk: int = 4096,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` most similar keys for every query row, with softmax message weights.

    Keys are warm (train) items only, so messages flow warm -> any item and never from a
    cold item; a query's result depends only on its own row and the fixed keys.

    Args:
        query: content vectors of the receiving items (already centred/normalised).
        keys: content vectors of the sending warm items.
        k: neighbours per query (clipped to the number of keys).
        temperature: softmax temperature over the similarities of the k neighbours.
        exclude: for each query, a key position to exclude (its own row when the query is a
            warm item), or -1.
        chunk: queries processed at a time.

    Returns:
        ``(index (Q, k) key positions, weight (Q, k) rows summing to 1)``.

    Shapes:
        query (Q, D), keys (S, D), exclude (Q,).
    """
    k = min(k, keys.shape[0] - (1 if exclude is not None else 0))
    idx_out, w_out = [], []
    for s in range(0, query.shape[0], chunk):
        q = query[s : s + chunk]
        sim = q @ keys.T  # (q, S)
        if exclude is not None:
            ex = exclude[s : s + chunk]
            rows = torch.nonzero(ex >= 0).flatten()
            sim[rows, ex[rows]] = float("-inf")
        val, idx = sim.topk(k, dim=1)
        idx_out.append(idx)
        w_out.append(torch.softmax(val / temperature, dim=1))
    if not idx_out:
        return torch.zeros(0, k, dtype=torch.long), torch.zeros(0, k)
    return torch.cat(idx_out), torch.cat(w_out)


def pca(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and top-``k`` principal directions of the rows of ``x`` (exact SVD; zero columns past its rank).

    Shapes: x (n, D) -> mean (D,), components (D, k)
    """
    mean = x.mean(0) if x.shape[0] else torch.zeros(x.shape[1], device=x.device)
    _, _, vh = torch.linalg.svd((x - mean).double(), full_matrices=False)  # (r, D), r = min(n, D)
    comp = torch.zeros(x.shape[1], k, dtype=torch.float64, device=x.device)
    comp[:, : min(k, vh.shape[0])] = vh[:k].T
    return mean, comp.float()
