"""Tiny synthetic :class:`RecData` for unit tests (shared by every test module).

The data have a planted structure, so a content-based scorer can beat random: every user and
item has a latent vector; a user interacts with the items whose latent is most similar to
theirs (plus noise). Item features ``"text"`` and ``"image"`` are noisy linear views of the
item latent; a few rows of each are masked as missing (zero rows, mask False).

The cold split is a random item-level assignment (not :mod:`graphrec.data.split`, which this
helper must not depend on): ``cold_val_frac`` / ``cold_test_frac`` of the interacted items are
cold-validation / cold-test items, ``n_no_interaction`` items never get an interaction, and the
remaining warm interactions are split per edge into train / val_warm / test_warm.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from graphrec.data.dataset import RecData
from graphrec.data.features import ItemFeatures


def make_synthetic(
    num_users: int = 30,
    num_items: int = 40,
    dim: int = 8,
    seed: int = 0,
    per_user: int = 8,
    cold_val_frac: float = 0.15,
    cold_test_frac: float = 0.2,
    n_no_interaction: int = 2,
    warm_val_frac: float = 0.1,
    warm_test_frac: float = 0.15,
    missing_frac: float = 0.1,
) -> RecData:
    """A small random cold-start split with fake ``text`` and ``image`` features.

    Args:
        num_users: number of users (ids ``"u0".."u{n-1}"``).
        num_items: catalogue size (ids ``"i0".."i{n-1}"``).
        dim: feature dimension of both fake modalities.
        seed: RNG seed; the same seed gives identical data.
        per_user: interactions per user (before the split).
        cold_val_frac / cold_test_frac: share of interacted items that are cold-val / cold-test.
        n_no_interaction: items with no interaction at all (still in the catalogue).
        warm_val_frac / warm_test_frac: share of warm edges put in val_warm / test_warm.
        missing_frac: share of items whose text (resp. image) is missing.

    Returns:
        A :class:`RecData` with ids as strings and features ``{"text", "image"}``.
    """
    rng = np.random.default_rng(seed)
    latent = 4
    zu = rng.normal(size=(num_users, latent))
    zi = rng.normal(size=(num_items, latent))
    user_ids = [f"u{i}" for i in range(num_users)]
    item_ids = [f"i{i}" for i in range(num_items)]

    perm = rng.permutation(num_items)
    no_inter = perm[:n_no_interaction]
    rest = perm[n_no_interaction:]
    n_cv = max(1, int(round(cold_val_frac * len(rest))))
    n_ct = max(1, int(round(cold_test_frac * len(rest))))
    cold_val, cold_test, warm = rest[:n_cv], rest[n_cv:n_cv + n_ct], rest[n_cv + n_ct:]
    interacted = np.concatenate([cold_val, cold_test, warm])

    rows = []
    for u in range(num_users):
        logits = zi[interacted] @ zu[u] + rng.gumbel(size=len(interacted))
        chosen = interacted[np.argsort(-logits)[: min(per_user, len(interacted))]]
        rows += [(u, int(i)) for i in chosen]
    # make sure every interacted item has at least one interaction
    seen = {i for _, i in rows}
    for i in interacted:
        if int(i) not in seen:
            rows.append((int(rng.integers(num_users)), int(i)))
    edges = pd.DataFrame(rows, columns=["u", "i"]).drop_duplicates()

    kind = np.full(num_items, "none", dtype=object)
    kind[cold_val], kind[cold_test], kind[warm] = "val_cold", "test_cold", "warm"
    r = rng.random(len(edges))
    warm_split = np.where(r < warm_val_frac, "val_warm", np.where(r < warm_val_frac + warm_test_frac, "test_warm", "train"))
    split = np.where(kind[edges["i"].to_numpy()] == "warm", warm_split, kind[edges["i"].to_numpy()])
    # every warm item needs >= 1 train edge to be warm in the train sense
    for i in warm:
        sel = (edges["i"].to_numpy() == i)
        if not (split[sel] == "train").any():
            split[np.flatnonzero(sel)[0]] = "train"

    splits = {}
    for name in ("train", "val_warm", "test_warm", "val_cold", "test_cold"):
        sub = edges[split == name]
        splits[name] = pd.DataFrame({"user_id": [user_ids[u] for u in sub["u"]], "item_id": [item_ids[i] for i in sub["i"]]})

    items = pd.DataFrame({
        "item_id": item_ids,
        "title": [f"Item {i}" for i in range(num_items)],
        "text": [f"text of item {i}" for i in range(num_items)],
        "image_path": ["" for _ in range(num_items)],
        "genres": ["" for _ in range(num_items)],
    })
    feats = {}
    for name in ("text", "image"):
        proj = rng.normal(size=(latent, dim))
        x = zi @ proj + 0.3 * rng.normal(size=(num_items, dim))
        mask = rng.random(num_items) >= missing_frac
        x[~mask] = 0.0
        feats[name] = ItemFeatures(name, list(item_ids), torch.tensor(x, dtype=torch.float32), torch.tensor(mask),
                                   fingerprint=f"synthetic-{name}-seed{seed}")
    return RecData.from_frames(splits, items, feats)


class FixedScorer:
    """A scorer that returns rows of a fixed ``(num_users, num_items)`` score matrix."""

    def __init__(self, scores: torch.Tensor, supports_cold: bool = True) -> None:
        self.scores = scores
        self.supports_cold = supports_cold

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self.scores[users]


class DotScorer:
    """Deterministic fake model: dot product of fixed user and item embeddings."""

    def __init__(self, user_emb: torch.Tensor, item_emb: torch.Tensor, supports_cold: bool = True) -> None:
        self.user_emb, self.item_emb, self.supports_cold = user_emb, item_emb, supports_cold

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self.user_emb[users] @ self.item_emb.T


def train(data: RecData, model_cfg, train_cfg, out_dir, val_fn=None, refine: bool = True, resume: bool = False):
    """Train GraphRec as the train stage does (stage 1 + warm refinement), for tests.

    ``val_fn(model, data) -> {"<setting>/<metric>": value}`` replaces the real validator (e.g. a
    scripted one); by default the validation files are evaluated.
    """
    from graphrec.evaluation.protocol import make_validator
    from graphrec.recipes.graphrec import train_graphrec
    from graphrec.recipes.refine import refine_checkpoint
    from graphrec.training.checkpoint import load_checkpoint

    real = make_validator(data)
    validator = real if val_fn is None else (lambda m, settings: val_fn(m, data))
    model, history = train_graphrec(data, model_cfg, train_cfg, out_dir, validator, progress=False, resume=resume)
    if refine:
        from pathlib import Path

        from graphrec.recipes.calibrate import calibrate_checkpoint

        from graphrec.recipes.backbone import backbone_checkpoint

        changed = refine_checkpoint(out_dir, data, real)
        changed = backbone_checkpoint(out_dir, data, real) or changed
        if calibrate_checkpoint(out_dir, data, real) or changed:
            model = load_checkpoint(Path(out_dir) / "checkpoint.pt")
    return model, history


def assert_serving_reproduces(scorer, data: RecData, scores: torch.Tensor, modalities) -> None:
    """``scorer``'s serving space (a GraphRec or an ensemble) gives ``scores``, and the cold-test items
    embedded as brand-new items equal their catalogue rows."""
    from graphrec.recipes.graphrec import model_features

    u, i = scorer.serving_embeddings()
    torch.testing.assert_close(u @ i.T, scores, rtol=1e-5, atol=1e-5)
    cold = data.cold_test_items
    feats = model_features(data, modalities)
    new = scorer.serving_items({k: (x[cold], mask[cold]) for k, (x, mask) in feats.items()})
    torch.testing.assert_close(new, i[cold], rtol=1e-5, atol=1e-5)  # a new item = its cold catalogue self
    _assert_blocked_index_is_exact(scorer, u, i, new)


def _assert_blocked_index_is_exact(scorer, u, i, new) -> None:
    """The serving index in warm / cold column blocks accepts the catalogue and new items (no value
    outside a block's columns) and ranks as one index over the full space."""
    from graphrec.serve.blocks import make_index
    from graphrec.serve.index import ItemIndex

    ids = [str(j) for j in range(i.shape[0])]
    blk, full = make_index(scorer, ids, i), ItemIndex(ids, i)
    assert type(blk).__name__ == "BlockedIndex"
    assert blk.parts["warm"].width < i.shape[1] and blk.parts["cold"].width < i.shape[1]
    new_ids = [f"new{j}" for j in range(new.shape[0])]
    blk.add(new_ids, new)
    full.add(new_ids, new)
    k = min(10, len(full))
    s1, _ = full.search(u, k, [[0, 1]] * u.shape[0])
    s2, _ = blk.search(u, k, [[0, 1]] * u.shape[0])
    torch.testing.assert_close(s2, s1, rtol=1e-5, atol=1e-5)  # the same top-k scores (ties may swap positions)
