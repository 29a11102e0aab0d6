"""A seed ensemble of trained GraphRec models: the mean of their cosine scores.

Models trained with different seeds disagree most where the data are thin (cold items, light
users); averaging their scores removes part of that variance. The evaluation suite trains
several seeds anyway, so the ensemble costs no extra training (``suite.ensemble``).

Serving stays one inner product: with member serving spaces ``(u_k, i_k)`` (see
:meth:`GraphRec.serving_embeddings`), users become ``[u_1, ..., u_M] / M`` and items
``[i_1, ..., i_M]``, so ``user . item = mean_k u_k . i_k`` = :meth:`score`; the members' content
score terms share one block. New items are embedded by every member (:meth:`serving_items`). The
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
        """Joint inner-product space reproducing :meth:`score` (see the module docstring).

        The members' cosine parts are concatenated (users divided by the number of members);
        their content terms share one content block (the members see the same train data and
        features), with the members' mean weights on the user side and mean prior/offset on the
        item side; each member's learned walk (trained apart) keeps its own block. Members whose
        calibrations chose different text shares have different content vectors (or, with a content
        walk weight 0 in some, different serving columns): then every member keeps its whole space (concatenated, users divided by the number of members).
        """
        parts = [m.serving_embeddings() for m in self.members]
        M = len(parts)
        own_u = [self._own(u) for u, _ in parts]
        users = torch.cat(own_u + [sum(self._shared(u) for u, _ in parts) / M], 1)
        items = torch.cat([self._own(i) for _, i in parts] + [self._mean_content([self._shared(i) for _, i in parts])], 1)
        users[:, : sum(o.shape[1] for o in own_u)] /= M
        return users, items

    def _split(self) -> tuple[int, int]:
        """Columns of a member's serving vectors: ``[:d2]`` its own (cosines, backbone), ``[d2:d2 + c]`` the
        content block all members share (``c = 0`` when their content vectors differ), ``[d2 + c:]`` its
        own again (its learned walk, when active). Shared only when the members' content vectors and
        serving columns are the same."""
        m = self.members[0]
        vec, cols = m.content_scores.item_vec, m.content_scores.serving_columns()
        same = all(torch.equal(o.content_scores.item_vec, vec) and torch.equal(o.content_scores.serving_columns(), cols)
                   for o in self.members[1:])
        return 2 * m.dim + m.backbone.dim, int(cols.sum()) + 1 if same else 0

    def _own(self, t: torch.Tensor) -> torch.Tensor:
        d2, c = self._split()
        return torch.cat([t[:, :d2], t[:, d2 + c:]], 1)

    def _shared(self, t: torch.Tensor) -> torch.Tensor:
        d2, c = self._split()
        return t[:, d2:d2 + c]

    @staticmethod
    def _mean_content(blocks: list[torch.Tensor]) -> torch.Tensor:
        """Items' content block: ``[x_i, mean_k (w_b,k prior_i + offset_k)]`` (x_i is the same for every member)."""
        out = blocks[0].clone()
        if out.shape[1] == 0:  # no shared block
            return out
        out[:, -1] = sum(b[:, -1] for b in blocks) / len(blocks)
        return out

    @torch.no_grad()
    def embed_items(self, features: Features) -> torch.Tensor:
        """Brand-new items in the joint serving space (as cold catalogue items would be)."""
        return self.serving_items(features)

    @torch.no_grad()
    def serving_items(self, features: Features) -> torch.Tensor:
        """Brand-new items in the joint serving space. Shapes: -> (N, M * 2d + D + 1)"""
        parts = [m.serving_items(features) for m in self.members]
        return torch.cat([self._own(p) for p in parts] + [self._mean_content([self._shared(p) for p in parts])], 1)
