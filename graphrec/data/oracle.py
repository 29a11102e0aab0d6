"""Warm-oracle reference: the cold-test items, evaluated after part of their users were seen.

The oracle answers "how much of the cold-to-warm gap does a cold-start model close?". For
every cold-test item, a share ``frac`` of its test interactions (per item, at random) moves
into ``train``; the rest stay in ``test_cold``. The same cold-test items are still the cold
candidates (``cold_test_items`` unchanged), so a model trained on the oracle data (it has seen
those items) is evaluated on exactly the same items and users' remaining interactions.

Comparable numbers: evaluate *both* the oracle model and the ordinary cold-start models on
the oracle data (``evaluate(scorer, oracle_data, settings=("cold", "cold_full"))``). Index
spaces are identical, the moved interactions are known history there (excluded from
rankings) and the positives are the same remaining half;
:func:`graphrec.evaluation.suite.gap_closed` then gives the share of the gap closed. This mirrors the "warm" upper bound in DropoutNet (Volkovs et al.,
NeurIPS 2017) and the cold-vs-warm comparisons of ALDI (Huang et al., SIGIR 2023).

Leakage note: in the oracle data cold-test items *do* have train edges by design; only the
oracle model (and its popularity / normalisation statistics) may be fitted on it.
"""

from __future__ import annotations

import torch

from graphrec.data.dataset import RecData


def make_oracle_data(data: RecData, frac: float = 0.5, seed: int = 0) -> RecData:
    """Copy of ``data`` with ``floor(frac * n_i)`` of each cold-test item's ``n_i`` test edges in train.

    Items with a single test interaction keep it in test (nothing moves; counted in
    ``oracle.oracle_report``). ``warm_items``, cold item lists, validation sets, features and
    the items table are unchanged.

    Args:
        data: the ordinary cold-start split.
        frac: share of each cold-test item's interactions moved into train, in (0, 1).
        seed: seed of the per-item random choice.

    Returns:
        A new :class:`RecData`; its attribute ``oracle_report`` is a dict with counts
        (``n_items``, ``n_moved``, ``n_kept``, ``n_items_nothing_moved``, ``frac``, ``seed``).
    """
    if not 0 < frac < 1:
        raise ValueError(f"make_oracle_data: frac must be in (0, 1), got {frac}")
    g = torch.Generator().manual_seed(seed)
    tc = data.test_cold.long()
    E = tc.size(1)
    # random order within each item: sort by (item, random key)
    rnd = torch.rand(E, generator=g)
    order = torch.argsort(tc[1].double() + rnd * 0.5, stable=True)  # items are ints: +[0, .5) keeps groups
    items_sorted = tc[1][order]
    counts = torch.bincount(items_sorted, minlength=data.num_items)
    start = torch.cumsum(counts, 0) - counts
    rank_in_item = torch.arange(E) - start[items_sorted]  # (E,)
    n_move = torch.floor(counts.double() * frac).long()
    move_sorted = rank_in_item < n_move[items_sorted]
    move = torch.zeros(E, dtype=torch.bool)
    move[order] = move_sorted
    items_with = torch.unique(tc[1])
    report = {"n_items": int(items_with.numel()), "n_moved": int(move.sum()), "n_kept": int((~move).sum()),
              "n_items_nothing_moved": int((n_move[items_with] == 0).sum()), "frac": frac, "seed": seed}
    out = RecData(
        user_ids=list(data.user_ids), item_ids=list(data.item_ids),
        train=torch.cat([data.train, tc[:, move]], 1), val_warm=data.val_warm, test_warm=data.test_warm,
        val_cold=data.val_cold, test_cold=tc[:, ~move], warm_items=data.warm_items,
        cold_val_items=data.cold_val_items, cold_test_items=data.cold_test_items,
        features=dict(data.features), items=data.items)
    out.oracle_report = report
    return out
