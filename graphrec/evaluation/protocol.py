"""Full-ranking cold-start evaluation: cold, warm, hybrid and cold-in-full-catalogue settings.

Every user with at least one positive in a setting ranks *all* of that setting's candidate
items (no sampled negatives; Krichene & Rendle, "On Sampled Metrics for Item Recommendation",
KDD 2020). Settings follow CLCRec (Wei et al., MM 2021) and ALDI (Huang et al., SIGIR 2023);
the table is in docs/DESIGN.md ("Evaluation protocol"):

============  ==============================  ==========================
setting       candidates ranked               positives
============  ==============================  ==========================
``cold``      cold items of the phase         cold edges of the phase
``warm``      warm items                      warm edges of the phase
``hybrid``    warm + cold items of the phase  warm + cold edges
``cold_full`` every catalogue item            cold edges of the phase
============  ==============================  ==========================

``phase="test"`` uses ``test_warm``/``test_cold`` and the cold-test items and excludes the
user's train *and* validation positives from every ranking (known history);
``phase="val"`` uses ``val_warm``/``val_cold`` and the cold-validation items and excludes
train positives only.

Speed: each batch of users is scored once (one ``scorer.score`` call, typically one matmul),
exclusions are written as ``-inf`` with one indexed assignment, and each setting is one
column gather plus one ``topk``. Metrics are computed once per setting from the stacked
top-K lists with :func:`graphrec.evaluation.metrics.ranking_metrics` (PyG's definitions).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, Sequence, runtime_checkable

import torch

from graphrec.data.dataset import RecData
from graphrec.evaluation.metrics import METRIC_NAMES, ranking_metrics

SETTINGS = ("cold", "warm", "hybrid", "cold_full")
TOPK_FILE_K = 50  # top-K files always hold at least this many ranks (issue 6: rank 1..50)


@runtime_checkable
class Scorer(Protocol):
    """Anything that can be evaluated: scores every catalogue item for a batch of users.

    Models that cannot score cold items set an attribute ``supports_cold = False``; they are
    evaluated in the ``warm`` setting only.

    Shapes:
        users: (B,) long user indices -> (B, num_items) float scores (higher is better).
    """

    def score(self, users: torch.Tensor) -> torch.Tensor: ...


@dataclass
class SettingSpec:
    """Candidates and positives of one setting in one phase.

    Shapes:
        candidates: (C,) item indices, sorted; positives: (2, P) ``[user, item]``, deduplicated.
    """

    name: str
    candidates: torch.Tensor
    positives: torch.Tensor
    all_items: bool = False


class EvalResult(dict):
    """``{setting: {"recall@20": float, ..., "n_users": int}}`` plus details as attributes.

    It *is* the plain metrics dict (JSON-serialisable as is); the extra attributes are:

    Attributes:
        per_user: ``None`` unless ``evaluate(per_user=True)``; else
            ``{setting: {"users": (n,) long user indices, "recall@20": (n,) float, ...}}``,
            row ``j`` of every array belongs to user ``users[j]`` (for bootstrap CIs).
        topk: ``{setting: (users (n,) long, items (n, Kmax) long)}``, ranked item indices,
            ``-1`` where fewer than Kmax candidates were rankable (for beyond-accuracy metrics).
        notes: ``{setting: reason}`` for every requested setting that was omitted.
        info: ``{setting: {"n_users", "n_candidates", "n_positives", "n_positives_excluded",
            "n_users_no_positive_ranked"}}``; ``n_positives_excluded`` counts positives that were also
            known history (train / val) and so could never be ranked.
        phase: ``"val"`` or ``"test"``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.per_user: dict[str, dict[str, torch.Tensor]] | None = None
        self.topk: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.notes: dict[str, str] = {}
        self.info: dict[str, dict[str, int]] = {}
        self.phase: str = "test"

    def as_dict(self) -> dict[str, dict[str, float]]:
        """A plain ``dict`` copy (no attributes), e.g. for ``json.dump``."""
        return {s: dict(m) for s, m in self.items()}


