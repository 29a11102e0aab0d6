"""Item index for serving: exact inner-product search for small catalogues, faiss HNSW for large ones.

``backend="auto"`` (the :class:`~graphrec.serve.Recommender` default) searches exactly while the
catalogue has fewer than ``ann_min_items`` items (:data:`ANN_MIN_ITEMS`, 200,000) and switches to a
faiss HNSW graph (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search
using Hierarchical Navigable Small World graphs", TPAMI 2018) from that size on. Below the
threshold ``auto`` *is* exact search (same code path, same results). Override it per index
(``ann_min_items``) or per command (``graphrec recommend --backend exact|faiss|auto --ann-min-items N``).

Why these defaults (``benchmarks/bench_serve.py``, numbers in ``BENCHMARKS.md``; 1M synthetic
items, this project's shared 2-core CPU): exact search takes 88 ms p50 at width 128 and 116 ms at
the ensemble's 384, above the 50 ms target, and grows linearly with the catalogue, so it crosses
50 ms around 500k items at width 128 and sooner at 384; 200k keeps a margin for wider spaces and
slower machines while ml1m-mm-sized catalogues stay exact. HNSW with M=32, efConstruction=40,
efSearch=512 gave recall@20 against exact search of 0.975 (width 128) and 0.962 (384) at 2.5 / 5.0
ms p50. The price is the build: 342 s (128) and 373 s (384) for 1M items, paid on the first search
(``build()`` pays it up front). With ``cache_dir`` (the Recommender passes ``<serve_dir>/index``) a
built HNSW graph is written there, keyed by a hash of the embeddings and the graph parameters, and
read back instead of rebuilt by the next process serving the same embeddings; the directory keeps the
:data:`HNSW_CACHE_KEEP` most recently written or read graphs and deletes older ones (each is the size of
its embeddings plus the graph: about 7 GB at 1M x 1,730).

A GraphRec model's serving index is a :class:`~graphrec.serve.blocks.BlockedIndex`: one
``ItemIndex`` per column block (warm items, cold and new items), each choosing by its own size.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from pathlib import Path

import torch

log = logging.getLogger(__name__)

#: ``backend="auto"`` uses the HNSW index from this many items on (exact search below).
ANN_MIN_ITEMS = 200_000
#: HNSW graph degree used by ``auto`` (and by ``faiss`` with ``hnsw_m`` unset via ``auto``).
HNSW_M = 32
#: HNSW candidate list size while building (faiss' default); larger = better graph, slower build.
HNSW_EF_CONSTRUCTION = 40
#: HNSW candidate list size while searching; the recall / latency knob (faiss uses max(ef, k)):
#: 512 gives recall@20 >= 0.95 at 1M items for widths 128 and 384 (BENCHMARKS.md).
HNSW_EF_SEARCH = 512
#: HNSW graphs kept in a cache directory (the most recently written or read; older ones are deleted).
HNSW_CACHE_KEEP = 3

BACKENDS = ("auto", "exact", "faiss")


class ItemIndex:
    """Item embeddings with top-k inner-product search.

    Args:
        item_ids: original ids, one per row.
        emb: item embeddings (L2-normalised for cosine scores).
        backend: ``"auto"`` (exact below ``ann_min_items`` items, faiss HNSW from there on; exact
            when faiss is not installed, with a warning), ``"exact"`` (batched matmul + top-k) or
            ``"faiss"`` (``IndexFlatIP``, or ``IndexHNSWFlat`` with ``hnsw_m > 0``; needs the
            ``serve`` extra).
        hnsw_m: HNSW degree for ``faiss`` (0 = exact ``IndexFlatIP``); ``auto`` uses it, or
            :data:`HNSW_M` when 0.
        ann_min_items: catalogue size from which ``auto`` uses HNSW.
        ef_search: HNSW search candidate list (recall / latency trade-off).
        ef_construction: HNSW build candidate list.
        cache_dir: where built HNSW graphs are written and read back (None: no caching).
        cache_keep: graphs kept in ``cache_dir`` (0 = :data:`HNSW_CACHE_KEEP`).

    The faiss index is built lazily on the first search that needs it, once; :meth:`add` appends
    to a built index instead of rebuilding it.

    Shapes:
        emb: (N, d); search: users (B, d) -> scores (B, k), indices (B, k)
    """

    def __init__(self, item_ids: list[str], emb: torch.Tensor, backend: str = "exact", hnsw_m: int = 0,
                 ann_min_items: int = ANN_MIN_ITEMS, ef_search: int = HNSW_EF_SEARCH,
                 ef_construction: int = HNSW_EF_CONSTRUCTION, cache_dir: str | Path | None = None,
                 cache_keep: int = 0) -> None:
        if emb.shape[0] != len(item_ids):
            raise ValueError(f"ItemIndex: {len(item_ids)} ids but {emb.shape[0]} embeddings")
        if backend not in BACKENDS:
            raise ValueError(f"ItemIndex: backend must be one of {list(BACKENDS)}, got {backend!r}")
        if ann_min_items < 1 or ef_search < 1 or ef_construction < 1 or hnsw_m < 0:
            raise ValueError("ItemIndex: ann_min_items, ef_search and ef_construction must be >= 1, hnsw_m >= 0")
        self.item_ids = list(item_ids)
        self.emb = emb.float().contiguous()
        self.backend, self.hnsw_m = backend, hnsw_m
        self.ann_min_items, self.ef_search, self.ef_construction = ann_min_items, ef_search, ef_construction
        self._pos = {v: i for i, v in enumerate(self.item_ids)}
        self._faiss = None
        self._faiss_kind: str | None = None
        self._warned = False
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        if cache_keep < 0:
            raise ValueError(f"ItemIndex: cache_keep must be >= 0 (0 = HNSW_CACHE_KEEP), got {cache_keep}")
        self.cache_keep = cache_keep or HNSW_CACHE_KEEP
        #: where the current HNSW graph came from: None (not built), "built" or "cache"
        self.faiss_source: str | None = None

    def __len__(self) -> int:
        return len(self.item_ids)

    @property
    def width(self) -> int:
        """Columns of the item vectors."""
        return self.emb.shape[1]

    def position(self, item_id: str) -> int | None:
        return self._pos.get(item_id)

    @property
    def active_backend(self) -> str:
        """What a search uses now: ``exact``, ``faiss-flat`` or ``faiss-hnsw<M>``."""
        if self.backend == "exact":
            return "exact"
        if self.backend == "faiss":
            return f"faiss-hnsw{self.hnsw_m}" if self.hnsw_m else "faiss-flat"
        if len(self) < self.ann_min_items or not _have_faiss():
            if len(self) >= self.ann_min_items and not self._warned:
                log.warning("ItemIndex: %d items >= ann_min_items=%d but faiss is not installed "
                            "(pip install -e '.[serve]'); searching exactly", len(self), self.ann_min_items)
                self._warned = True
            return "exact"
        return f"faiss-hnsw{self.hnsw_m or HNSW_M}"

    def scores(self, queries: torch.Tensor) -> torch.Tensor:
        """Every item's exact score. (B, d) -> (B, N)"""
        return queries.float() @ self.emb.T

    def vectors(self, positions: list[int]) -> torch.Tensor:
        """The vectors of the items at ``positions``. (n, d)"""
        return self.emb[positions]

    def quadratic(self, c: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
        """``x_i^T c x_i`` for every item vector ``x_i``, in row chunks. c: (d, d) -> (N,)"""
        return torch.cat([((e @ c) * e).sum(1) for e in self.emb.split(chunk)]) if len(self) else torch.zeros(0)

    def add(self, item_ids: list[str], emb: torch.Tensor) -> None:
        """Append items; an id already in the index is an error (nothing is overwritten)."""
        dup = [i for i in item_ids if i in self._pos]
        if dup:
            raise ValueError(f"ItemIndex.add: item id {dup[0]!r} is already in the index")
        if len(set(item_ids)) != len(item_ids):
            raise ValueError("ItemIndex.add: duplicate ids among the new items")
        emb = emb.float().contiguous()
        for i in item_ids:
            self._pos[i] = len(self.item_ids)
            self.item_ids.append(i)
        self.emb = torch.cat([self.emb, emb], 0)
        if self._faiss is not None:
            self._faiss.add(emb.numpy())  # HNSW and flat indexes both grow in place

    def _faiss_index(self):
        kind = self.active_backend
        if self._faiss is None or self._faiss_kind != kind:
            try:
                import faiss
            except ImportError as exc:  # pragma: no cover - depends on the extra
                raise ImportError("backend='faiss' needs faiss: pip install -e '.[serve]'") from exc
            d = self.emb.shape[1]
            cached = self._cache_path(kind)
            if cached is not None and cached.exists():
                index, self.faiss_source = faiss.read_index(str(cached)), "cache"
                _touch(cached)  # recently used: kept by the pruning
            else:
                if kind.startswith("faiss-hnsw"):
                    index = faiss.IndexHNSWFlat(d, int(kind[len("faiss-hnsw"):]), faiss.METRIC_INNER_PRODUCT)
                    index.hnsw.efConstruction = self.ef_construction
                else:
                    index = faiss.IndexFlatIP(d)
                index.add(self.emb.numpy())
                self.faiss_source = "built"
                if cached is not None:  # HNSW graphs only (_cache_path)
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    tmp = cached.with_name(cached.name + f".tmp{os.getpid()}")
                    faiss.write_index(index, str(tmp))
                    tmp.replace(cached)  # atomic: a concurrent reader sees the whole file or none
                    prune_cache(cached.parent, self.cache_keep)
            self._faiss, self._faiss_kind = index, kind
        if self._faiss_kind.startswith("faiss-hnsw"):
            self._faiss.hnsw.efSearch = self.ef_search
        return self._faiss

    def _cache_path(self, kind: str) -> Path | None:
        """``<cache_dir>/<kind>_<hash>.faiss`` for an HNSW graph of the current embeddings (None: no caching)."""
        if self.cache_dir is None or not kind.startswith("faiss-hnsw"):
            return None
        h = hashlib.sha256(self.emb.numpy().tobytes())
        h.update(f"{tuple(self.emb.shape)}|{kind}|{self.ef_construction}".encode())
        return self.cache_dir / f"{kind}_{h.hexdigest()[:20]}.faiss"

    def build(self) -> "ItemIndex":
        """Build the faiss index now (if the active backend uses one) instead of on the first search."""
        if self.active_backend != "exact":
            self._faiss_index()
        return self

    def search(self, queries: torch.Tensor, k: int, exclude: list[list[int]] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k items per query, skipping each query's ``exclude`` positions.

        Returns ``(scores (B, k), positions (B, k))``; fewer than k valid items are padded with
        ``-inf`` / ``-1``.
        """
        k_eff = min(k, len(self))
        if self.active_backend != "exact":
            extra = max((len(e) for e in exclude), default=0) if exclude else 0
            s, p = self._faiss_index().search(queries.float().contiguous().numpy(), min(len(self), k_eff + extra))
            scores, pos = torch.from_numpy(s), torch.from_numpy(p).long()
            scores[pos < 0] = float("-inf")  # faiss pads with label -1 when it finds fewer
            if exclude:
                for r, ex in enumerate(exclude):
                    if ex:
                        bad = torch.isin(pos[r], torch.tensor(ex, dtype=torch.long))
                        scores[r, bad] = float("-inf")
            order = torch.argsort(scores, dim=1, descending=True, stable=True)[:, :k_eff]
            scores, pos = scores.gather(1, order), pos.gather(1, order)
        else:
            scores_all = self.scores(queries)  # (B, N)
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


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:  # a read-only cache still serves; it is just not marked as used
        pass


def prune_cache(cache_dir: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` most recently written or read ``*.faiss`` graphs in ``cache_dir``.

    Returns the deleted paths. A file that cannot be deleted (read-only, removed meanwhile) is left.
    """
    def mtime(f: Path) -> int:
        try:
            return f.stat().st_mtime_ns
        except OSError:  # removed by another process meanwhile
            return -1

    files = sorted(Path(cache_dir).glob("*.faiss"), key=mtime, reverse=True)
    gone = []
    for f in files[keep:]:
        try:
            f.unlink()
            gone.append(f)
        except OSError:
            pass
    if gone:
        log.info("ItemIndex: pruned %d old HNSW graph(s) from %s (keeping %d)", len(gone), cache_dir, keep)
    return gone


@functools.lru_cache(maxsize=None)
def _have_faiss() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True
