"""An item index in column blocks: each group of items searched in the columns it uses, exactly.

GraphRec's serving space gives warm and cold items disjoint supports (:mod:`graphrec.nn.serving_space`):
a warm item is ``[0, v_i, b_i, 0, 0]``, a cold (or new) one ``[cold view, 0, transfer, content, walk]``.
With the content terms the space is wide (1,730 columns for the default model on ml1m-mm) while a warm
item uses only ``d + d_b`` of them (128). :class:`BlockedIndex` keeps each group of items in an
:class:`~graphrec.serve.index.ItemIndex` over its own columns only, searches every group with the
users' matching columns and merges the top-k lists by score. The scores are the same dot products
(the columns a group leaves out are zero for its items, checked on construction and on every
:meth:`BlockedIndex.add`), so results equal a single index over the full space; a large warm catalogue
is searched, and indexed by HNSW, at the warm width, and each group chooses exact search or HNSW by
its own size (``ann_min_items``).

Shapes:
    emb: (N, W); blocks[name]: column indices (W_b,); search: users (B, W) -> scores (B, k), positions (B, k)
"""

from __future__ import annotations

from pathlib import Path

import torch

from graphrec.serve.index import ItemIndex


class BlockedIndex:
    """:class:`~graphrec.serve.index.ItemIndex`'s interface over column blocks (see the module docstring).

    Args:
        item_ids: original ids, one per row of ``emb``.
        emb: the items' serving vectors in the full space.
        blocks: block name -> the columns its items may use.
        item_blocks: each item's block name.
        default_block: the block of items given to :meth:`add` without one (new items: ``"cold"``).
        **index_args: :class:`ItemIndex` arguments (backend, ann_min_items, ef_search, ...); a
            ``cache_dir`` gets one sub-directory per block.
    """

    def __init__(self, item_ids: list[str], emb: torch.Tensor, blocks: dict[str, torch.Tensor],
                 item_blocks: list[str], default_block: str, cache_dir: str | Path | None = None, **index_args) -> None:
        if emb.shape[0] != len(item_ids) or len(item_blocks) != len(item_ids):
            raise ValueError(f"BlockedIndex: {len(item_ids)} ids, {emb.shape[0]} embeddings, {len(item_blocks)} block names")
        unknown = sorted(set(item_blocks) - set(blocks)) + ([default_block] if default_block not in blocks else [])
        if unknown:
            raise ValueError(f"BlockedIndex: block {unknown[0]!r} is not one of {sorted(blocks)}")
        self.width = emb.shape[1]
        self.backend = index_args.get("backend", "exact")
        self.blocks = {b: torch.as_tensor(c, dtype=torch.long) for b, c in blocks.items()}
        self.default_block = default_block
        self.item_ids: list[str] = []
        self._pos: dict[str, int] = {}
        self._block_of: list[tuple[str, int]] = []  # global position -> (block, local position)
        self._glob = {b: [] for b in blocks}  # block -> global positions of its items, in local order
        self._emb = None
        self._glob_t: dict[str, torch.Tensor] = {}
        names = list(item_blocks)
        self.parts: dict[str, ItemIndex] = {}
        for b, cols in self.blocks.items():
            rows = [r for r, n in enumerate(names) if n == b]
            sub = self._checked(emb[rows], b)
            self.parts[b] = ItemIndex([item_ids[r] for r in rows], sub, cache_dir=Path(cache_dir) / b if cache_dir else None,
                                      **index_args)
        order = {b: 0 for b in blocks}
        for r, (iid, b) in enumerate(zip(item_ids, names)):
            self._register(iid, b, order[b])
            order[b] += 1

    def _checked(self, emb: torch.Tensor, block: str) -> torch.Tensor:
        """``emb``'s columns of ``block``; an item with a nonzero value elsewhere is an error (it would lose score)."""
        cols = self.blocks[block]
        outside = torch.ones(self.width, dtype=torch.bool)
        outside[cols] = False
        if emb.shape[0] and bool((emb[:, outside] != 0).any()):
            r = int((emb[:, outside] != 0).any(1).nonzero()[0])
            raise ValueError(f"BlockedIndex: row {r} of block {block!r} has nonzero values outside the block's columns")
        return emb[:, cols].float().contiguous()

    def _register(self, item_id: str, block: str, local: int) -> None:
        self._pos[item_id] = len(self.item_ids)
        self._glob[block].append(len(self.item_ids))
        self._block_of.append((block, local))
        self.item_ids.append(item_id)

    def __len__(self) -> int:
        return len(self.item_ids)

    def position(self, item_id: str) -> int | None:
        return self._pos.get(item_id)

    @property
    def active_backend(self) -> str:
        """Each block's backend, e.g. ``warm=faiss-hnsw32,cold=exact``."""
        return ",".join(f"{b}={p.active_backend}" for b, p in self.parts.items())

    @property
    def faiss_source(self) -> str | None:
        """Where the blocks' HNSW graphs came from (``built``, ``cache``, mixed as ``built,cache``; None: none)."""
        src = sorted({p.faiss_source for p in self.parts.values() if p.faiss_source})
        return ",".join(src) or None

    @property
    def emb(self) -> torch.Tensor:
        """The items' vectors in the full space (assembled on first use after a change; N x W floats:
        :meth:`scores` and :meth:`vectors` serve recommendation without it). (N, W)"""
        if self._emb is None:
            out = torch.zeros(len(self), self.width)
            for b, part in self.parts.items():
                if self._glob[b]:
                    out[self._glob_tensor(b)[:, None], self.blocks[b][None, :]] = part.emb
            self._emb = out
        return self._emb

    def scores(self, queries: torch.Tensor) -> torch.Tensor:
        """Every item's exact score, computed per block in its own columns (the full-width matrix is
        never assembled). (B, W) -> (B, N)"""
        out = torch.empty(queries.shape[0], len(self), device=queries.device)
        for b, part in self.parts.items():
            if len(part):
                out[:, self._glob_tensor(b)] = part.scores(queries[:, self.blocks[b]])
        return out

    def vectors(self, positions: list[int]) -> torch.Tensor:
        """The full-space vectors of the items at ``positions`` (zeros outside each item's block). (n, W)"""
        out = torch.zeros(len(positions), self.width)
        for r, p in enumerate(positions):
            b, loc = self._block_of[p]
            out[r, self.blocks[b]] = self.parts[b].emb[loc]
        return out

    def quadratic(self, c: torch.Tensor) -> torch.Tensor:
        """``x_i^T c x_i`` for every item, each block in its own columns. c: (W, W) -> (N,)"""
        out = torch.empty(len(self), device=c.device)
        for b, part in self.parts.items():
            if len(part):
                cols = self.blocks[b]
                out[self._glob_tensor(b)] = part.quadratic(c[cols][:, cols])
        return out

    def add(self, item_ids: list[str], emb: torch.Tensor, block: str | None = None) -> None:
        """Append items (to ``block``, default :attr:`default_block`); ids already present are an error."""
        block = block or self.default_block
        if block not in self.parts:
            raise ValueError(f"BlockedIndex.add: block {block!r} is not one of {sorted(self.parts)}")
        if emb.shape[1] != self.width:
            raise ValueError(f"BlockedIndex.add: width {emb.shape[1]}, the index has {self.width}")
        dup = [i for i in item_ids if i in self._pos]
        if dup:
            raise ValueError(f"BlockedIndex.add: item id {dup[0]!r} is already in the index")
        part = self.parts[block]
        start = len(part)
        part.add(list(item_ids), self._checked(emb, block))
        for j, iid in enumerate(item_ids):
            self._register(iid, block, start + j)
        self._emb = None

    def _glob_tensor(self, block: str) -> torch.Tensor:
        """Global positions of ``block``'s items as a tensor (cached until the block grows: a search must
        not convert a million-element list per query)."""
        t = self._glob_t.get(block)
        if t is None or len(t) != len(self._glob[block]):
            t = self._glob_t[block] = torch.tensor(self._glob[block], dtype=torch.long)
        return t

    def build(self) -> "BlockedIndex":
        for p in self.parts.values():
            if len(p):
                p.build()
        return self

    def search(self, queries: torch.Tensor, k: int, exclude: list[list[int]] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k items per query over every block, skipping each query's ``exclude`` positions (global).

        Returns ``(scores (B, k), positions (B, k))``, padded with ``-inf`` / ``-1`` like :meth:`ItemIndex.search`.
        """
        local_ex = {b: [[] for _ in range(queries.shape[0])] for b in self.parts} if exclude else None
        if exclude:
            for r, ex in enumerate(exclude):
                for p in ex:
                    b, loc = self._block_of[p]
                    local_ex[b][r].append(loc)
        scores, pos = [], []
        for b, part in self.parts.items():
            if not len(part):
                continue
            s, p = part.search(queries[:, self.blocks[b]], k, local_ex[b] if exclude else None)
            glob = self._glob_tensor(b)
            scores.append(s)
            pos.append(torch.where(p >= 0, glob[p.clamp_min(0)], torch.full_like(p, -1)))
        if not scores:
            return torch.full((queries.shape[0], k), float("-inf")), torch.full((queries.shape[0], k), -1, dtype=torch.long)
        s, p = torch.cat(scores, 1), torch.cat(pos, 1)
        order = torch.argsort(s, dim=1, descending=True, stable=True)[:, :k]
        return s.gather(1, order), p.gather(1, order)


def make_index(model, item_ids: list[str], emb: torch.Tensor, **index_args):
    """The serving index of ``model``'s items: a :class:`BlockedIndex` over warm / cold columns for a
    GraphRec or an ensemble of them (:func:`graphrec.nn.serving_space.serving_blocks`), else one
    :class:`ItemIndex`. New items go to the cold block."""
    if not (hasattr(model, "content_scores") or hasattr(model, "members")):
        return ItemIndex(item_ids, emb, **index_args)
    from graphrec.nn.serving_space import serving_blocks

    blocks, warm = serving_blocks(model)
    return BlockedIndex(item_ids, emb, blocks, ["warm" if w else "cold" for w in warm.tolist()], "cold", **index_args)
