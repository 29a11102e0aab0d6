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
        dense_limit: use a dense (users x items) bitmap for membership when it has at most this
            many cells; otherwise a binary search over sorted edge keys.

    Shapes:
        sample: users (B,), n -> (B, n) item indices
    """

    def __init__(self, train: torch.Tensor, num_items: int, max_tries: int = 10, dense_limit: int = 200_000_000) -> None:
        self.num_items = num_items
        self.keys = torch.unique(train[0] * num_items + train[1])  # sorted (E,)
        self.candidates = torch.unique(train[1])  # warm items
        self.max_tries = max_tries
        self.num_unresolved = 0
        self.num_users = int(train[0].max()) + 1 if train.numel() else 0
        self.dense = None
        if self.num_users * num_items <= dense_limit:  # a (U, I) bitmap: one gather per lookup
            self.dense = torch.zeros(self.num_users, num_items, dtype=torch.bool)
            self.dense[train[0], train[1]] = True

    def _is_pos(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        if self.dense is not None:
            if users.dim() == 2 and items.dim() == 2 and users.shape[1] == 1 and items.shape[0] == 1:
                return self.dense[users[:, 0]][:, items[0]]
            users, items = torch.broadcast_tensors(users, items)
            return self.dense[users, items]
        q = users * self.num_items + items
        pos = torch.searchsorted(self.keys, q).clamp_max(len(self.keys) - 1)
        return self.keys[pos] == q

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
