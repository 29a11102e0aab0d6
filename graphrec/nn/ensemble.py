"""A seed ensemble of trained GraphRec models: the mean of their cosine scores.

Models trained with different seeds disagree most where the data are thin (cold items, light
users); averaging their scores removes part of that variance. The evaluation suite trains
several seeds anyway, so the ensemble costs no extra training (``suite.ensemble``).

Serving stays one inner product: with member serving spaces ``(u_k, i_k)`` (see
:meth:`GraphRec.serving_embeddings`), users become ``[u_1, ..., u_M] / M`` and items
``[i_1, ..., i_M]``, so ``user . item = mean_k u_k . i_k`` = :meth:`score`. New items are
embedded by every member (:meth:`embed_items` returns vectors in that joint space). The
run's manifest of members is written and read by :mod:`graphrec.training.manifest`.
"""

from __future__ import annotations

from typing import Sequence

import torch

from graphrec.nn.model import Features, GraphRec


class GraphRecEnsemble:
    """Mean-of-scores ensemble of :class:`GraphRec` members trained on the same data.

    Args:
        members: trained models over the same users, items and modalities.

    Shapes:
        score: users (B,) -> (B, num_items)
        serving_embeddings: -> users (U, M * 2d), items (I, M * 2d)
        embed_items: {name: (x (N, D_m), mask (N,))} -> (N, M * 2d)
    """

    supports_cold = True

    def __init__(self, members: Sequence[GraphRec]) -> None:
        if not members:
            raise ValueError("GraphRecEnsemble: need at least one member")
        first = members[0]
        for k, m in enumerate(members[1:], 1):
            if (m.num_users, m.num_items) != (first.num_users, first.num_items) or m.modalities != first.modalities:
                raise ValueError(f"GraphRecEnsemble: member {k} has {m.num_users} users / {m.num_items} items / "
                                 f"modalities {m.modalities}, member 0 has {first.num_users} / {first.num_items} / "
                                 f"{first.modalities}")
            if getattr(m, "item_ids", None) is not None and list(m.item_ids) != list(first.item_ids):
                raise ValueError(f"GraphRecEnsemble: member {k} was trained on another item list")
        self.members = list(members)
        self.num_users, self.num_items, self.modalities = first.num_users, first.num_items, list(first.modalities)
        for attr in ("user_ids", "item_ids", "fingerprints", "model_config"):
            if hasattr(first, attr):
                setattr(self, attr, getattr(first, attr))

    def eval(self) -> "GraphRecEnsemble":
        for m in self.members:
            m.eval()
        return self

    @torch.no_grad()
    def score(self, users: torch.Tensor) -> torch.Tensor:
        """Mean of the members' cosine scores. Shapes: (B,) -> (B, num_items)."""
        return sum(m.score(users) for m in self.members) / len(self.members)

    @torch.no_grad()
    def serving_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Joint inner-product space reproducing :meth:`score` (see the module docstring)."""
        parts = [m.serving_embeddings() for m in self.members]
        users = torch.cat([u for u, _ in parts], 1) / len(parts)
        return users, torch.cat([i for _, i in parts], 1)

    @torch.no_grad()
    def embed_items(self, features: Features) -> torch.Tensor:
        """Brand-new items in the joint serving space: each member's cold vector, zero warm part."""
        out = []
        for m in self.members:
            e = m.embed_items(features)  # (N, d) cold part
            out += [e, torch.zeros_like(e)]
        return torch.cat(out, 1)
