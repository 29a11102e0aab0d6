"""Beyond-accuracy metrics of top-K lists: coverage, novelty, tail share, recall per popularity bucket.

Definitions (all at one cut-off K, default 20; popularity = number of distinct *train* users
of an item, so cold items have popularity 0 and no test data leaks in):

* **coverage@K**: share of the setting's candidate items recommended to at least one user
  (catalogue coverage; Ge et al., "Beyond accuracy", RecSys 2010).
* **novelty@K**: mean self-information ``-log2 p(i)`` of the recommended items, averaged over
  all recommendation slots, with ``p(i) = (pop(i) + 1) / (num_train_users + 1)`` (add-one
  smoothing so cold items get the finite maximum; Zhou et al., PNAS 2010).
* **tail_share@K**: share of recommendation slots filled with *tail* items: the candidates
  whose popularity is at most the ``tail_frac`` quantile of the candidates' popularity
  (default the least popular 20%). NaN when all candidates have the same popularity (e.g.
  the ``cold`` setting, where every candidate has popularity 0: there is no tail to speak of).
* **recall@K per bucket**: warm items are split into ``n_buckets`` train-popularity quantile
  buckets; the phase's cold items are their own bucket ``"cold"``. For each bucket, recall
  is computed per user over the user's positives in that bucket (hits in the top K / those
  positives) and averaged over users with >= 1 positive there.
"""

from __future__ import annotations

import torch

from graphrec.data.dataset import RecData


def item_popularity(data: RecData) -> torch.Tensor:
    """Distinct train users per item.

    Shapes:
        returns (num_items,) long.
    """
    e = data.train.long()
    key = torch.unique(e[0] * data.num_items + e[1])
    return torch.bincount(key % data.num_items, minlength=data.num_items)


def coverage(topk: torch.Tensor, candidates: torch.Tensor, k: int = 20) -> float:
    """Share of ``candidates`` appearing in at least one top-``k`` list.

    Shapes:
        topk: (n, >=k) item indices, -1 = padding; candidates: (C,).
    """
    rec = torch.unique(topk[:, :k])
    rec = rec[rec >= 0]
    return float(torch.isin(candidates, rec).double().mean()) if candidates.numel() else float("nan")


def novelty(topk: torch.Tensor, popularity: torch.Tensor, num_train_users: int, k: int = 20) -> float:
    """Mean self-information ``-log2((pop + 1) / (num_train_users + 1))`` over recommendation slots.

    Shapes:
        topk: (n, >=k); popularity: (num_items,).
    """
    items = topk[:, :k].reshape(-1)
    items = items[items >= 0]
    if items.numel() == 0:
        return float("nan")
    p = (popularity[items].double() + 1) / (num_train_users + 1)
    return float((-torch.log2(p)).mean())


def tail_items(candidates: torch.Tensor, popularity: torch.Tensor, tail_frac: float = 0.2) -> torch.Tensor | None:
    """Candidates with popularity <= the ``tail_frac`` quantile; None if popularity is constant."""
    pop = popularity[candidates].double()
    if pop.numel() == 0 or bool((pop == pop[0]).all()):
        return None
    thr = torch.quantile(pop, tail_frac)
    return candidates[pop <= thr]


def tail_share(topk: torch.Tensor, candidates: torch.Tensor, popularity: torch.Tensor,
               tail_frac: float = 0.2, k: int = 20) -> float:
    """Share of recommendation slots (non-padding) given to tail candidates (NaN: no tail)."""
    tail = tail_items(candidates, popularity, tail_frac)
    items = topk[:, :k].reshape(-1)
    items = items[items >= 0]
    if tail is None or items.numel() == 0:
        return float("nan")
    return float(torch.isin(items, tail).double().mean())


