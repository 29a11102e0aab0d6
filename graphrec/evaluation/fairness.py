"""Fairness and exposure audit of top-K lists: who gets recommended, who is served well.

Pure functions over what :func:`graphrec.evaluation.protocol.evaluate` returns with
``per_user=True`` (an :class:`~graphrec.evaluation.protocol.EvalResult`: ``.topk[setting] =
(users, items)`` and ``.per_user[setting]``), the :class:`~graphrec.data.dataset.RecData` and
the optional user attribute table (:func:`graphrec.data.users.load_user_attributes`). All at
one cut-off K (``eval.beyond_k``, 20); popularity = distinct *train* users of an item
(:func:`graphrec.evaluation.beyond.item_popularity`), so nothing fitted reads test data.

Item side (per model and setting):

* **exposure share** of an item group = its share of the (non-padding) top-K slots, next to
  its **positive share** (share of the setting's test positives: the relevance it "deserves";
  Singh & Joachims, "Fairness of Exposure in Rankings", KDD 2018, ask exposure to follow
  relevance) and its candidate share. Groups: train-popularity quantiles of warm items +
  ``cold`` (:func:`~graphrec.evaluation.beyond.popularity_buckets`), ``warm``/``cold``, and
  genres. An item with several genres splits its slots (and positives) equally between them,
  so every grouping's shares sum to 1.
* **Gini of exposure** over the setting's candidates (items with no slot count as 0): 0 when
  every candidate gets the same number of slots, ``(n - 1) / n`` when one item gets them all
  (the exposure Gini of Fleder & Hosanagar, Management Science 2009).
* **cold share** of hybrid slots vs the cold share of hybrid test positives.

User side: Recall@K and NDCG@K per user group with percentile-bootstrap intervals
(:mod:`graphrec.evaluation.stats`): train-activity quantiles for every data set, and each user
attribute of the users file (ml1m-mm: gender, age band, occupation). Groups with fewer than
``min_group_users`` evaluated users are pooled into one ``other`` group (dropped if the pool is
still that small), which also keeps tiny groups from identifying anyone. The **gap** is the
best minus the worst group mean (pooled group excluded), with a bootstrap interval from
independent resamples of the two groups.

Popularity inherited by cold items: Spearman rank correlation, over the phase's cold items,
between a model's signal for each cold item and the mean train popularity of its
``k`` most content-similar warm items (content = the item features, per modality centred on
train items and L2-normalised, as :func:`graphrec.baselines.common.content_features`). Two
signals: ``rho_score`` (needs the scorer: each cold-setting user's scores of the cold items
standardised per user, then averaged per item) and ``rho_exposure`` (from the top-K lists
alone: the item's slots in the ``cold`` setting; ties when lists cover most cold items). The
reference ``rho_test_positives`` correlates the cold items' actual test positives with the
same neighbour popularity: a model far above it copies popularity more than the users do.

The audit holds group aggregates only (counts, means, intervals); never a per-user value.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from graphrec.data.dataset import RecData
from graphrec.evaluation import stats
from graphrec.evaluation.beyond import item_popularity, popularity_buckets

OTHER_ITEMS = "other (no bucket)"
NO_GENRE = "(no genre)"
USER_METRICS = ("recall", "ndcg")


# ----------------------------------------------------------------------------- item side
def exposure_counts(topk: torch.Tensor, num_items: int, k: int = 20) -> torch.Tensor:
    """Top-``k`` slots per item (``-1`` padding ignored).

    Shapes:
        topk: (n, >=k) item indices -> (num_items,) long
    """
    items = topk[:, :k].reshape(-1)
    return torch.bincount(items[items >= 0], minlength=num_items)


def gini(values: torch.Tensor) -> float:
    """Gini coefficient of non-negative values (0 = equal; ``(n-1)/n`` = all on one entry).

    ``G = sum_i (2i - n - 1) x_(i) / (n sum x)`` over the values sorted ascending, i = 1..n.
    NaN for an empty input or an all-zero one.

    Shapes:
        values: (n,)
    """
    x = torch.sort(values.double().reshape(-1)).values
    n, total = x.numel(), float(x.sum()) if x.numel() else 0.0
    if n == 0 or total == 0:
        return float("nan")
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return float(((2 * i - n - 1) * x).sum() / (n * total))


def item_groupings(data: RecData, phase: str = "test", n_buckets: int = 3) -> dict[str, tuple[torch.Tensor, list[str]]]:
    """Item groupings as membership weights: ``{name: (weights (N, G) float, labels)}``.

    ``popularity``: warm train-popularity quantile buckets, ``cold`` (the phase's cold items)
    and ``other (no bucket)`` (items with no interactions, the other phase's cold items);
    ``cold_warm``: ``warm``, ``cold``, ``other``; ``genre`` (when ``data.items`` has genres):
    each item's weight split equally over its ``|``-separated genres, ``(no genre)`` if none.
    Every row sums to 1.
    """
    n = data.num_items
    out: dict[str, tuple[torch.Tensor, list[str]]] = {}
    bucket, labels = popularity_buckets(data, n_buckets, phase)
    b = torch.where(bucket >= 0, bucket, torch.full_like(bucket, len(labels)))
    out["popularity"] = (torch.nn.functional.one_hot(b, len(labels) + 1).float(), labels + [OTHER_ITEMS])
    cw = torch.full((n,), 2, dtype=torch.long)
    cw[torch.unique(data.warm_items.long())] = 0
    cw[torch.unique((data.cold_test_items if phase == "test" else data.cold_val_items).long())] = 1
    out["cold_warm"] = (torch.nn.functional.one_hot(cw, 3).float(), ["warm", "cold", "other"])
    if data.items is not None and "genres" in data.items.columns:
        per_item = [[g.strip() for g in str(s).split("|") if g.strip() and str(s).lower() != "nan"]
                    for s in data.items["genres"].fillna("").tolist()]
        if any(per_item):
            names = sorted({g for gs in per_item for g in gs}) + [NO_GENRE]
            col = {g: j for j, g in enumerate(names)}
            w = torch.zeros(n, len(names))
            for i, gs in enumerate(per_item):
                gs = gs or [NO_GENRE]
                for g in gs:
                    w[i, col[g]] += 1.0 / len(gs)
            out["genre"] = (w, names)
    return out


def group_exposure(slots: torch.Tensor, positives: torch.Tensor, candidates: torch.Tensor,
                   weights: torch.Tensor, labels: Sequence[str]) -> dict[str, dict[str, float]]:
    """Exposure share vs positive share (and candidate share) of each item group.

    Args:
        slots: top-K slots per item (:func:`exposure_counts`).
        positives: positives per item in the setting.
        candidates: the setting's candidate items.
        weights / labels: one grouping of :func:`item_groupings`.

    Returns:
        ``{label: {"n_items", "candidate_share", "exposure_share", "positive_share",
        "exposure_to_positive"}}`` for groups with candidates; ``n_items`` counts candidates
        with any weight in the group; shares over groups sum to 1.

    Shapes:
        slots, positives: (N,); candidates: (C,); weights: (N, G)
    """
    w = weights[candidates]  # (C, G)
    s = slots[candidates].double() @ w.double()  # (G,)
    p = positives[candidates].double() @ w.double()
    c = w.double().sum(0)
    ts, tp, tc = float(s.sum()), float(p.sum()), float(c.sum())
    out = {}
    for j, label in enumerate(labels):
        if float(c[j]) == 0:
            continue
        es = float(s[j]) / ts if ts else float("nan")
        ps = float(p[j]) / tp if tp else float("nan")
        out[label] = {"n_items": int((w[:, j] > 0).sum()), "candidate_share": float(c[j]) / tc,
                      "exposure_share": es, "positive_share": ps,
                      "exposure_to_positive": es / ps if ps and math.isfinite(es) and math.isfinite(ps) else float("nan")}
    return out


def setting_exposure(topk: torch.Tensor, spec, data: RecData, groupings: Mapping[str, tuple[torch.Tensor, list[str]]],
                     k: int = 20) -> dict[str, Any]:
    """Gini, cold share and per-group exposure of one setting's top-K lists.

    Args:
        topk: ranked item indices of the setting (``EvalResult.topk[setting][1]``).
        spec: the setting's :class:`~graphrec.evaluation.protocol.SettingSpec` (candidates, positives).
        groupings: :func:`item_groupings`.

    Returns:
        ``{"gini@k", "n_candidates", "n_slots", "cold_slot_share@k", "cold_positive_share",
        "groups": {grouping: {label: {...}}}}`` (the cold shares are those of the ``cold_warm``
        grouping).
    """
    n = data.num_items
    slots = exposure_counts(topk, n, k)
    pos = torch.bincount(spec.positives[1], minlength=n)
    groups = {name: group_exposure(slots, pos, spec.candidates, w, labels) for name, (w, labels) in groupings.items()}
    cold = groups.get("cold_warm", {}).get("cold", {})
    return {f"gini@{k}": gini(slots[spec.candidates]), "n_candidates": int(spec.candidates.numel()),
            "n_slots": int(slots.sum()), f"cold_slot_share@{k}": cold.get("exposure_share", 0.0),
            "cold_positive_share": cold.get("positive_share", 0.0), "groups": groups}


# ----------------------------------------------------------------------------- user side
def _natural_key(label: str):
    m = re.search(r"\d+", label)
    return (0 if m else 1, int(m.group()) if m else 0, not label.startswith("<"), label)


def activity_groups(data: RecData, n_buckets: int = 4) -> tuple[torch.Tensor, list[str]]:
    """User groups by train history length (distinct train items), equal-count quantile buckets.

    Returns:
        ``(group (num_users,) long, labels)``, labels like ``"Q1 (1-12 train items)"``.
    """
    e = data.train.long()
    key = torch.unique(e[0] * data.num_items + e[1])
    length = torch.bincount(key // data.num_items, minlength=data.num_users).double()  # (U,)
    edges = torch.quantile(length, torch.linspace(0, 1, n_buckets + 1, dtype=torch.float64))
    b = torch.bucketize(length, edges[1:-1], right=True).clamp(max=n_buckets - 1)
    used = sorted(set(b.tolist()))
    remap = torch.full((n_buckets,), -1, dtype=torch.long)
    remap[torch.tensor(used)] = torch.arange(len(used))
    g = remap[b]
    labels = []
    for j in range(len(used)):
        sel = length[g == j]
        lo, hi = int(sel.min()), int(sel.max())
        labels.append(f"Q{j + 1} ({lo}-{hi} train items)" if lo < hi else f"Q{j + 1} ({lo} train items)")
    return g, labels


def attribute_groups(data: RecData, user_attrs, column: str) -> tuple[torch.Tensor, list[str]]:
    """User groups by one attribute column (``-1``: user not in the table or value empty).

    Returns:
        ``(group (num_users,) long, labels)``, labels in natural order (numbers numerically, so
        ``"<18", "18-24", ..., "56+"``).
    """
    values = dict(zip(user_attrs["user_id"].astype(str), user_attrs[column].fillna("").astype(str).str.strip()))
    per_user = [values.get(u, "") for u in data.user_ids]
    labels = sorted({v for v in per_user if v}, key=_natural_key)
    idx = {v: j for j, v in enumerate(labels)}
    return torch.tensor([idx.get(v, -1) for v in per_user], dtype=torch.long), labels


def user_groupings(data: RecData, user_attrs=None, activity_buckets: int = 4) -> dict[str, tuple[torch.Tensor, list[str]]]:
    """``{"activity": ..., <attribute>: ...}``: every grouping of users the audit reports."""
    out = {"activity": activity_groups(data, activity_buckets)}
    if user_attrs is not None:
        for col in [c for c in user_attrs.columns if c != "user_id"]:
            out[str(col)] = attribute_groups(data, user_attrs, col)
    return out


def group_quality(per_user: Mapping[str, torch.Tensor], group: torch.Tensor, labels: Sequence[str],
                  metrics: Sequence[str] = ("recall@20", "ndcg@20"), samples: int = 1000, level: float = 0.95,
                  seed: int = 0, min_group_users: int = 20) -> dict[str, Any]:
    """Per-group means with bootstrap intervals, and the best-worst gap, of per-user metrics.

    Args:
        per_user: one setting of ``EvalResult.per_user`` (``{"users": (n,), metric: (n,)}``).
        group / labels: a user grouping (``group[u] = -1``: no group).
        metrics: metric names in ``per_user``.
        samples / level / seed: bootstrap settings (0 samples: intervals collapse to the mean).
        min_group_users: smaller groups are pooled into ``other (< m users each)``.

    Returns:
        ``{"groups": {label: {"n_users", metric: {"mean", "lo", "hi"}}}, "n_users_no_group",
        "n_users_dropped", "gap": {metric: {"best", "worst", "gap", "lo", "hi"}}}``; the gap is
        omitted with fewer than two (unpooled) groups.
    """
    g = group[per_user["users"]]  # (n,)
    vals = {m: per_user[m].double() for m in metrics}
    members = {label: (g == j).nonzero().view(-1) for j, label in enumerate(labels)}
    members = {lb: ix for lb, ix in members.items() if ix.numel()}
    small = [lb for lb, ix in members.items() if ix.numel() < min_group_users]
    keep = {lb: ix for lb, ix in members.items() if lb not in small}
    pooled = None
    dropped = 0
    if small:
        ix = torch.cat([members[lb] for lb in small])
        if ix.numel() >= min_group_users:
            pooled = f"other (< {min_group_users} users each: {len(small)} groups)"
            keep[pooled] = ix
        else:
            dropped = int(ix.numel())
    out: dict[str, Any] = {"groups": {}, "n_users_no_group": int((g < 0).sum()), "n_users_dropped": dropped}
    v = torch.stack([vals[m] for m in metrics], 1)  # (n, M)
    a = (1 - level) / 2
    q = torch.tensor([a, 1 - a], dtype=torch.float64)
    boot: dict[str, torch.Tensor] = {}
    for j, (lb, ix) in enumerate(keep.items()):
        mean = v[ix].mean(0)  # (M,)
        if samples > 0:
            boot[lb] = stats.bootstrap_means(v[ix], samples, seed + j)  # (S, M), one resample set per group
            lohi = torch.quantile(boot[lb], q, dim=0)  # (2, M)
        else:
            lohi = torch.stack([mean, mean])
        out["groups"][lb] = {"n_users": int(ix.numel()), **{
            m: {"mean": float(mean[c]), "lo": float(lohi[0, c]), "hi": float(lohi[1, c])} for c, m in enumerate(metrics)}}
    ranked = [lb for lb in keep if lb != pooled]
    if len(ranked) >= 2:
        out["gap"] = {}
        for c, m in enumerate(metrics):
            best = max(ranked, key=lambda lb: out["groups"][lb][m]["mean"])
            worst = min(ranked, key=lambda lb: out["groups"][lb][m]["mean"])
            gap = out["groups"][best][m]["mean"] - out["groups"][worst][m]["mean"]
            lo = hi = gap
            if samples > 0:  # the two groups' resamples are independent (different seeds)
                lo, hi = torch.quantile(boot[best][:, c] - boot[worst][:, c], q).tolist()
            out["gap"][m] = {"best": best, "worst": worst, "gap": gap, "lo": lo, "hi": hi}
    return out


# ----------------------------------------------------------------------------- cold popularity inheritance
def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation (average ranks for ties); NaN if either side is constant.

    Shapes:
        a, b: (n,)
    """
    if a.numel() != b.numel():
        raise ValueError(f"spearman: {a.numel()} vs {b.numel()} values")
    if a.numel() < 2:
        return float("nan")
    ra, rb = _avg_ranks(a.double()), _avg_ranks(b.double())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(ra.norm() * rb.norm())
    return float((ra * rb).sum()) / den if den > 0 else float("nan")


def _avg_ranks(x: torch.Tensor) -> torch.Tensor:
    _, inv, counts = torch.unique(x, sorted=True, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()  # rank of the last member of each tie block (1-based)
    return (ends - (counts.double() - 1) / 2)[inv]


def centred_content(data: RecData) -> torch.Tensor:
    """Item content vectors: per modality centred on train items, L2-normalised, equal weights.

    The same recipe as :func:`graphrec.baselines.common.content_features` (kept here so the
    evaluation layer does not import the baselines). Items without a modality get zeros.

    Shapes:
        returns (N, sum D)
    """
    if not data.features:
        raise ValueError("no item features loaded")
    train = torch.zeros(data.num_items, dtype=torch.bool)
    train[data.train[1]] = True
    names = sorted(data.features)
    blocks = []
    for n in names:
        f = data.features[n]
        fit = train & f.mask
        x = f.x.float() - (f.x[fit].float().mean(0, keepdim=True) if fit.any() else 0.0)
        x = torch.nn.functional.normalize(x, dim=1) * f.mask.unsqueeze(1).float()
        blocks.append(x / math.sqrt(len(names)))
    return torch.cat(blocks, 1)


def neighbour_popularity(data: RecData, items: torch.Tensor, k: int = 10,
                         content: torch.Tensor | None = None) -> torch.Tensor:
    """Mean train popularity of each item's ``k`` most content-similar warm items (train pop > 0).

    Shapes:
        items: (M,) -> (M,) float64
    """
    pop = item_popularity(data)
    pool = (pop > 0).nonzero().view(-1)  # (P,) warm items with train users
    if pool.numel() == 0 or items.numel() == 0:
        return torch.zeros(items.numel(), dtype=torch.float64)
    x = centred_content(data) if content is None else content
    sim = x[items] @ x[pool].T  # (M, P)
    sim[items.unsqueeze(1) == pool.unsqueeze(0)] = float("-inf")  # never its own neighbour
    top = sim.topk(min(k, pool.numel()), dim=1).indices  # (M, k)
    return pop[pool][top].double().mean(1)


def mean_item_scores(scorer, users: torch.Tensor, items: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Mean over ``users`` of each user's scores of ``items`` standardised over those items.

    Per-user standardisation keeps users with large score scales from dominating the mean.

    Shapes:
        users: (n,); items: (M,) -> (M,) float64
    """
    total = torch.zeros(items.numel(), dtype=torch.float64)
    was_training = isinstance(scorer, torch.nn.Module) and scorer.training
    if isinstance(scorer, torch.nn.Module):
        scorer.eval()
    try:
        with torch.no_grad():
            for batch in torch.split(users, batch_size):
                s = scorer.score(batch)[:, items].double().cpu()  # (B, M), from the scorer's device
                sd = s.std(1, keepdim=True)
                total += ((s - s.mean(1, keepdim=True)) / torch.where(sd > 0, sd, torch.ones_like(sd))).sum(0)
    finally:
        if was_training:
            scorer.train()
    return total / max(users.numel(), 1)


def cold_inheritance(data: RecData, signal: torch.Tensor, items: torch.Tensor, k: int = 10,
                     neighbour_pop: torch.Tensor | None = None) -> float:
    """Spearman correlation between ``signal`` of cold ``items`` and their neighbours' popularity.

    Shapes:
        signal: (M,) one value per entry of ``items`` (M,)
    """
    npop = neighbour_popularity(data, items, k) if neighbour_pop is None else neighbour_pop
    return spearman(signal.double(), npop)


# ----------------------------------------------------------------------------- the audit
def fairness_audit(results: Mapping[str, Any], data: RecData, user_attrs=None, k: int = 20, *,
                   scorers: Mapping[str, Any] | None = None, n_buckets: int = 3, activity_buckets: int = 4,
                   min_group_users: int = 20, inheritance_k: int = 10, samples: int = 1000, level: float = 0.95,
                   seed: int = 0, batch_size: int = 1024) -> dict[str, Any]:
    """The whole audit (module docstring) for every model of ``results``.

    Args:
        results: ``{model: EvalResult}`` from ``evaluate(..., per_user=True)``, all the same phase
            (``.topk`` is required; ``.per_user`` for the user side).
        data: the split the results were computed on.
        user_attrs: table ``user_id`` + attribute columns (or None: activity groups only).
        k: the cut-off (must be <= the top-K lists' length and one of the evaluated ks).
        scorers: optional ``{model: scorer}`` for ``rho_score`` (cold mean scores).
        n_buckets: warm popularity quantile buckets of the item side.
        activity_buckets: history-length quantile buckets of the user side.
        min_group_users: user groups smaller than this are pooled.
        inheritance_k: content neighbours per cold item.
        samples / level / seed: bootstrap of the user-group intervals.
        batch_size: users per ``score`` call for ``rho_score``.

    Returns:
        JSON-able ``{"k", "phase", "item_groupings", "user_groupings", "inheritance_reference",
        "models": {model: {"exposure": {setting: ...}, "users": {setting: {grouping: ...}},
        "inheritance": {...}}}}``; group aggregates only.
    """
    from graphrec.evaluation.index import setting_specs

    phases = {getattr(r, "phase", "test") for r in results.values()}
    if len(phases) > 1:
        raise ValueError(f"fairness_audit: results mix phases {sorted(phases)}")
    phase = phases.pop() if phases else "test"
    specs = setting_specs(data, phase)
    igroups = item_groupings(data, phase, n_buckets)
    ugroups = user_groupings(data, user_attrs, activity_buckets)
    metrics = [f"{m}@{k}" for m in USER_METRICS]
    cold_items = torch.unique((data.cold_test_items if phase == "test" else data.cold_val_items).long())
    npop, inh_note = None, None
    if cold_items.numel() >= 2 and data.features:
        npop = neighbour_popularity(data, cold_items, inheritance_k)
    else:
        inh_note = "no item features" if not data.features else "fewer than two cold items"
    audit: dict[str, Any] = {
        "k": k, "phase": phase,
        "item_groupings": {n: list(lb) for n, (_, lb) in igroups.items()},
        "user_groupings": {n: {"n_groups": len(lb), "n_users_with_group": int((g >= 0).sum())}
                           for n, (g, lb) in ugroups.items()},
        "min_group_users": min_group_users, "inheritance_k": inheritance_k,
        "models": {},
    }
    if npop is not None:
        test_pos = torch.bincount(specs["cold"].positives[1], minlength=data.num_items)[cold_items]
        audit["inheritance_reference"] = {"n_items": int(cold_items.numel()),
                                          "rho_test_positives": spearman(test_pos.double(), npop)}
    else:
        audit["inheritance_reference"] = {"note": inh_note}
    for name, res in results.items():
        entry: dict[str, Any] = {"exposure": {}, "users": {}}
        for s, (_, top) in res.topk.items():
            if top.size(1) < k:
                raise ValueError(f"fairness_audit: {name} {s} top-K lists have {top.size(1)} ranks < k={k}")
            entry["exposure"][s] = setting_exposure(top, specs[s], data, igroups, k)
        for s, arrays in (res.per_user or {}).items():
            missing = [m for m in metrics if m not in arrays]
            if missing:
                entry["users"][s] = {"note": f"per-user arrays lack {missing}: evaluate with ks containing {k}"}
                continue
            entry["users"][s] = {gname: group_quality(arrays, g, lb, metrics, samples, level, seed, min_group_users)
                                 for gname, (g, lb) in ugroups.items()}
        inh: dict[str, Any] = {}
        if npop is not None and "cold" in res.topk:
            slots = exposure_counts(res.topk["cold"][1], data.num_items, k)[cold_items]
            inh["rho_exposure"] = spearman(slots.double(), npop)
            if scorers and name in scorers:
                sig = mean_item_scores(scorers[name], res.topk["cold"][0], cold_items, batch_size)
                inh["rho_score"] = spearman(sig, npop)
        elif npop is None:
            inh["note"] = inh_note
        else:
            inh["note"] = "no cold setting (model cannot score cold items)"
        entry["inheritance"] = inh
        audit["models"][name] = entry
    return audit


# ----------------------------------------------------------------------------- re-ranking curve
def rerank_curve(scorer, data: RecData, lams: Sequence[float], phase: str = "test", k: int = 20,
                 batch_size: int = 1024, popularity: torch.Tensor | None = None) -> list[dict[str, float]]:
    """Accuracy vs exposure of the exposure-penalty re-ranking over ``lams`` (hybrid setting).

    Runs the full-ranking protocol on :class:`graphrec.rerank.RerankedScorer` for each
    lambda; choose lambda on ``phase="val"`` (:func:`choose_lambdas`), report ``phase="test"``.

    Args:
        popularity: per-item popularity of the penalty (default: train popularity).

    Returns:
        one ``{"lam", "recall@k", "ndcg@k", "gini@k", "cold_slot_share@k", "cold_positive_share",
        "n_users"}`` per lambda; empty when the scorer cannot rank the hybrid setting.
    """
    from graphrec.evaluation.index import setting_specs
    from graphrec.evaluation.protocol import evaluate
    from graphrec.rerank import RerankedScorer

    pop = item_popularity(data) if popularity is None else popularity
    spec = setting_specs(data, phase, ("hybrid",))["hybrid"]
    groupings = {"cold_warm": item_groupings(data, phase)["cold_warm"]}
    out = []
    for lam in lams:
        res = evaluate(RerankedScorer(scorer, pop, float(lam)), data, phase, ("hybrid",), (k,), batch_size)
        if "hybrid" not in res:
            return []
        ex = setting_exposure(res.topk["hybrid"][1], spec, data, groupings, k)
        out.append({"lam": float(lam), f"recall@{k}": res["hybrid"][f"recall@{k}"], f"ndcg@{k}": res["hybrid"][f"ndcg@{k}"],
                    f"gini@{k}": ex[f"gini@{k}"], f"cold_slot_share@{k}": ex[f"cold_slot_share@{k}"],
                    "cold_positive_share": ex["cold_positive_share"], "n_users": res["hybrid"]["n_users"]})
    return out


CHOICES = ("accuracy", "gini", "calibrated")


def choose_lambdas(val_curve: Sequence[Mapping[str, float]], tolerance: float = 0.05, k: int = 20) -> dict[str, float]:
    """The marked points of a validation curve (:data:`CHOICES`).

    * ``"accuracy"``: the lambda with the best validation Recall@k;
    * among the lambdas whose validation Recall@k is within ``tolerance`` (relative) of that best:
      ``"gini"``, the one with the lowest validation exposure Gini (the most even exposure), and
      ``"calibrated"``, the one whose cold share of slots is closest to the cold share of the
      positives (exposure proportional to relevance; Steck, "Calibrated Recommendations", RecSys 2018).

    Ties go to the smaller lambda.
    """
    if not val_curve:
        raise ValueError("choose_lambdas: empty curve")
    rk, gk, ck = f"recall@{k}", f"gini@{k}", f"cold_slot_share@{k}"
    pts = sorted(val_curve, key=lambda p: p["lam"])
    best = max(pts, key=lambda p: p[rk])  # max keeps the first (smallest lambda) of equal values
    ok = [p for p in pts if p[rk] >= (1 - tolerance) * best[rk]]
    fin = lambda x: x if x is not None and math.isfinite(x) else math.inf  # noqa: E731
    gini_pt = min(ok, key=lambda p: (fin(p.get(gk)), p["lam"]))
    cal_pt = min(ok, key=lambda p: (fin(abs(p.get(ck, math.nan) - p.get("cold_positive_share", math.nan))), p["lam"]))
    return {"accuracy": best["lam"], "gini": gini_pt["lam"], "calibrated": cal_pt["lam"]}


# ----------------------------------------------------------------------------- outputs
def _clean(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, torch.Tensor):
        return _clean(x.tolist())
    return x


def write_fairness(path: str | Path, audit: Mapping[str, Any]) -> Path:
    """Write the audit as strict JSON (non-finite numbers as ``null``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_clean(audit), indent=1, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def _f(v: Any, nd: int = 4) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{nd}f}"


def _ci(d: Mapping[str, float] | None) -> str:
    if not d:
        return "n/a"
    txt = _f(d.get("mean"))
    if d.get("lo") is not None and d.get("hi") is not None and d["lo"] != d["hi"]:
        txt += f" [{_f(d['lo'], 3)}, {_f(d['hi'], 3)}]"
    return txt


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _head(cols: Sequence[str]) -> list[str]:
    return [_row(cols), "| --- |" + " ---: |" * (len(cols) - 1)]


def fairness_markdown(audit: Mapping[str, Any], *, user_settings: Sequence[str] = ("hybrid",),
                      exposure_settings: Sequence[str] = ("hybrid",), plots: Sequence[str | Path] = ()) -> str:
    """The report section (Markdown) of an audit (plus ``audit["rerank"]`` when present).

    Args:
        audit: :func:`fairness_audit` output, optionally with ``"rerank"`` from :func:`run_fairness`.
        user_settings: settings whose per-group quality tables are shown (every setting is in
            the gap summary and in ``fairness.json``).
        exposure_settings: settings whose per-group exposure tables are shown.
        plots: image paths (relative to the report) appended at the end.
    """
    k = audit["k"]
    models = list(audit["models"])
    L = ["## Fairness and exposure audit", "",
         f"Top-{k} lists of the {audit['phase']} phase. Item popularity = train users per item. "
         "Exposure share = share of recommendation slots; positive share = share of the setting's test "
         "positives (what proportional exposure would give); Gini over the setting's candidates (0 = equal "
         "exposure). User groups: intervals are 95% bootstrap intervals over the group's users; groups with "
         f"fewer than {audit['min_group_users']} evaluated users are pooled into `other`. Only group "
         "aggregates are reported; user attributes are never model inputs.", ""]
    # summary
    cols = ["model"]
    for s in ("cold", "warm", "hybrid", "cold_full"):
        cols.append(f"Gini ({s})")
    cols += ["cold slots (hybrid)", "cold positives (hybrid)", "rho score", "rho exposure"]
    L += ["### Exposure summary", ""] + _head(cols)
    for m in models:
        e = audit["models"][m]["exposure"]
        inh = audit["models"][m]["inheritance"]
        h = e.get("hybrid", {})
        L.append(_row([m] + [_f(e.get(s, {}).get(f"gini@{k}")) for s in ("cold", "warm", "hybrid", "cold_full")]
                      + [_f(h.get(f"cold_slot_share@{k}")) if h else "n/a", _f(h.get("cold_positive_share")) if h else "n/a",
                         _f(inh.get("rho_score")), _f(inh.get("rho_exposure"))]))
    ref = audit.get("inheritance_reference", {})
    L += ["", f"rho: Spearman correlation, over the {ref.get('n_items', 'n/a')} cold items, between the model's "
          f"signal per cold item (score: mean per-user-standardised score; exposure: top-{k} slots in `cold`) and "
          f"the mean train popularity of the item's {audit['inheritance_k']} most content-similar warm items. "
          f"Reference, the cold items' actual test positives: rho = {_f(ref.get('rho_test_positives'))}; "
          "a model well above it turns content neighbours' popularity into exposure more than users do.", ""]
    # exposure per group
    for s in exposure_settings:
        have = [m for m in models if s in audit["models"][m]["exposure"]]
        if not have:
            continue
        for gname in ("popularity", "genre"):
            first = audit["models"][have[0]]["exposure"][s]["groups"].get(gname)
            if not first:
                continue
            L += [f"### Exposure vs relevance per {gname} group ({s})", "",
                  "Cells: exposure share (exposure / positive share).", ""]
            L += _head(["group", "items", "positive share"] + have)
            for lb, g0 in first.items():
                cells = [lb, str(g0["n_items"]), _f(g0["positive_share"])]
                for m in have:
                    g = audit["models"][m]["exposure"][s]["groups"][gname].get(lb, {})
                    cells.append(f"{_f(g.get('exposure_share'))} ({_f(g.get('exposure_to_positive'), 2)})")
                L.append(_row(cells))
            L.append("")
    # user groups
    for s in user_settings:
        have = [m for m in models if s in audit["models"][m]["users"]]
        if not have:
            continue
        for gname in audit["user_groupings"]:
            first = audit["models"][have[0]]["users"][s][gname]
            labels = list(dict.fromkeys(lb for m in have for lb in audit["models"][m]["users"][s][gname]["groups"]))
            if not labels:
                continue
            L += [f"### Recall@{k} [95% CI] / NDCG@{k} per user {gname} group ({s})", ""]
            L += _head(["group", "users"] + have)
            for lb in labels:
                n = first["groups"].get(lb, {}).get("n_users", "")
                cells = []
                for m in have:
                    grp = audit["models"][m]["users"][s][gname]["groups"].get(lb, {})
                    cells.append(f"{_ci(grp.get(f'recall@{k}'))} / {_f((grp.get(f'ndcg@{k}') or {}).get('mean'))}")
                L.append(_row([lb, str(n)] + cells))
            gaps = []
            for m in have:
                gp = audit["models"][m]["users"][s][gname].get("gap", {})
                r, nd = gp.get(f"recall@{k}"), gp.get(f"ndcg@{k}")
                gaps.append(f"{_f(r['gap'])} [{_f(r['lo'], 3)}, {_f(r['hi'], 3)}] / {_f(nd['gap'])}" if r and nd else "n/a")
            L.append(_row(["**gap (best - worst)**", ""] + gaps))
            L.append("")
    # gap summary over settings
    rows = []
    for m in models:
        for s, per in audit["models"][m]["users"].items():
            cells = [m, s]
            for gname in audit["user_groupings"]:
                gp = per.get(gname, {}).get("gap", {})
                r, nd = gp.get(f"recall@{k}"), gp.get(f"ndcg@{k}")
                cells.append(f"{_f(r['gap'])} / {_f(nd['gap'])}" if r and nd else "n/a")
            rows.append(_row(cells))
    if rows:
        L += [f"### Best-worst user-group gap, Recall@{k} / NDCG@{k}", ""]
        L += _head(["model", "setting"] + list(audit["user_groupings"])) + rows + [""]
    # re-ranking
    rr = audit.get("rerank") or {}
    for m, cur in rr.items():
        if not cur.get("test"):
            continue
        ch = cur.get("chosen") or {}
        L += [f"### Exposure re-ranking: {m} (hybrid, {cur.get('report_phase', 'test')})", "",
              "score' = z_user(score) - lambda * z(log(1 + train popularity)) (`graphrec.rerank`). "
              f"Points chosen on validation: **accuracy** = the best validation Recall@{k}; among the lambdas "
              f"within {100 * cur.get('tolerance', 0):g}% of that recall, **gini** = the lowest validation exposure "
              "Gini and **calibrated** = the cold slot share closest to the cold share of validation positives"
              f" ({_f(next((p.get('cold_positive_share') for p in cur.get('val', [])), None))}). "
              "Test values are reported, never used for the choice. Serve a point with "
              "`graphrec recommend --exposure-penalty LAMBDA` (or `Recommender.recommend(..., exposure_penalty=LAMBDA)`).", ""]
        L += _head(["lambda", f"val Recall@{k}", f"val Gini@{k}", f"Recall@{k}", f"NDCG@{k}", f"Gini@{k}",
                    "cold slot share", "cold positive share"])
        val = {p["lam"]: p for p in cur.get("val", [])}
        for p in cur["test"]:
            marks = [c for c in CHOICES if ch.get(c) is not None and p["lam"] == ch[c]]
            v = val.get(p["lam"], {})
            L.append(_row([f"{p['lam']:g}" + (f" ({', '.join(marks)})" if marks else ""), _f(v.get(f"recall@{k}")),
                           _f(v.get(f"gini@{k}")), _f(p[f"recall@{k}"]), _f(p[f"ndcg@{k}"]), _f(p[f"gini@{k}"]),
                           _f(p[f"cold_slot_share@{k}"]), _f(p["cold_positive_share"])]))
        L.append("")
    if plots:
        L += [f"![{Path(p).stem}]({p})" for p in plots] + [""]
    return "\n".join(L)


def run_fairness(results: Mapping[str, Any], data: RecData, user_attrs, out_dir: str | Path, eval_cfg,
                 scorers: Mapping[str, Any] | None = None, log=print) -> str:
    """The evaluation-stage driver: audit, re-ranking curves, ``fairness.json``, plots; returns Markdown.

    Args:
        results: ``{model: EvalResult}`` of ``evaluate(scorer, data, "test", ..., per_user=True)``.
        data: the split.
        user_attrs: :func:`graphrec.data.users.load_user_attributes` of the prepared directory, or None.
        out_dir: the evaluation directory (writes ``fairness.json``, ``fairness_exposure.png``,
            ``fairness_users.png`` and ``fairness_rerank.png``).
        eval_cfg: :class:`~graphrec.evaluation.config.EvalConfig` (``beyond_k``,
            ``popularity_buckets``, ``activity_buckets``, ``fairness_min_group_users``,
            ``inheritance_neighbors``, bootstrap settings, ``rerank_lambdas``,
            ``rerank_tolerance``, ``rerank_models``, ``batch_size``).
        scorers: ``{model: scorer}``; enables ``rho_score`` and, for ``eval_cfg.rerank_models``,
            the re-ranking curves (lambda chosen on validation, curve reported on test).

    Returns:
        the report section (:func:`fairness_markdown`), plots linked by file name.
    """
    from graphrec.evaluation import plots

    ev = eval_cfg
    out = Path(out_dir)
    k = ev.beyond_k
    audit = fairness_audit(results, data, user_attrs, k, scorers=scorers, n_buckets=ev.popularity_buckets,
                           activity_buckets=ev.activity_buckets, min_group_users=ev.fairness_min_group_users,
                           inheritance_k=ev.inheritance_neighbors, samples=ev.bootstrap_samples, level=ev.ci_level,
                           seed=ev.bootstrap_seed, batch_size=ev.batch_size)
    rerank: dict[str, Any] = {}
    for m in ev.rerank_models:
        if not scorers or m not in scorers or not ev.rerank_lambdas:
            continue
        val = rerank_curve(scorers[m], data, ev.rerank_lambdas, "val", k, ev.batch_size)
        if not val:
            continue
        chosen = choose_lambdas(val, ev.rerank_tolerance, k)
        test = rerank_curve(scorers[m], data, ev.rerank_lambdas, "test", k, ev.batch_size)
        rerank[m] = {"val": val, "test": test, "chosen": chosen, "tolerance": ev.rerank_tolerance,
                     "select_phase": "val", "report_phase": "test"}
        log(f"[evaluate] exposure re-ranking {m}: lambdas chosen on validation: "
            + ", ".join(f"{c} {chosen[c]:g}" for c in CHOICES))
    audit["rerank"] = rerank
    write_fairness(out / "fairness.json", audit)
    pl = [plots.plot_exposure_vs_relevance(audit, out / "fairness_exposure.png"),
          plots.plot_user_group_quality(audit, out / "fairness_users.png")]
    if rerank:
        pl.append(plots.plot_rerank_curve(rerank, out / "fairness_rerank.png", k))
    return fairness_markdown(audit, plots=[p.name for p in pl])
