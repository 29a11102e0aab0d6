"""Negative sampling from the train graph only."""

from __future__ import annotations

import torch

from graphrec.data.edges import PairSet


class NegativeSampler:
    """Uniform negatives among warm (train) items, excluding each user's train positives.

    Collisions with a train positive are resampled (up to ``max_tries`` rounds); any left after
    that are counted in :attr:`num_unresolved` (never silently kept without a count).

    Args:
        train: (2, E) train edges [user, item].
        num_items: catalogue size.
        max_tries: resampling rounds.
        dense_limit: use a dense (users x items) bitmap for membership when it has at most this
            many cells; otherwise a binary search over sorted edge keys.

    Shapes:
        sample: users (B,), n -> (B, n) item indices
    """

    def __init__(self, train: torch.Tensor, num_items: int, max_tries: int = 10, dense_limit: int = 200_000_000) -> None:
        self.num_items = num_items
        self.candidates = torch.unique(train[1])  # warm items
        self.max_tries = max_tries
        self.num_unresolved = 0
        self.num_users = int(train[0].max()) + 1 if train.numel() else 0
        self.pairs = PairSet(train, self.num_users, num_items, dense_limit)

    def _is_pos(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.pairs.contains(users, items)

    def is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """True where ``(user, item)`` is a train edge. Shapes: broadcastable (..) -> (..) bool."""
        return self._is_pos(users, items)

    def sample_shared(self, users: torch.Tensor, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` negatives shared by the whole batch plus a validity mask.

        One set of negatives per batch turns scoring into one matmul (B x d x n) instead of a
        (B, n, d) gather; pairs that are a train positive of the user are marked invalid and
        must be ignored by the loss (never counted as negatives).

        Shapes:
            users (B,) -> (neg (n,), valid (B, n) bool)
        """
        neg = self.candidates[torch.randint(len(self.candidates), (n,), generator=generator)]
        valid = ~self._is_pos(users.unsqueeze(1), neg.unsqueeze(0))
        return neg, valid

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
