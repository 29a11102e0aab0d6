"""Item index for serving: exact inner-product search by default, faiss for large catalogues."""

from __future__ import annotations

import torch


class ItemIndex:
    """Item embeddings with top-k search.

    Args:
        item_ids: original ids, one per row.
        emb: item embeddings (L2-normalised for cosine scores).
        backend: ``"exact"`` (batched matmul + top-k; the default) or ``"faiss"`` (``IndexFlatIP``,
            or ``IndexHNSWFlat`` with ``hnsw_m > 0``, for catalogues of millions of items; needs the
            ``serve`` extra).

    Shapes:
        emb: (N, d); search: users (B, d) -> scores (B, k), indices (B, k)
    """

    def __init__(self, item_ids: list[str], emb: torch.Tensor, backend: str = "exact", hnsw_m: int = 0) -> None:
        if emb.shape[0] != len(item_ids):
            raise ValueError(f"ItemIndex: {len(item_ids)} ids but {emb.shape[0]} embeddings")
        if backend not in ("exact", "faiss"):
            raise ValueError(f"ItemIndex: backend must be 'exact' or 'faiss', got {backend!r}")
        self.item_ids = list(item_ids)
        self.emb = emb.float().contiguous()
        self.backend, self.hnsw_m = backend, hnsw_m
        self._pos = {v: i for i, v in enumerate(self.item_ids)}
        self._faiss = None

    def __len__(self) -> int:
        return len(self.item_ids)

    def position(self, item_id: str) -> int | None:
        return self._pos.get(item_id)

    def add(self, item_ids: list[str], emb: torch.Tensor) -> None:
        """Append items; an id already in the index is an error (nothing is overwritten)."""
        dup = [i for i in item_ids if i in self._pos]
        if dup:
            raise ValueError(f"ItemIndex.add: item id {dup[0]!r} is already in the index")
        for i in item_ids:
            self._pos[i] = len(self.item_ids)
            self.item_ids.append(i)
        self.emb = torch.cat([self.emb, emb.float()], 0)
        self._faiss = None

    def _faiss_index(self):
        if self._faiss is None:
            try:
                import faiss
            except ImportError as exc:  # pragma: no cover - depends on the extra
                raise ImportError("backend='faiss' needs faiss: pip install -e '.[serve]'") from exc
            d = self.emb.shape[1]
            index = faiss.IndexHNSWFlat(d, self.hnsw_m, faiss.METRIC_INNER_PRODUCT) if self.hnsw_m else faiss.IndexFlatIP(d)
            index.add(self.emb.numpy())
            self._faiss = index
        return self._faiss

    def search(self, queries: torch.Tensor, k: int, exclude: list[list[int]] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k items per query, skipping each query's ``exclude`` positions.

        Returns ``(scores (B, k), positions (B, k))``; fewer than k valid items are padded with
        ``-inf`` / ``-1``.
        """
        k_eff = min(k, len(self))
        if self.backend == "faiss":
            extra = max((len(e) for e in exclude), default=0) if exclude else 0
            s, p = self._faiss_index().search(queries.float().numpy(), min(len(self), k_eff + extra))
            scores, pos = torch.from_numpy(s), torch.from_numpy(p).long()
            if exclude:
                for r, ex in enumerate(exclude):
                    bad = torch.isin(pos[r], torch.tensor(ex, dtype=torch.long))
                    scores[r, bad] = float("-inf")
            order = torch.argsort(scores, dim=1, descending=True, stable=True)[:, :k_eff]
            scores, pos = scores.gather(1, order), pos.gather(1, order)
        else:
            scores_all = queries.float() @ self.emb.T  # (B, N)
            if exclude:
                rows = torch.cat([torch.full((len(e),), r, dtype=torch.long) for r, e in enumerate(exclude)]) if any(exclude) else None
                if rows is not None:
                    cols = torch.cat([torch.tensor(e, dtype=torch.long) for e in exclude])
                    scores_all[rows, cols] = float("-inf")
            scores, pos = torch.topk(scores_all, k_eff, dim=1)
        pos = torch.where(torch.isinf(scores), torch.full_like(pos, -1), pos)
        if k_eff < k:
            pad = k - k_eff
            scores = torch.cat([scores, torch.full((scores.shape[0], pad), float("-inf"))], 1)
            pos = torch.cat([pos, torch.full((pos.shape[0], pad), -1, dtype=torch.long)], 1)
        return scores, pos
