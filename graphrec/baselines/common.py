"""Shared pieces of the baselines: parameters, content features, BPR sampling, scorers, fitting.

A baseline keeps only its model, its batch loss and its scorer; :func:`fit_scorer` runs them
through the one training loop (:func:`graphrec.training.loop.fit`) with validation and early
stopping. Validation comes in as a *validator* (``validator(scorer, settings) -> {"<setting>/
<metric>": value}``, :func:`graphrec.evaluation.protocol.make_validator`): baselines never
import the evaluation layer.

Leakage rules (docs/DESIGN.md): everything here that is fitted or sampled reads only
``data.train``: the feature mean, item popularity, negative samples, the "warm" item set.
Validation edges are read only through the validator, for model selection.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from graphrec.data.dataset import RecData
from graphrec.data.edges import PairSet
from graphrec.training.loop import EarlyStopping, MemoryCheckpointer, fit

METRIC = "ndcg@20"

#: Training settings every trainable baseline shares (its DEFAULTS add or override entries):
#: Adam, early stopping on its validation setting with patience 5 under a cap that does not bind.
TRAINING_DEFAULTS: dict[str, Any] = {"lr": 1e-3, "weight_decay": 1e-5, "batch_size": 4096, "epochs": 200,
                                     "eval_every": 1, "patience": 5}
#: ``validator(scorer, settings) -> {"<setting>/<metric>": value}`` on the validation files.
Validator = Callable[[Any, Sequence[str]], dict[str, float]]


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
        self.pairs = PairSet(data.train, data.num_users, data.num_items)

    def is_positive(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        return self.pairs.contains(u, i)

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

    def state(self) -> dict[str, Any]:
        return {"user_emb": self.user_emb, "item_emb": self.item_emb, "valid_items": self.valid_items,
                "supports_cold": self.supports_cold}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "EmbeddingScorer":
        return cls(state["user_emb"], state["item_emb"], state["valid_items"], state["supports_cold"])

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

    def state(self) -> dict[str, Any]:
        return {"warm_user": self.warm.user_emb, "warm_item": self.warm.item_emb, "cold_user": self.cold.user_emb,
                "cold_item": self.cold.item_emb, "use_warm": self.use_warm}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "SplitScorer":
        return cls(state["warm_user"], state["warm_item"], state["cold_user"], state["cold_item"], state["use_warm"])

    @torch.no_grad()
    def score(self, users: torch.Tensor) -> torch.Tensor:
        return torch.where(self.use_warm.unsqueeze(0), self.warm.score(users), self.cold.score(users))


# --------------------------------------------------------------------------- fitting
def fit_scorer(task: torch.nn.Module, batches: Callable[[int], Any], optimizer: torch.optim.Optimizer,
               snapshot: Callable[[], Any], validate: Validator, setting: str, p: dict[str, Any],
               progress: bool = True, desc: str = "") -> Any:
    """Train a baseline with the generic loop; return its best-on-validation scorer.

    Args:
        task: ``task(*batch)`` -> scalar loss (a module holding the baseline's parameters).
        batches: ``batches(epoch)`` -> the epoch's batches.
        snapshot: returns a detached scorer of the current model.
        validate: the validator; ``setting`` (``"cold"`` or ``"warm"``) NDCG@20 selects.
        p: the baseline's parameters (``epochs``, ``eval_every``, ``patience``).

    Returns:
        the best scorer, with ``history``: ``loss`` per epoch, ``val`` ``(epoch, value)`` pairs,
        ``best_epoch``, ``epochs_run``, ``epoch_cap``, ``best_val``, ``seconds`` (epochs 1-based).
    """
    key = f"{setting}/{METRIC}"
    last: dict[str, Any] = {}

    def val() -> dict[str, float]:
        last["scorer"] = snapshot()
        return validate(last["scorer"], (setting,))

    keep = MemoryCheckpointer(lambda: last["scorer"])
    stop = EarlyStopping(key, p["patience"])
    state = fit(task, batches, optimizer, epochs=p["epochs"], validate=val, early_stopping=stop,
                eval_every=p["eval_every"], checkpointer=keep, progress=progress, desc=desc)
    best = keep.value if keep.value is not None else snapshot()
    best.history = {"loss": [h["loss"] for h in state.history], "best_epoch": stop.best_epoch + 1,
                    "val": [(h["epoch"] + 1, h[f"val/{key}"]) for h in state.history if f"val/{key}" in h],
                    "epochs_run": state.epochs_run, "epoch_cap": p["epochs"], "best_val": stop.best,
                    "seconds": state.seconds}
    return best


class BatchLoss(torch.nn.Module):
    """A baseline's batch loss as a task module: ``forward(*batch) = loss_fn(*batch)``.

    Holds the trained modules so that ``train()`` / ``eval()`` reach them.
    """

    def __init__(self, loss_fn: Callable[..., torch.Tensor], *modules: torch.nn.Module) -> None:
        super().__init__()
        self.parts = torch.nn.ModuleList(modules)
        self.loss_fn = loss_fn

    def forward(self, *batch: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(*batch)