def popularity_buckets(data: RecData, n_buckets: int = 3, phase: str = "test") -> tuple[torch.Tensor, list[str]]:
    """Bucket of each item: warm items by train-popularity quantiles, the phase's cold items "cold".

    Returns:
        ``(bucket (num_items,) long, labels)``; ``bucket == -1`` for items in no bucket (e.g. items
        without interactions, or the other phase's cold items). Labels name the popularity range,
        e.g. ``"warm Q1 (pop 1-12)"``, then ``"cold"`` last.
    """
    pop = item_popularity(data)
    bucket = torch.full((data.num_items,), -1, dtype=torch.long)
    warm = torch.unique(data.warm_items.long())
    labels: list[str] = []
    if warm.numel():
        wp = pop[warm].double()
        # equal-count quantile buckets over warm items, ties kept together by popularity value
        edges = torch.quantile(wp, torch.linspace(0, 1, n_buckets + 1, dtype=torch.float64))
        b = torch.bucketize(wp, edges[1:-1], right=True).clamp(max=n_buckets - 1)
        used = sorted(set(b.tolist()))
        remap = {old: new for new, old in enumerate(used)}
        b = torch.tensor([remap[x] for x in b.tolist()], dtype=torch.long)
        bucket[warm] = b
        for j in range(len(used)):
            sel = wp[b == j]
            labels.append(f"warm Q{j + 1} (pop {int(sel.min())}-{int(sel.max())})")
    cold = torch.unique((data.cold_test_items if phase == "test" else data.cold_val_items).long())
    bucket[cold] = len(labels)
    labels.append("cold")
    return bucket, labels


def recall_by_bucket(users: torch.Tensor, topk: torch.Tensor, positives: torch.Tensor, bucket: torch.Tensor,
                     labels: list[str], k: int = 20) -> dict[str, dict[str, float]]:
    """Per-bucket recall@k averaged over users with >= 1 positive in the bucket.

    Args:
        users: user index of each row of ``topk``.
        topk: ranked item indices (-1 = padding).
        positives: ``[user, item]`` pairs of the setting (deduplicated).
        bucket / labels: from :func:`popularity_buckets`.

    Returns:
        ``{label: {"recall@k": float, "n_users": int, "n_positives": int}}`` for buckets with positives.

    Shapes:
        users: (n,); topk: (n, >=k); positives: (2, P); bucket: (num_items,).
    """
    n_items = bucket.numel()
    row_of = torch.full((int(max(users.max(), positives[0].max())) + 1,), -1, dtype=torch.long)
    row_of[users] = torch.arange(users.numel())
    rows = row_of[positives[0]]
    keep = rows >= 0
    rows, items = rows[keep], positives[1][keep]
    top = topk[:, :k]
    rec_keys = (torch.arange(top.size(0)).unsqueeze(1) * n_items + top)[top >= 0]
    rec_keys = torch.sort(rec_keys).values
    pkeys = rows * n_items + items
    pos = torch.searchsorted(rec_keys, pkeys).clamp(max=max(rec_keys.numel() - 1, 0))
    hit = (rec_keys[pos] == pkeys) if rec_keys.numel() else torch.zeros_like(pkeys, dtype=torch.bool)
    out: dict[str, dict[str, float]] = {}
    b = bucket[items]
    for j, label in enumerate(labels):
        sel = b == j
        if not sel.any():
            continue
        n_pos = torch.bincount(rows[sel], minlength=top.size(0)).double()
        n_hit = torch.bincount(rows[sel], weights=hit[sel].double(), minlength=top.size(0))
        has = n_pos > 0
        out[label] = {f"recall@{k}": float((n_hit[has] / n_pos[has]).mean()), "n_users": int(has.sum()),
                      "n_positives": int(sel.sum())}
    return out


def beyond_accuracy(result, data: RecData, k: int = 20, tail_frac: float = 0.2) -> dict[str, dict[str, float]]:
    """Coverage, novelty and tail share for every setting of an :class:`EvalResult`.

    Returns:
        ``{setting: {"coverage@k", "novelty@k", "tail_share@k"}}``.
    """
    from graphrec.evaluation.index import setting_specs

    specs = setting_specs(data, result.phase, list(result.topk))
    pop = item_popularity(data)
    n_train_users = int(torch.unique(data.train[0]).numel())
    out = {}
    for s, (_, top) in result.topk.items():
        cand = specs[s].candidates
        out[s] = {f"coverage@{k}": coverage(top, cand, k), f"novelty@{k}": novelty(top, pop, n_train_users, k),
                  f"tail_share@{k}": tail_share(top, cand, pop, tail_frac, k)}
    return out


def bucket_recall(result, data: RecData, k: int = 20, n_buckets: int = 3) -> dict[str, dict[str, dict[str, float]]]:
    """Recall@k per item-popularity bucket for every setting of an :class:`EvalResult`.

    Returns:
        ``{setting: {bucket_label: {"recall@k", "n_users", "n_positives"}}}``.
    """
    from graphrec.evaluation.index import setting_specs

    specs = setting_specs(data, result.phase, list(result.topk))
    bucket, labels = popularity_buckets(data, n_buckets, result.phase)
    return {s: recall_by_bucket(users, top, specs[s].positives, bucket, labels, k)
            for s, (users, top) in result.topk.items()}
