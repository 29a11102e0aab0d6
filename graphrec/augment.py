"""View generators for self-supervised objectives: graph, user-history and item-feature views.

All functions take an explicit ``torch.Generator`` (or ``None`` = the global RNG) so a run is
reproducible under a seed, return new tensors (inputs are never modified) and keep shapes
unless the docstring says otherwise.

* :func:`edge_dropout`: drop train edges (SGL, Wu et al., SIGIR 2021, "ED" augmentation).
* :func:`history_subset` / :func:`set_view`: a random subset of each user's train history,
  pooled into a *set view* of the user (order-free; ml1m-mm has no timestamps, so this is the
  user view there; :mod:`graphrec.nn.sequence` is the ordered alternative).
* :func:`sequence_subset`: a random in-order subsequence of each time-ordered history (the
  augmentation of the *sequence view* on data with timestamps).
* :func:`modality_dropout`: zero a modality and set its mask False (missing-modality robustness;
  cf. "modality dropout", Neverova et al., ModDrop, TPAMI 2016).
* :func:`feature_noise`: Gaussian noise on present features, relative to each row's scale.

Leakage: these functions only ever see what they are given; callers pass ``RecData.train``
edges (never validation/test edges).
"""

from __future__ import annotations

import torch

Features = dict[str, tuple[torch.Tensor, torch.Tensor]]


def _rand(shape, generator: torch.Generator | None, device: torch.device, normal: bool = False,
          dtype: torch.dtype | None = None) -> torch.Tensor:
    """Uniform (or normal) draws on ``device``: from ``generator`` on its own device (then moved),
    else from the global RNG of ``device`` (on the CPU exactly ``torch.rand(shape, generator=...)``)."""
    fn = torch.randn if normal else torch.rand
    src = generator.device if generator is not None else device
    return fn(shape, generator=generator, device=src, dtype=dtype).to(device)


def _check_p(name: str, p: float) -> None:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{name}: probability must be in [0, 1), got {p}")


