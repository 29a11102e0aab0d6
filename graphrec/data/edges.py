"""Edge-list helpers shared by the data, the samplers and the evaluation protocol.

Edges are ``(2, E)`` long tensors ``[user, item]``. A pair is also a single int64 *key*
``user * num_items + item``; sorted keys give membership tests by binary search, and sorted
edges give per-user CSR lists.
"""

from __future__ import annotations

import torch


def pair_keys(users: torch.Tensor, items: torch.Tensor, num_items: int) -> torch.Tensor:
    """``user * num_items + item`` (broadcasting). Shapes: (..), (..) -> (..) long"""
    return users.long() * num_items + items.long()


def dedup(edges: torch.Tensor, num_items: int) -> torch.Tensor:
    """Unique ``(2, E)`` pairs sorted by (user, item)."""
    if edges.numel() == 0:
        return edges.reshape(2, 0).long()
    key = torch.unique(pair_keys(edges[0], edges[1], num_items))  # sorted
    return torch.stack([key // num_items, key % num_items])


def csr(edges: torch.Tensor, num_users: int, num_items: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-user item lists as CSR ``(indptr (U+1,), items (E,))``.

    With ``num_items`` the edges are sorted by (user, item) first; without it they must
    already be sorted by user.
    """
    if num_items is not None and edges.numel():
        order = torch.argsort(pair_keys(edges[0], edges[1], num_items))
        edges = edges[:, order]
    counts = torch.bincount(edges[0].long(), minlength=num_users)
    indptr = torch.zeros(num_users + 1, dtype=torch.long)
    indptr[1:] = torch.cumsum(counts, 0)
    return indptr, edges[1].long()


def gather_rows(indptr: torch.Tensor, items: torch.Tensor, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows (position in ``users``) and items of the CSR lists of ``users``.

    Shapes:
        users: (B,) -> rows (E_b,), items (E_b,)
    """
    start, end = indptr[users], indptr[users + 1]
    counts = end - start  # (B,)
    rows = torch.repeat_interleave(torch.arange(users.numel()), counts)
    offsets = torch.cumsum(counts, 0) - counts  # (B,)
    pos = start[rows] + torch.arange(rows.numel()) - offsets[rows]
    return rows, items[pos]


def in_sorted(keys: torch.Tensor, sorted_keys: torch.Tensor) -> torch.Tensor:
    """``torch.isin(keys, sorted_keys)`` for a sorted reference, by binary search."""
    if sorted_keys.numel() == 0:
        return torch.zeros_like(keys, dtype=torch.bool)
    pos = torch.searchsorted(sorted_keys, keys).clamp(max=sorted_keys.numel() - 1)
    return sorted_keys[pos] == keys


class PairSet:
    """Membership test for ``(user, item)`` pairs of an edge list.

    Uses a dense (item-major ``(I, U)``) bitmap when it has at most ``dense_limit`` cells (one gather per
    lookup), else a binary search over sorted pair keys.

    Shapes:
        contains: users (..), items (..) broadcastable -> (..) bool
    """

    def __init__(self, edges: torch.Tensor, num_users: int, num_items: int, dense_limit: int = 200_000_000) -> None:
        self.num_items = num_items
        self.keys = torch.unique(pair_keys(edges[0], edges[1], num_items))  # sorted (E,)
        self.dense_t = None  # item-major (I, U) bitmap: a batch's shared negatives are a few contiguous rows
        if num_users * num_items <= dense_limit:
            self.dense_t = torch.zeros(num_items, num_users, dtype=torch.bool)
            self.dense_t[edges[1], edges[0]] = True

    def contains(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        if self.dense_t is not None:
            if users.dim() == 2 and items.dim() == 2 and users.shape[1] == 1 and items.shape[0] == 1:
                # (B, 1) x (1, n): gather the n item rows, then the B user columns of that small block
                return self.dense_t.index_select(0, items[0]).T.contiguous().index_select(0, users[:, 0])
            users, items = torch.broadcast_tensors(users, items)
            return self.dense_t[items, users]
        return in_sorted(pair_keys(users, items, self.num_items), self.keys)
