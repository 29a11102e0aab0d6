"""Full-ranking cold-start evaluation: cold, warm, hybrid and cold-in-full-catalogue settings.

Every user with at least one positive in a setting ranks *all* of that setting's candidate
items (no sampled negatives; Krichene & Rendle, "On Sampled Metrics for Item Recommendation",
KDD 2020). Settings follow CLCRec (Wei et al., MM 2021) and ALDI (Huang et al., SIGIR 2023);
their candidates, positives and exclusions are built by :class:`graphrec.evaluation.index.EvalIndex`
(table in docs/DESIGN.md, "Evaluation protocol").

Speed: each batch of users is scored once (one ``scorer.score`` call, typically one matmul),
exclusions are written as ``-inf`` with one indexed assignment, and each setting is one
column gather plus one ``topk`` (:func:`rank_topk`). Metrics are computed once per setting from
the stacked top-K lists with :func:`graphrec.evaluation.metrics.ranking_metrics` (PyG's
definitions). Writing the top-K files is the caller's job (:mod:`graphrec.evaluation.topk_io`).
"""

from __future__ import annotations

from typing import Callable, Literal, Protocol, Sequence, runtime_checkable

import torch

from graphrec.data.dataset import RecData
from graphrec.data.edges import gather_rows, in_sorted
from graphrec.evaluation.index import SETTINGS, EvalIndex, SettingSpec, check_phase, check_settings
from graphrec.evaluation.metrics import METRIC_NAMES, ranking_metrics

TOPK_FILE_K = 50  # top-K lists always hold at least this many ranks (issue 6: rank 1..50)


@runtime_checkable
class Scorer(Protocol):
    """Anything that can be evaluated: scores every catalogue item for a batch of users.

    Models that cannot score cold items set an attribute ``supports_cold = False``; they are
    evaluated in the ``warm`` setting only.

    Shapes:
        users: (B,) long user indices -> (B, num_items) float scores (higher is better).
    """

    def score(self, users: torch.Tensor) -> torch.Tensor: ...


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


# ----------------------------------------------------------------------------- ranking
def _check_scores(scores: torch.Tensor, batch: torch.Tensor, num_items: int, name: str) -> torch.Tensor:
    if not isinstance(scores, torch.Tensor):
        raise TypeError(f"{name}.score returned {type(scores).__name__}, expected a torch.Tensor")
    if tuple(scores.shape) != (batch.numel(), num_items):
        raise ValueError(f"{name}.score returned shape {tuple(scores.shape)} for {batch.numel()} users; "
                         f"expected ({batch.numel()}, {num_items}) (one score per catalogue item)")
    if torch.isnan(scores).any():
        bad = int(batch[torch.isnan(scores).any(1).cpu()][0])
        raise ValueError(f"{name}.score returned NaN scores (first for user index {bad})")
    return scores.detach().float().clone(memory_format=torch.contiguous_format)  # a copy: we write -inf into it


