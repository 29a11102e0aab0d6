"""The inner-product serving space of a :class:`~graphrec.nn.model.GraphRec`: user and item vectors
whose dot products reproduce ``GraphRec.score`` exactly (warm and cold items in one index), and
new items embedded into it exactly as they would score as cold catalogue items."""

from __future__ import annotations

import torch

from graphrec.nn.content_vectors import walk_vectors


@torch.no_grad()
def serving_embeddings(model) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings for plain inner-product search that reproduce ``model.score`` exactly.

    Users become ``[u, w_g * u_warm, b_u, w_p * profile_u, 1]``; cold items ``[cold view, 0,
    w_t * transfer_i, x_i, w_b * prior_i + offset]`` and warm items ``[0, v_i, b_i, 0, 0]``, so
    one dot product gives each item the score of its own space. With an active learned walk,
    users add ``w_l * [walk user side, 1]``, cold items ``[walk item side, walk bias]`` and warm
    items zeros (k + 1 more columns). Content columns no user reads (a modality with share 0, the
    content walk at weight 0) are left out: ``D'`` of the ``D`` (``ContentScores.serving_columns``).
    New items: :func:`serving_items`.

    Shapes: ``(U, 2d + d_b + D' + 1 [+ k + 1]), (I, ...)``
    """
    u, i = model.embeddings()
    warm = model.warm.unsqueeze(-1)
    zero = torch.zeros_like(i)
    cs, bb = model.content_scores, model.backbone
    g = bb.warm_gnn_weight if bb.ready else torch.ones(())
    users = torch.cat([u, g * model.warm_user_vectors(torch.arange(model.num_users, device=u.device)), bb.user,
                       cs.serving_users()], 1)
    content = cs.serving_items(cs.item_vec, cs.prior)
    transfer = bb.transfer_weight * bb.transfer_items() if bb.ready else torch.zeros_like(bb.item)
    items = torch.cat([torch.where(warm, zero, i), torch.where(warm, i, zero),
                       torch.where(warm, bb.item if bb.ready else torch.zeros_like(bb.item), transfer),
                       torch.where(warm, torch.zeros_like(content), content)], 1)
    if _walk_on(model):
        lw = model.walk.serving_items(model.walk.item_vec)
        users = torch.cat([users, model.walk.serving_users()], 1)
        items = torch.cat([items, torch.where(warm, torch.zeros_like(lw), lw)], 1)
    return users, items


def _walk_on(model) -> bool:
    return model.walk is not None and model.walk.active


@torch.no_grad()
def serving_items(model, features: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Brand-new items in the space of :func:`serving_embeddings` (exactly as cold catalogue items).

    Shapes:
        features[m]: (x (N, D_m), mask (N,)) -> (N, 2d + d_b + D' + 1 [+ k + 1])
    """
    cold = model.embed_items(features)
    vec, cvec = model._knn_vectors(features), model._content_vectors(features)
    cs, bb = model.content_scores, model.backbone
    if bb.ready and bb.keys is not None and bb.keys.shape[0] > 1:
        transfer = bb.transfer_weight * bb.transfer_items(*bb.new_item_neighbours(vec))
    else:
        transfer = torch.zeros(cold.shape[0], bb.dim, device=cold.device)
    out = [cold, torch.zeros_like(cold), transfer, cs.serving_items(cvec, cs.item_prior(cvec))]
    return torch.cat(out + ([model.walk.serving_items(walk_vectors(model, features))] if _walk_on(model) else []), 1)


def serving_width(model) -> int:
    """Columns of :func:`serving_embeddings` (without computing it)."""
    walk = model.walk.dim + 1 if _walk_on(model) else 0
    return 2 * model.dim + model.backbone.dim + int(model.content_scores.serving_columns().sum()) + 1 + walk


def serving_blocks(model) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The column blocks of the serving space and which items use which (a GraphRec or an ensemble).

    Warm items use only their item vectors and backbone vectors (``[d, 2d + d_b)`` of each member's
    own columns); cold and new items every column but the warm item vectors (``[d, 2d)``).
    :class:`~graphrec.serve.blocks.BlockedIndex` searches each group in its own columns.

    Returns:
        ``{"warm": cols, "cold": cols}`` (LongTensors), and the warm mask of the catalogue (I,).
    """
    members = list(getattr(model, "members", [model]))
    first = members[0]
    d, d2 = first.dim, 2 * first.dim + first.backbone.dim
    if len(members) == 1:
        owns, shared = [serving_width(first)], 0
    else:  # the ensemble's layout (GraphRecEnsemble._split): each member's own columns, then the shared block
        _, c = model._split()
        owns, shared = [serving_width(m) - c for m in members], c
    width = sum(owns) + shared
    warm_cols, warm_only = torch.zeros(width, dtype=torch.bool), torch.zeros(width, dtype=torch.bool)
    o = 0
    for w in owns:
        warm_cols[o + d:o + d2] = True
        warm_only[o + d:o + 2 * d] = True
        o += w
    return ({"warm": warm_cols.nonzero().flatten(), "cold": (~warm_only).nonzero().flatten()},
            first.warm.detach().cpu())