# ----------------------------------------------------------------------------- helpers
def _dedup(edges: torch.Tensor, num_items: int) -> torch.Tensor:
    """Unique ``(2, E)`` pairs sorted by (user, item)."""
    if edges.numel() == 0:
        return edges.reshape(2, 0).long()
    key = torch.unique(edges[0].long() * num_items + edges[1].long())  # sorted
    return torch.stack([key // num_items, key % num_items])


def _csr(edges: torch.Tensor, num_users: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CSR of already-sorted ``(2, E)`` edges: ``(indptr (U+1,), items (E,))``."""
    counts = torch.bincount(edges[0], minlength=num_users)
    indptr = torch.zeros(num_users + 1, dtype=torch.long)
    indptr[1:] = torch.cumsum(counts, 0)
    return indptr, edges[1]


def _gather(indptr: torch.Tensor, items: torch.Tensor, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows (position in ``users``) and items of the CSR lists of ``users``.

    Shapes:
        users: (B,) -> rows (E_b,), items (E_b,)
    """
    start, end = indptr[users], indptr[users + 1]
    counts = end - start  # (B,)
    rows = torch.repeat_interleave(torch.arange(users.numel()), counts)
    offsets = torch.cumsum(counts, 0) - counts  # (B,)
    pos = start[rows] + torch.arange(rows.numel()) - offsets[rows]
    return rows, items[pos]


def _in_sorted(keys: torch.Tensor, sorted_keys: torch.Tensor) -> torch.Tensor:
    """``torch.isin`` for a sorted reference (binary search; much faster here)."""
    if sorted_keys.numel() == 0:
        return torch.zeros_like(keys, dtype=torch.bool)
    pos = torch.searchsorted(sorted_keys, keys).clamp(max=sorted_keys.numel() - 1)
    return sorted_keys[pos] == keys


def exclusion_edges(data: RecData, phase: Literal["val", "test"]) -> torch.Tensor:
    """Known history excluded from every ranking: train (+ val_warm, val_cold at test time).

    Shapes:
        returns (2, E) ``[user, item]``, deduplicated and sorted.
    """
    _check_phase(phase)
    parts = [data.train] + ([data.val_warm, data.val_cold] if phase == "test" else [])
    return _dedup(torch.cat([p.long() for p in parts], 1), data.num_items)


def setting_specs(data: RecData, phase: Literal["val", "test"] = "test",
                  settings: Sequence[str] = SETTINGS) -> dict[str, SettingSpec]:
    """Candidates and positives of each setting (docs/DESIGN.md, "Evaluation protocol")."""
    _check_phase(phase)
    bad = [s for s in settings if s not in SETTINGS]
    if bad:
        raise ValueError(f"unknown setting(s) {bad}; expected some of {SETTINGS}")
    warm_pos = data.test_warm if phase == "test" else data.val_warm
    cold_pos = data.test_cold if phase == "test" else data.val_cold
    cold_items = data.cold_test_items if phase == "test" else data.cold_val_items
    n = data.num_items
    warm_items = torch.unique(data.warm_items.long())
    cold_items = torch.unique(cold_items.long())
    table = {
        "cold": (cold_items, cold_pos, False),
        "warm": (warm_items, warm_pos, False),
        "hybrid": (torch.unique(torch.cat([warm_items, cold_items])), torch.cat([warm_pos, cold_pos], 1), False),
        "cold_full": (torch.arange(n), cold_pos, True),
    }
    return {s: SettingSpec(s, table[s][0], _dedup(table[s][1].long(), n), table[s][2]) for s in settings}


def _check_phase(phase: str) -> None:
    if phase not in ("val", "test"):
        raise ValueError(f"phase must be 'val' or 'test', got {phase!r}")


def _check_scores(scores: torch.Tensor, batch: torch.Tensor, num_items: int, name: str) -> torch.Tensor:
    if not isinstance(scores, torch.Tensor):
        raise TypeError(f"{name}.score returned {type(scores).__name__}, expected a torch.Tensor")
    if tuple(scores.shape) != (batch.numel(), num_items):
        raise ValueError(f"{name}.score returned shape {tuple(scores.shape)} for {batch.numel()} users; "
                         f"expected ({batch.numel()}, {num_items}) (one score per catalogue item)")
    if torch.isnan(scores).any():
        bad = int(batch[torch.isnan(scores).any(1)][0])
        raise ValueError(f"{name}.score returned NaN scores (first for user index {bad})")
    return scores.detach().float().clone()  # clone: we write -inf into it


@dataclass
class _Prepared:
    """Per (data, phase) index structures, cached on the RecData object between calls."""

    key: tuple
    specs: dict[str, SettingSpec]
    excl_indptr: torch.Tensor
    excl_items: torch.Tensor
    excl_keys: torch.Tensor  # sorted user * N + item
    pos_csr: dict[str, tuple[torch.Tensor, torch.Tensor]]
    pos_count: dict[str, torch.Tensor]


def _data_key(data: RecData) -> tuple:
    ts = [data.train, data.val_warm, data.test_warm, data.val_cold, data.test_cold,
          data.warm_items, data.cold_val_items, data.cold_test_items]
    return (data.num_users, data.num_items) + tuple((t.data_ptr(), tuple(t.shape), t._version) for t in ts)


def _prepared(data: RecData, phase: str) -> _Prepared:
    """Setting specs, exclusion CSR and positive CSRs; cached on ``data`` (validation is
    called every epoch), invalidated when any split tensor is replaced or modified in place."""
    _check_phase(phase)
    cache = data.__dict__.setdefault("_graphrec_eval_cache", {})
    key = _data_key(data)
    hit = cache.get(phase)
    if hit is not None and hit.key == key:
        return hit
    U, N = data.num_users, data.num_items
    specs = setting_specs(data, phase, SETTINGS)
    excl = exclusion_edges(data, phase)
    indptr, items = _csr(excl, U)
    pos_csr = {s: _csr(sp.positives, U) for s, sp in specs.items()}
    pos_count = {s: c[0][1:] - c[0][:-1] for s, c in pos_csr.items()}  # (U,) each
    prep = _Prepared(key, specs, indptr, items, excl[0] * N + excl[1], pos_csr, pos_count)
    cache[phase] = prep
    return prep


# ----------------------------------------------------------------------------- main entry
def evaluate(
    scorer: Scorer,
    data: RecData,
    phase: Literal["val", "test"] = "test",
    settings: Sequence[str] = SETTINGS,
    ks: Sequence[int] = (10, 20, 50),
    batch_size: int = 1024,
    topk_dir: Path | None = None,
    model_name: str | None = None,
    per_user: bool = False,
    *,
    progress: bool = False,
    topk_k: int = TOPK_FILE_K,
) -> EvalResult:
    """Full-ranking evaluation of ``scorer`` in each setting.

    Args:
        scorer: implements :class:`Scorer`; ``supports_cold = False`` restricts it to ``warm``
            (the other settings are omitted and ``result.notes`` says why). A
            ``torch.nn.Module`` is put in eval mode for the call and restored afterwards.
        data: the split in index space.
        phase: ``"val"`` (val files, cold-val items, exclude train) or ``"test"`` (test files,
            cold-test items, exclude train + validation positives).
        settings: subset of ``("cold", "warm", "hybrid", "cold_full")``.
        ks: metric cut-offs.
        batch_size: users scored per ``scorer.score`` call.
        topk_dir: if given, writes ``topk_dir/<model_name>_<setting>.csv`` with columns
            ``user_id,item_id,rank`` (original ids, rank 1..max(max(ks), 50)).
        model_name: name used in file names and error messages (required with ``topk_dir``).
        per_user: keep per-user metric arrays in ``result.per_user`` (for bootstrap CIs).
        progress: show a tqdm bar over user batches.
        topk_k: ranks kept in top-K files (at least ``max(ks)``; default 50).

    Returns:
        :class:`EvalResult`, a dict ``{setting: {"recall@20": .., "ndcg@20": .., "hit@20": ..,
        "precision@20": .., "mrr@20": .., ..., "n_users": int}}`` with details as attributes.

    Shapes:
        scorer.score: (B,) -> (B, num_items).
    """
    from tqdm.auto import tqdm

    name = model_name or type(scorer).__name__
    if topk_dir is not None and not model_name:
        raise ValueError("evaluate(topk_dir=...) needs model_name for the file names")
    if not ks or any(int(k) < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {list(ks)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ks = sorted(set(int(k) for k in ks))
    kmax = max(ks[-1], topk_k) if topk_dir is not None else ks[-1]

    result = EvalResult()
    result.phase = phase
    prep = _prepared(data, phase)
    bad = [s for s in settings if s not in SETTINGS]
    if bad:
        raise ValueError(f"unknown setting(s) {bad}; expected some of {SETTINGS}")
    specs = {s: prep.specs[s] for s in settings}
    if getattr(scorer, "supports_cold", True) is False:
        for s in list(specs):
            if s != "warm":
                result.notes[s] = f"omitted: {name} cannot score cold items (supports_cold=False)"
                del specs[s]
    U, N = data.num_users, data.num_items
    ex_indptr, ex_items, excl_keys = prep.excl_indptr, prep.excl_items, prep.excl_keys
    pos_csr, pos_count = prep.pos_csr, prep.pos_count
    for s in list(specs):
        if prep.specs[s].positives.size(1) == 0:
            result.notes[s] = f"omitted: no {phase} positives in setting {s!r}"
            del specs[s]
    if not specs:
        return result

    needed = torch.zeros(U, dtype=torch.bool)
    for s in specs:
        needed |= pos_count[s] > 0
    eval_users = needed.nonzero().view(-1)
    tops: dict[str, list[torch.Tensor]] = {s: [] for s in specs}
    users_of: dict[str, list[torch.Tensor]] = {s: [] for s in specs}

    was_training = isinstance(scorer, torch.nn.Module) and scorer.training
    if isinstance(scorer, torch.nn.Module):
        scorer.eval()
    try:
        with torch.no_grad():
            batches = list(torch.split(eval_users, batch_size))
            for batch in tqdm(batches, desc=f"eval {name} ({phase})", disable=not progress, leave=False):
                scores = _check_scores(scorer.score(batch), batch, N, name)  # (B, N)
                r, it = _gather(ex_indptr, ex_items, batch)
                scores.view(-1).index_fill_(0, r * N + it, float("-inf"))  # known history
                for s, spec in specs.items():
                    has = pos_count[s][batch] > 0  # (B,)
                    n_has = int(has.sum())
                    if n_has == 0:
                        continue
                    sub = scores if n_has == has.numel() else scores[has]  # (b, N)
                    if not spec.all_items:
                        sub = sub.index_select(1, spec.candidates)  # (b, C)
                    k_eff = min(kmax, sub.size(1))
                    vals, idx = sub.topk(k_eff, dim=1)  # (b, k_eff)
                    top = idx if spec.all_items else spec.candidates[idx]
                    top = top.masked_fill(vals == float("-inf"), -1)
                    if k_eff < kmax:
                        top = torch.cat([top, top.new_full((top.size(0), kmax - k_eff), -1)], 1)
                    tops[s].append(top)
                    users_of[s].append(batch[has])
    finally:
        if was_training:
            scorer.train()

    if per_user:
        result.per_user = {}
    for s, spec in specs.items():
        users = torch.cat(users_of[s])  # (n,)
        top = torch.cat(tops[s])  # (n, kmax)
        rows, items = _gather(*pos_csr[s], users)
        vals = ranking_metrics(top, torch.stack([rows, items]), ks, METRIC_NAMES, pad_index=-1)
        result[s] = {m: float(v.double().mean()) for m, v in vals.items()}
        result[s]["n_users"] = int(users.numel())
        result.topk[s] = (users, top)
        pkeys = spec.positives[0] * N + spec.positives[1]
        n_excl = int(_in_sorted(pkeys, excl_keys).sum())
        n_ranked = torch.zeros(users.numel(), dtype=torch.long)
        n_ranked.scatter_add_(0, rows, (~_in_sorted(users[rows] * N + items, excl_keys)).long())
        result.info[s] = {"n_users": int(users.numel()), "n_candidates": int(spec.candidates.numel()),
                          "n_positives": int(spec.positives.size(1)), "n_positives_excluded": n_excl,
                          "n_users_no_positive_ranked": int((n_ranked == 0).sum())}
        if per_user:
            result.per_user[s] = {"users": users, **vals}
        if topk_dir is not None:
            write_topk(Path(topk_dir) / f"{model_name}_{s}.csv", data, users, top)
    return result


def write_topk(path: Path, data: RecData, users: torch.Tensor, topk: torch.Tensor) -> Path:
    """Write ranked lists as CSV ``user_id,item_id,rank`` with original ids, rank from 1.

    Padding entries (``-1``) are not written.

    Shapes:
        users: (n,); topk: (n, K).
    """
    import numpy as np
    import pandas as pd

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    top = topk.numpy()
    valid = top >= 0
    u_idx = np.broadcast_to(users.numpy()[:, None], top.shape)[valid]
    ranks = np.broadcast_to(np.arange(1, top.shape[1] + 1)[None, :], top.shape)[valid]
    uid = np.asarray(data.user_ids, dtype=object)
    iid = np.asarray(data.item_ids, dtype=object)
    pd.DataFrame({"user_id": uid[u_idx], "item_id": iid[top[valid]], "rank": ranks}).to_csv(path, index=False)
    return path


def validation_score(scorer: Scorer, data: RecData, setting: str = "cold", metric: str = "ndcg@20",
                     batch_size: int = 1024) -> float:
    """One validation number for early stopping / tuning (``phase="val"``, one setting, one K).

    Raises:
        ValueError: if ``metric`` is malformed, or the setting cannot be evaluated for this
            scorer (e.g. ``"cold"`` with ``supports_cold = False``) or has no positives.
    """
    try:
        mname, k = metric.split("@")
        k = int(k)
    except ValueError:
        raise ValueError(f"metric must look like 'ndcg@20', got {metric!r}") from None
    if mname not in METRIC_NAMES:
        raise ValueError(f"unknown metric {mname!r}; expected one of {METRIC_NAMES}")
    res = evaluate(scorer, data, phase="val", settings=(setting,), ks=(k,), batch_size=batch_size)
    if setting not in res:
        raise ValueError(f"validation_score: setting {setting!r} not evaluated: {res.notes.get(setting)}")
    return res[setting][metric]
