"""Non-learned reference baselines: Random and Popularity.

Random gives a lower bound; Popularity (train interaction counts) is the classic strong warm
baseline and a near-random one for cold items, which have no training interactions by design.
"""

from __future__ import annotations

from typing import Any

import torch

from graphrec.baselines.common import resolve_params, train_item_counts
from graphrec.data.dataset import RecData


class RandomScorer:
    """Uniform random scores, fixed per (seed, user) so that batching does not change them.

    Shapes:
        score: (B,) -> (B, N)
    """

    supports_cold = True

    def __init__(self, num_items: int, seed: int) -> None:
        self.num_items = num_items
        self.seed = seed

    def state(self) -> dict[str, Any]:
        return {"num_items": self.num_items, "seed": self.seed}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "RandomScorer":
        return cls(state["num_items"], state["seed"])

    @torch.no_grad()
    def score(self, users: torch.Tensor) -> torch.Tensor:
        out = torch.empty(len(users), self.num_items)
        for row, u in enumerate(users.tolist()):
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(u))
            out[row] = torch.rand(self.num_items, generator=g)
        return out


class PopularityScorer:
    """Same score for every user: the item's training popularity (cold items score 0).

    Shapes:
        popularity: (N,); score: (B,) -> (B, N)
    """

    supports_cold = True

    def __init__(self, popularity: torch.Tensor) -> None:
        self.popularity = popularity.float().clone()

    def state(self) -> dict[str, Any]:
        return {"popularity": self.popularity}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "PopularityScorer":
        return cls(state["popularity"])

    @torch.no_grad()
    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self.popularity.unsqueeze(0).expand(len(users), -1).clone()


def fit_random(data: RecData, params: dict[str, Any] | None = None, seed: int = 0,
               validate=None, progress: bool = True, teacher=None) -> RandomScorer:
    """Random baseline (no parameters)."""
    resolve_params("random", {}, params)
    return RandomScorer(data.num_items, seed)


def fit_popularity(data: RecData, params: dict[str, Any] | None = None, seed: int = 0,
                   validate=None, progress: bool = True, teacher=None) -> PopularityScorer:
    """Most-popular baseline: items ranked by their number of training interactions.

    A tiny seeded jitter (below 1e-3, counts are integers) breaks ties among equally popular
    items (all cold items have count 0) at random instead of by catalogue order.
    """
    resolve_params("popularity", {}, params)
    jitter = torch.rand(data.num_items, generator=torch.Generator().manual_seed(seed)) * 1e-3
    return PopularityScorer(train_item_counts(data) + jitter)
