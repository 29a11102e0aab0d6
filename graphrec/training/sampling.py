"""Negative sampling from the train graph only."""

from __future__ import annotations

import torch


class NegativeSampler:
    """Uniform negatives among warm (train) items, excluding each user's train positives.

    Collisions with a train positive are resampled (up to ``max_tries`` rounds); any left after
    that are counted in :attr:`num_unresolved` (never silently kept without a count).

    Args:
        train: (2, E) train edges [user, item].
        num_items: catalogue size.
        max_tries: resampling rounds.

    Shapes:
        sample: users (B,), n -> (B, n) item indices
    """

    def __init__(self, train: torch.Tensor, num_items: int, max_tries: int = 10) -> None:
        self.num_items = num_items
        self.keys = torch.unique(train[0] * num_items + train[1])  # sorted (E,)
        self.candidates = torch.unique(train[1])  # warm items
        self.max_tries = max_tries
        self.num_unresolved = 0

    def _is_pos(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        q = users * self.num_items + items
        pos = torch.searchsorted(self.keys, q).clamp_max(len(self.keys) - 1)
        return self.keys[pos] == q

    def sample(self, users: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        u = users.unsqueeze(1).expand(-1, n)
        neg = self.candidates[torch.randint(len(self.candidates), u.shape, generator=generator)]
        for _ in range(self.max_tries):
            bad = self._is_pos(u, neg)
            if not bad.any():
                break
            neg[bad] = self.candidates[torch.randint(len(self.candidates), (int(bad.sum()),), generator=generator)]
        else:
            self.num_unresolved += int(self._is_pos(u, neg).sum())
        return neg