def edge_dropout(edge_index: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Keep each edge independently with probability ``1 - p``.

    Shapes:
        edge_index: (2, E) -> (2, E') with E' <= E (order preserved)
    """
    _check_p("edge_dropout", p)
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_dropout: edge_index must be (2, E), got {tuple(edge_index.shape)}")
    if p == 0.0:
        return edge_index.clone()
    keep = _rand((edge_index.shape[1],), generator, edge_index.device) >= p
    return edge_index[:, keep]


def history_subset(indptr: torch.Tensor, items: torch.Tensor, users: torch.Tensor, keep: float,
                   generator: torch.Generator | None = None, max_items: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A random subset of each user's history: every item kept with probability ``keep``.

    A user with a non-empty history always keeps at least one item (one is forced back in at
    random when all were dropped). ``max_items > 0`` caps the kept items per user (a random
    selection of them), bounding the cost for heavy users.

    Args:
        indptr, items: CSR of the train history (``RecData.csr("train")``).
        users: the batch of user indices.
        keep: keep probability in (0, 1].
        generator: RNG.
        max_items: cap per user (0 = none).

    Returns:
        ``(rows, items)``: ``rows[j]`` is the position in ``users`` of kept item ``items[j]``.

    Shapes:
        indptr: (U + 1,), items: (E,), users: (B,) -> rows (K,), items (K,)
    """
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"history_subset: keep must be in (0, 1], got {keep}")
    dev = users.device
    start, end = indptr[users], indptr[users + 1]
    counts = end - start  # (B,)
    rows = torch.repeat_interleave(torch.arange(users.numel(), device=dev), counts)  # (E_b,)
    offsets = torch.cumsum(counts, 0) - counts
    pos = start[rows] + torch.arange(rows.numel(), device=dev) - offsets[rows]
    hist = items[pos]  # (E_b,)
    r = _rand((rows.numel(),), generator, dev)  # one random key per history entry
    kept = r < keep
    # force one item back for users who lost everything: the one with the smallest key
    if rows.numel():
        min_key = torch.full((users.numel(),), 2.0, device=dev).scatter_reduce(0, rows, r, "amin")
        has_kept = torch.zeros(users.numel(), dtype=torch.bool, device=dev)
        has_kept[rows[kept]] = True
        lost = ~has_kept
        kept |= lost[rows] & (r == min_key[rows])
    if max_items > 0 and rows.numel():
        # rank kept entries by their key within each user; keep the max_items smallest
        key = torch.where(kept, r, torch.full_like(r, 3.0)) + rows.to(r.dtype) * 4.0
        order = torch.argsort(key)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(order.numel(), device=dev)
        first = torch.cumsum(counts, 0) - counts  # position of each user's first entry after sorting
        kept &= (rank - first[rows]) < max_items
    return rows[kept], hist[kept]


def set_view(item_emb: torch.Tensor, rows: torch.Tensor, items: torch.Tensor, num_rows: int) -> torch.Tensor:
    """Mean of the item embeddings in each row's (sub)set: an order-free user view.

    Rows with no item get zeros.

    Shapes:
        item_emb: (I, d), rows/items: (K,), -> (num_rows, d)
    """
    out = item_emb.new_zeros(num_rows, item_emb.shape[1]).index_add(0, rows, item_emb[items])  # (B, d)
    cnt = torch.bincount(rows, minlength=num_rows).clamp_min(1).to(item_emb.dtype)
    return out / cnt.unsqueeze(1)


def sequence_subset(seqs: torch.Tensor, lengths: torch.Tensor, keep: float,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A random in-order subsequence of each history (CL4SRec-style item crop/mask view).

    Every item is kept with probability ``keep``; kept items stay in time order and are packed
    to the left. A non-empty history keeps at least one item (its most recent one when all
    were dropped).

    Args:
        seqs: ``(B, L)`` item indices, oldest first, right-padded with -1
            (:func:`graphrec.nn.sequence.recent_histories`).
        lengths: ``(B,)`` valid lengths.
        keep: keep probability in (0, 1].

    Returns:
        ``(seqs', lengths')`` with the same shapes and padding convention.
    """
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"sequence_subset: keep must be in (0, 1], got {keep}")
    B, L = seqs.shape
    dev = seqs.device
    valid = torch.arange(L, device=dev).unsqueeze(0) < lengths.unsqueeze(1)  # (B, L)
    kept = valid & (_rand((B, L), generator, dev) < keep)
    lost = valid.any(1) & ~kept.any(1)
    last = (lengths - 1).clamp_min(0)
    kept[lost, last[lost]] = True
    # stable pack: kept positions first, in their original order
    order = torch.argsort((~kept).to(torch.int8), dim=1, stable=True)
    packed = torch.gather(seqs, 1, order)
    new_len = kept.sum(1)
    packed = torch.where(torch.arange(L, device=dev).unsqueeze(0) < new_len.unsqueeze(1), packed, torch.full_like(packed, -1))
    return packed, new_len


def modality_dropout(features: Features, p: float, generator: torch.Generator | None = None,
                     keep_one: bool = True, modalities: list[str] | None = None) -> tuple[Features, dict[str, torch.Tensor]]:
    """Drop each present modality of each item with probability ``p``: zero its row, mask False.

    Args:
        features: ``{name: (x (N, D), mask (N,))}``.
        p: drop probability per (item, modality).
        generator: RNG.
        keep_one: never drop the last present modality of an item (one of the dropped ones is
            restored at random), so every item that had content still has some.
        modalities: names that may be dropped (default: all).

    Returns:
        ``(new_features, dropped)`` where ``dropped[name]`` is the (N,) bool of rows dropped.

    Shapes:
        features[m]: (x (N, D_m), mask (N,)) -> same shapes
    """
    _check_p("modality_dropout", p)
    names = list(features)
    drop_names = [m for m in (modalities or names) if m in features]
    unknown = [m for m in (modalities or []) if m not in features]
    if unknown:
        raise KeyError(f"modality_dropout: unknown modalities {unknown}; have {names}")
    if not names:
        return {}, {}
    n = features[names[0]][1].shape[0]
    masks = torch.stack([features[m][1].bool() for m in names], 1)  # (N, M)
    dev = masks.device
    can = torch.tensor([m in drop_names for m in names], device=dev).unsqueeze(0) & masks  # (N, M)
    r = _rand((n, len(names)), generator, dev)
    drop = can & (r < p)
    if keep_one:
        left = masks & ~drop
        lost_all = masks.any(1) & ~left.any(1)  # (N,)
        if lost_all.any():
            # restore the dropped modality with the smallest random key
            key = torch.where(drop, r, torch.full_like(r, 2.0))
            restore = torch.zeros_like(drop)
            restore[torch.arange(n, device=dev), key.argmin(1)] = True
            drop &= ~(restore & lost_all.unsqueeze(1))
    out: Features = {}
    dropped: dict[str, torch.Tensor] = {}
    for j, m in enumerate(names):
        x, mask = features[m]
        d = drop[:, j]
        out[m] = (x.masked_fill(d.unsqueeze(1), 0.0), mask.bool() & ~d)
        dropped[m] = d
    return out, dropped


def mask_modality(features: Features, name: str, rows: torch.Tensor | None = None) -> Features:
    """Remove one modality (all rows, or the given row indices / bool mask): zeros, mask False.

    Shapes:
        features[m]: (x (N, D_m), mask (N,)) -> same shapes
    """
    if name not in features:
        raise KeyError(f"mask_modality: no modality {name!r}; have {sorted(features)}")
    x, mask = features[name]
    dev = mask.device
    sel = torch.ones(mask.shape[0], dtype=torch.bool, device=dev) if rows is None else torch.zeros(
        mask.shape[0], dtype=torch.bool, device=dev).index_fill(
        0, (rows.nonzero().flatten() if rows.dtype == torch.bool else rows.long()).to(dev), True)
    out = dict(features)
    out[name] = (x.masked_fill(sel.unsqueeze(1), 0.0), mask.bool() & ~sel)
    return out


def feature_noise(x: torch.Tensor, mask: torch.Tensor, std: float, generator: torch.Generator | None = None,
                  relative: bool = True) -> torch.Tensor:
    """Gaussian noise on the present rows of a feature matrix (absent rows stay zero).

    Args:
        x: features.
        mask: rows that exist.
        std: noise standard deviation; with ``relative`` it is a fraction of each row's RMS
            (so ``std=0.1`` is 10% noise whatever the feature scale).
        generator: RNG.
        relative: scale the noise per row.

    Shapes:
        x: (N, D), mask: (N,) -> (N, D)
    """
    if std < 0:
        raise ValueError(f"feature_noise: std must be >= 0, got {std}")
    if std == 0:
        return x.clone()
    noise = _rand(x.shape, generator, x.device, normal=True, dtype=x.dtype) * std
    if relative:
        noise = noise * x.pow(2).mean(1, keepdim=True).sqrt()
    return x + noise * mask.to(x.dtype).unsqueeze(1)


def perturb_features(features: Features, std: float, generator: torch.Generator | None = None,
                     relative: bool = True) -> Features:
    """:func:`feature_noise` on every modality. Shapes: as ``features``."""
    return {m: (feature_noise(x, mask, std, generator, relative), mask) for m, (x, mask) in features.items()}


def with_modality_removed(data, modality: str, items: torch.Tensor | None = None):
    """A copy of a :class:`~graphrec.data.dataset.RecData` with one modality removed for some items.

    Used by the missing-modality evaluation: cold items scored with the image removed, with
    the text removed, or with both present (the unmodified data). Only the features change
    (zero rows, mask False); edges, ids and the other modalities are shared with ``data``.

    Args:
        data: the split.
        modality: feature set to remove (a key of ``data.features``).
        items: item indices to remove it from (default: every cold-validation and cold-test
            item, so warm items and the model's train-fitted statistics are untouched).

    Returns:
        A new RecData; ``features[modality].meta["removed_items"]`` counts the rows removed
        that had the modality.
    """
    import dataclasses

    from graphrec.data.features import ItemFeatures

    if modality not in data.features:
        raise KeyError(f"with_modality_removed: no feature set {modality!r}; loaded: {sorted(data.features)}")
    if items is None:
        items = torch.unique(torch.cat([data.cold_val_items.long(), data.cold_test_items.long()]))
    f = data.features[modality]
    sel = torch.zeros(data.num_items, dtype=torch.bool)
    sel[items.long()] = True
    meta = {**f.meta, "removed_items": int((sel & f.mask).sum())}
    masked = ItemFeatures(f.name, f.item_ids, f.x.masked_fill(sel.unsqueeze(1), 0.0), f.mask & ~sel,
                          f.fingerprint + f"|removed:{int(sel.sum())}", meta)
    return dataclasses.replace(data, features={**data.features, modality: masked})
