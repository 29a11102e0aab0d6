"""Shared pieces of the baselines: parameters, content features, BPR sampling, scorers, early stopping.

Leakage rules (docs/DESIGN.md): everything here that is fitted or sampled reads only
``data.train``: the feature mean, item popularity, negative samples, the "warm" item set.
Validation edges are read only through :func:`validation_score` for model selection.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

from graphrec.data.dataset import RecData

METRIC = "ndcg@20"


# --------------------------------------------------------------------------- parameters
def resolve_params(name: str, defaults: dict[str, Any], params: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults overridden by ``params``; an unknown key is an error naming the baseline and key."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise KeyError(f"baseline {name!r}: unknown parameter {unknown[0]!r}; valid: {sorted(defaults)}")
    return {**defaults, **params}


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``; also seeds torch's global RNG (layer init)."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- data helpers
def train_item_mask(data: RecData) -> torch.Tensor:
    """Bool (N,) mask of items with at least one training interaction."""
    m = torch.zeros(data.num_items, dtype=torch.bool)
    m[data.train[1]] = True
    return m


def train_item_counts(data: RecData) -> torch.Tensor:
    """Float (N,) training interaction count per item (the popularity statistic)."""
    return torch.bincount(data.train[1], minlength=data.num_items).float()


def content_features(data: RecData, names: list[str] | None = None,
                     weights: dict[str, float] | None = None) -> torch.Tensor:
    """Per-modality mean-centred, L2-normalised item features, concatenated.

    The mean of each modality is fitted on training items that have the modality (never on
    cold items). Items without a modality get a zero block. Block ``m`` is scaled by
    ``sqrt(weights[m])`` so that dot products of two rows mix the per-modality cosines with
    weights ``weights[m]`` (default: equal weights summing to 1).

    Shapes:
        returns (N, sum D_m)
    """
    names = sorted(data.features) if names is None else list(names)
    if not names:
        raise ValueError("content baselines need item features; RecData.features is empty")
    for n in names:
        if n not in data.features:
            raise KeyError(f"no item features named {n!r}; available: {sorted(data.features)}")
    if weights is None:
        weights = {n: 1.0 / len(names) for n in names}
    train = train_item_mask(data)
    blocks = []
    for n in names:
        f = data.features[n]
        fit = train & f.mask
        if not fit.any():
            raise ValueError(f"features {n!r}: no training item has this modality; cannot fit the mean")
        x = f.x - f.x[fit].mean(0, keepdim=True)  # (N, D) centred on train items only
        x = torch.nn.functional.normalize(x, dim=1) * f.mask.unsqueeze(1).float()
        blocks.append(x * float(weights.get(n, 0.0)) ** 0.5)
    return torch.cat(blocks, 1)


class BPRSampler:
    """Shuffled training edges with one uniform negative each, from training items only.

    A negative never is one of the user's training positives (resampled until it is not).

    Args:
        data: the split; only ``data.train`` is read.
        gen: the random generator (determinism under a seed).
    """

    def __init__(self, data: RecData, gen: torch.Generator) -> None:
        self.gen = gen
        self.users, self.items = data.train[0], data.train[1]
        self.num_items = data.num_items
        self.pool = torch.nonzero(train_item_mask(data)).flatten()  # (P,) items negatives come from
        self.keys = torch.unique(self.users * self.num_items + self.items)  # sorted (E,)

    def is_positive(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        k = u * self.num_items + i
        pos = torch.searchsorted(self.keys, k).clamp(max=len(self.keys) - 1)
        return self.keys[pos] == k

    def negatives(self, u: torch.Tensor) -> torch.Tensor:
        """One negative per entry of ``u`` (B,) -> (B,)."""
        neg = self.pool[torch.randint(len(self.pool), u.shape, generator=self.gen)]
        bad = self.is_positive(u, neg)
        for _ in range(100):
            if not bad.any():
                break
            neg[bad] = self.pool[torch.randint(len(self.pool), (int(bad.sum()),), generator=self.gen)]
            bad = self.is_positive(u, neg)
        return neg

    def epoch(self, batch_size: int):
        """Yield ``(users, positives, negatives)`` batches covering every training edge once."""
        perm = torch.randperm(len(self.users), generator=self.gen)
        for start in range(0, len(perm), batch_size):
            idx = perm[start:start + batch_size]
            u = self.users[idx]
            yield u, self.items[idx], self.negatives(u)


def per_unique(fn: Callable[[torch.Tensor], torch.Tensor], idx: torch.Tensor) -> torch.Tensor:
    """``fn(idx)`` computed once per distinct index and gathered back (items repeat within a batch).

    Shapes:
        idx: (B,) -> (B, d)
    """
    uniq, inv = torch.unique(idx, return_inverse=True)
    return fn(uniq)[inv]


class num_threads:
    """Context manager setting ``torch.set_num_threads(n)`` (``n <= 0``: leave it unchanged).

    On a small, shared CPU, one thread avoids OpenMP contention that makes the many small
    ops of these baselines 10-100x slower.
    """

    def __init__(self, n: int) -> None:
        self.n, self.prev = n, torch.get_num_threads()

    def __enter__(self) -> "num_threads":
        if self.n > 0:
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc: Any) -> None:
        torch.set_num_threads(self.prev)


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """BPR loss (Rendle et al. 2009): mean of -log sigmoid(pos - neg). Shapes: (B,), (B,) -> ()."""
    return torch.nn.functional.softplus(neg - pos).mean()


# --------------------------------------------------------------------------- scorers
class EmbeddingScorer:
    """Dot-product scorer over fixed user and item embeddings.

    Args:
        user_emb: user vectors.
        item_emb: item vectors.
        valid_items: optional bool mask; items outside it get a score below every valid item
            of the row (used by models that cannot score cold items).
        supports_cold: whether cold items get meaningful scores.

    Shapes:
        user_emb: (U, d); item_emb: (N, d); valid_items: (N,); score: (B,) -> (B, N)
    """

    def __init__(self, user_emb: torch.Tensor, item_emb: torch.Tensor,
                 valid_items: torch.Tensor | None = None, supports_cold: bool = True) -> None:
        self.user_emb = user_emb.detach().float().clone()
        self.item_emb = item_emb.detach().float().clone()
        self.valid_items = valid_items
        self.supports_cold = supports_cold

    @torch.no_grad()
    def score(self, users: torch.Tensor) -> torch.Tensor:
        s = self.user_emb[users] @ self.item_emb.T  # (B, N)
        if self.valid_items is not None and not bool(self.valid_items.all()):
            low = s[:, self.valid_items].min(1, keepdim=True).values - 1.0
            s = torch.where(self.valid_items.unsqueeze(0), s, low)
        return s


class SplitScorer:
    """Two embedding spaces: warm items scored by one, the other items by the other (ALDI-style).

    Shapes:
        warm_user/cold_user: (U, d); warm_item/cold_item: (N, d); use_warm: (N,) bool
    """

    supports_cold = True

    def __init__(self, warm_user: torch.Tensor, warm_item: torch.Tensor, cold_user: torch.Tensor,
                 cold_item: torch.Tensor, use_warm: torch.Tensor) -> None:
        self.warm = EmbeddingScorer(warm_user, warm_item)
        self.cold = EmbeddingScorer(cold_user, cold_item)
        self.use_warm = use_warm.clone()

    @torch.no_grad()
    def score(self, users: torch.Tensor) -> torch.Tensor:
        return torch.where(self.use_warm.unsqueeze(0), self.warm.score(users), self.cold.score(users))


# --------------------------------------------------------------------------- validation
def validation_score(scorer: Any, data: RecData, setting: str = "cold", metric: str = METRIC) -> float:
    """Validation metric of ``scorer`` (``graphrec.evaluation.protocol.validation_score``, phase "val")."""
    from graphrec.evaluation.protocol import validation_score as real

    return float(real(scorer, data, setting=setting, metric=metric))


def fit_with_early_stopping(
    train_epoch: Callable[[int], float],
    snapshot: Callable[[], Any],
    data: RecData,
    setting: str,
    epochs: int,
    eval_every: int = 1,
    patience: int = 3,
    progress: bool = True,
    desc: str = "",
) -> tuple[Any, dict[str, Any]]:
    """Generic loop: train epochs, score a snapshot on validation, keep the best, stop on patience.

    Args:
        train_epoch: runs one epoch, returns its mean loss.
        snapshot: returns a detached scorer of the current model.
        setting: validation setting used for selection (``"cold"`` or ``"warm"``).
        patience: evaluations without improvement before stopping.

    Returns:
        (best scorer, history dict with ``loss``, ``val``, ``best_epoch``, ``epochs_run``, ``seconds``).
    """
    from tqdm.auto import tqdm

    hist: dict[str, Any] = {"loss": [], "val": [], "best_epoch": 0, "epochs_run": 0}
    t0 = time.time()
    best, best_val, bad = None, float("-inf"), 0
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, leave=False)
    for ep in bar:
        hist["loss"].append(float(train_epoch(ep)))
        hist["epochs_run"] = ep
        if ep % eval_every == 0 or ep == epochs:
            sc = snapshot()
            val = validation_score(sc, data, setting, METRIC)
            hist["val"].append((ep, val))
            bar.set_postfix(loss=f"{hist['loss'][-1]:.4f}", val=f"{val:.4f}")
            if val > best_val:
                best, best_val, bad, hist["best_epoch"] = sc, val, 0, ep
            else:
                bad += 1
                if bad >= patience:
                    break
    if best is None:  # epochs == 0
        best = snapshot()
        best_val = validation_score(best, data, setting, METRIC)
    hist["best_val"] = best_val
    hist["seconds"] = time.time() - t0
    return best, hist