# ----------------------------------------------------------------------------- main entry
def rank_topk(scorer: Scorer, index: EvalIndex, specs: dict[str, SettingSpec], kmax: int,
              batch_size: int = 1024, name: str = "scorer", progress: bool = False) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Top-``kmax`` ranked candidates of every user with a positive, per setting.

    Each batch of users is scored once; known history is set to ``-inf``; each setting takes
    its candidate columns and one ``topk``. Ranks that only reached excluded items are ``-1``.
    The batch goes to the scorer's device (:func:`graphrec.devices.scorer_device`); masking and
    ``topk`` run there too, and only the top-K lists come back to the CPU.

    Returns:
        ``{setting: (users (n,) long, items (n, kmax) long)}``.

    Shapes:
        scorer.score: (B,) -> (B, num_items)
    """
    from tqdm.auto import tqdm

    from graphrec.devices import scorer_device

    U, N = index.num_users, index.num_items
    dev = scorer_device(scorer)
    cands = {s: spec.candidates for s, spec in specs.items()}  # moved once to where the scores are
    needed = torch.zeros(U, dtype=torch.bool)
    for s in specs:
        needed |= index.pos_count[s] > 0
    eval_users = needed.nonzero().view(-1)
    tops: dict[str, list[torch.Tensor]] = {s: [] for s in specs}
    users_of: dict[str, list[torch.Tensor]] = {s: [] for s in specs}
    was_training = isinstance(scorer, torch.nn.Module) and scorer.training
    if isinstance(scorer, torch.nn.Module):
        scorer.eval()
    try:
        with torch.no_grad():
            batches = list(torch.split(eval_users, batch_size))
            for batch in tqdm(batches, desc=f"eval {name} ({index.phase})", disable=not progress, leave=False):
                scores = _check_scores(scorer.score(batch.to(dev)), batch, N, name)  # (B, N) on dev
                r, it = gather_rows(index.excl_indptr, index.excl_items, batch)
                scores.view(-1).index_fill_(0, (r * N + it).to(scores.device), float("-inf"))  # known history
                for s, spec in specs.items():
                    has = index.pos_count[s][batch] > 0  # (B,)
                    n_has = int(has.sum())
                    if n_has == 0:
                        continue
                    sub = scores if n_has == has.numel() else scores[has.to(scores.device)]  # (b, N)
                    if cands[s].device != scores.device:
                        cands[s] = cands[s].to(scores.device)
                    if not spec.all_items:
                        sub = sub.index_select(1, cands[s])  # (b, C)
                    k_eff = min(kmax, sub.size(1))
                    vals, idx = sub.topk(k_eff, dim=1)  # (b, k_eff)
                    top = idx if spec.all_items else cands[s][idx]
                    top = top.masked_fill(vals == float("-inf"), -1).cpu()
                    if k_eff < kmax:
                        top = torch.cat([top, top.new_full((top.size(0), kmax - k_eff), -1)], 1)
                    tops[s].append(top)
                    users_of[s].append(batch[has])
    finally:
        if was_training:
            scorer.train()
    return {s: (torch.cat(users_of[s]), torch.cat(tops[s])) for s in specs}


def _setting_info(index: EvalIndex, spec: SettingSpec, users: torch.Tensor, rows: torch.Tensor,
                  items: torch.Tensor) -> dict[str, int]:
    N = index.num_items
    pkeys = spec.positives[0] * N + spec.positives[1]
    n_excl = int(in_sorted(pkeys, index.excl_keys).sum())
    n_ranked = torch.zeros(users.numel(), dtype=torch.long)
    n_ranked.scatter_add_(0, rows, (~in_sorted(users[rows] * N + items, index.excl_keys)).long())
    return {"n_users": int(users.numel()), "n_candidates": int(spec.candidates.numel()),
            "n_positives": int(spec.positives.size(1)), "n_positives_excluded": n_excl,
            "n_users_no_positive_ranked": int((n_ranked == 0).sum())}


def evaluate(
    scorer: Scorer,
    data: RecData,
    phase: Literal["val", "test"] = "test",
    settings: Sequence[str] = SETTINGS,
    ks: Sequence[int] = (10, 20, 50),
    batch_size: int = 1024,
    per_user: bool = False,
    *,
    index: EvalIndex | None = None,
    model_name: str | None = None,
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
        per_user: keep per-user metric arrays in ``result.per_user`` (for bootstrap CIs).
        index: the :class:`EvalIndex` of ``(data, phase)`` (built when not given; pass it when
            evaluating repeatedly, e.g. every epoch).
        model_name: name used in messages.
        progress: show a tqdm bar over user batches.
        topk_k: ranks kept in ``result.topk`` (at least ``max(ks)``; default 50, what the
            top-K files hold: :func:`graphrec.evaluation.topk_io.write_topk_files`).

    Returns:
        :class:`EvalResult`, a dict ``{setting: {"recall@20": .., "ndcg@20": .., "hit@20": ..,
        "precision@20": .., "mrr@20": .., ..., "n_users": int}}`` with details as attributes.

    Shapes:
        scorer.score: (B,) -> (B, num_items).
    """
    name = model_name or type(scorer).__name__
    check_phase(phase)
    check_settings(settings)
    if not ks or any(int(k) < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {list(ks)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ks = sorted(set(int(k) for k in ks))
    kmax = max(ks[-1], topk_k)
    if index is None:
        index = EvalIndex.build(data, phase)
    elif index.phase != phase or (index.num_users, index.num_items) != (data.num_users, data.num_items):
        raise ValueError(f"evaluate: the index was built for phase {index.phase!r} and "
                         f"{index.num_users}x{index.num_items}, not {phase!r} and {data.num_users}x{data.num_items}")
    result = EvalResult()
    result.phase = phase
    specs = {s: index.specs[s] for s in settings}
    if getattr(scorer, "supports_cold", True) is False:
        for s in list(specs):
            if s != "warm":
                result.notes[s] = f"omitted: {name} cannot score cold items (supports_cold=False)"
                del specs[s]
    for s in list(specs):
        if specs[s].positives.size(1) == 0:
            result.notes[s] = f"omitted: no {phase} positives in setting {s!r}"
            del specs[s]
    if not specs:
        return result
    ranked = rank_topk(scorer, index, specs, kmax, batch_size, name, progress)
    if per_user:
        result.per_user = {}
    for s, spec in specs.items():
        users, top = ranked[s]
        rows, items = gather_rows(*index.pos_csr[s], users)
        vals = ranking_metrics(top, torch.stack([rows, items]), ks, METRIC_NAMES, pad_index=-1)
        result[s] = {m: float(v.double().mean()) for m, v in vals.items()}
        result[s]["n_users"] = int(users.numel())
        result.topk[s] = (users, top)
        result.info[s] = _setting_info(index, spec, users, rows, items)
        if per_user:
            result.per_user[s] = {"users": users, **vals}
    return result


def _parse_metric(metric: str) -> tuple[str, int]:
    try:
        mname, k = metric.split("@")
        k = int(k)
    except ValueError:
        raise ValueError(f"metric must look like 'ndcg@20', got {metric!r}") from None
    if mname not in METRIC_NAMES:
        raise ValueError(f"unknown metric {mname!r}; expected one of {METRIC_NAMES}")
    return mname, k


def validation_score(scorer: Scorer, data: RecData, setting: str = "cold", metric: str = "ndcg@20",
                     batch_size: int = 1024, index: EvalIndex | None = None) -> float:
    """One validation number for early stopping / tuning (``phase="val"``, one setting, one K).

    Raises:
        ValueError: if ``metric`` is malformed, or the setting cannot be evaluated for this
            scorer (e.g. ``"cold"`` with ``supports_cold = False``) or has no positives.
    """
    _, k = _parse_metric(metric)
    res = evaluate(scorer, data, phase="val", settings=(setting,), ks=(k,), batch_size=batch_size, index=index, topk_k=k)
    if setting not in res:
        raise ValueError(f"validation_score: setting {setting!r} not evaluated: {res.notes.get(setting)}")
    return res[setting][metric]


#: ``validator(scorer, settings) -> {"<setting>/<metric>": value}`` (validation phase).
Validator = Callable[[Scorer, Sequence[str]], dict[str, float]]


def make_validator(data: RecData, ks: Sequence[int] = (20,), batch_size: int = 1024) -> Validator:
    """A :data:`Validator` over ``data``'s validation files (the index is built once).

    Training code receives validators instead of importing the evaluation layer; settings a
    scorer cannot be evaluated in are left out of the returned dict.
    """
    index = EvalIndex.build(data, "val")
    ks = tuple(sorted(set(int(k) for k in ks)))

    def validate(scorer: Scorer, settings: Sequence[str]) -> dict[str, float]:
        res = evaluate(scorer, data, "val", tuple(dict.fromkeys(settings)), ks, batch_size, index=index, topk_k=max(ks))
        return {f"{s}/{m}": float(v) for s, r in res.items() for m, v in r.items() if "@" in m}

    return validate
