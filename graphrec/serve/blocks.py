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

#: rows gathered at a time when a block's vectors are taken out of the full-width matrix
_CHUNK = 65_536


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
        self._setup(emb.shape[1], blocks, default_block, list(item_blocks))
        names = list(item_blocks)
        parts = {}
        for b in self.blocks:
            rows = torch.tensor([r for r, n in enumerate(names) if n == b], dtype=torch.long)
            # row chunks: a block's sub-matrix is gathered without a full-width copy of all its rows
            subs = [self._checked(emb[rows[s:s + _CHUNK]], b, rows[s:s + _CHUNK]) for s in range(0, len(rows), _CHUNK)]
            parts[b] = ([item_ids[r] for r in rows.tolist()],
                        torch.cat(subs) if subs else torch.zeros(0, len(self.blocks[b])))
        self._fill(parts, cache_dir, index_args)
        order = {b: 0 for b in blocks}
        for iid, b in zip(item_ids, names):
            self._register(iid, b, order[b])
            order[b] += 1

    @classmethod
    def from_blocks(cls, width: int, blocks: dict[str, torch.Tensor], parts: dict[str, tuple[list[str], torch.Tensor]],
                    default_block: str, cache_dir: str | Path | None = None, **index_args) -> "BlockedIndex":
        """The index built from each block's items and vectors in the block's own columns, the full-width
        matrix never formed (a 1M-item catalogue at an ensemble's width is 14.6 GB as one matrix).

        Args:
            width: columns of the full serving space.
            blocks: block name -> its columns, as in the constructor.
            parts: block name -> ``(item ids, vectors (n_b, len(blocks[name])))``; the items take global
                positions in this order (the first block's, then the next block's, ...).
        """
        self = cls.__new__(cls)
        self._setup(width, blocks, default_block, list(parts))
        for b, (ids, sub) in parts.items():
            if sub.shape != (len(ids), len(self.blocks[b])):
                raise ValueError(f"BlockedIndex.from_blocks: block {b!r} has {len(ids)} ids and vectors of shape "
                                 f"{tuple(sub.shape)}, expected ({len(ids)}, {len(self.blocks[b])})")
        missing = {b: ([], torch.zeros(0, len(c))) for b, c in self.blocks.items() if b not in parts}
        self._fill({**parts, **missing}, cache_dir, index_args)
        for b, (ids, _) in parts.items():
            for j, iid in enumerate(ids):
                if iid in self._pos:
                    raise ValueError(f"BlockedIndex.from_blocks: item id {iid!r} is in more than one place")
                self._register(iid, b, j)
        return self

    def _setup(self, width: int, blocks: dict[str, torch.Tensor], default_block: str, used: list[str]) -> None:
        unknown = sorted(set(used) - set(blocks)) + ([default_block] if default_block not in blocks else [])
        if unknown:
            raise ValueError(f"BlockedIndex: block {unknown[0]!r} is not one of {sorted(blocks)}")
        self.width = width
        self.blocks = {b: torch.as_tensor(c, dtype=torch.long) for b, c in blocks.items()}
        self.default_block = default_block
        self.item_ids: list[str] = []
        self._pos: dict[str, int] = {}
        self._block_of: list[tuple[str, int]] = []  # global position -> (block, local position)
        self._glob = {b: [] for b in blocks}  # block -> global positions of its items, in local order
        self._emb = None
        self._glob_t: dict[str, torch.Tensor] = {}

    def _fill(self, parts: dict[str, tuple[list[str], torch.Tensor]], cache_dir, index_args: dict) -> None:
        """One :class:`ItemIndex` per block over its own columns."""
        self.backend = index_args.get("backend", "exact")
        self.parts: dict[str, ItemIndex] = {}
        for b in self.blocks:
            ids, sub = parts[b]
            self.parts[b] = ItemIndex(ids, sub.float(), cache_dir=Path(cache_dir) / b if cache_dir else None, **index_args)

    def _checked(self, emb: torch.Tensor, block: str, rows: torch.Tensor | None = None) -> torch.Tensor:
        """``emb``'s columns of ``block``; an item with a nonzero value elsewhere is an error (it would lose
        score). ``rows``: the input rows ``emb`` holds, for the message."""
        cols = self.blocks[block]
        outside = torch.ones(self.width, dtype=torch.bool)
        outside[cols] = False
        if emb.shape[0] and bool((emb[:, outside] != 0).any()):
            r = int((emb[:, outside] != 0).any(1).nonzero()[0])
            r = int(rows[r]) if rows is not None else r
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
