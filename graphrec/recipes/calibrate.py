"""Calibration: the weights of GraphRec's score terms and the cold/warm offset, chosen on validation.

After training (GNN, warm refinement, backbone) the model scores

* warm items ``w_g * cos(u_warm, v_i) + b_u . b_i`` (with a backbone; else the cosine alone),
* cold items ``cos(u, cold view_i) + w_t * (s / s_t) * b_u . transfer_i + w_p * (s / s_p) *
  profile_u . x_i + w_b * s * prior_i + w_l * (s / s_l) * walk_ui + delta``,

where ``s``, ``s_t``, ``s_p``, ``s_l`` are the spreads of the cosine, the backbone, the content-walk
and the learned-walk scores over warm items (so the weights are relative and comparable across
data sets). ``w_g`` is chosen on warm validation; the grid of ``(w_t, w_p, w_b)`` on cold
validation (``train.val_metric``), for each of text's shares in the content vectors ``x`` when
``train.calibrate_text_weight`` lists some (``model.content_text_weight``; the content-kNN baselines
tune the same share); then the learned walk is fitted on the chosen share's vectors
(:func:`graphrec.recipes.walk.fit_walk`) and the grid searched again with ``w_l`` of
``train.calibrate_walk`` (kept only when it beats the grid without the walk), and any weight best at its grid's largest value
is pushed further while that helps (``train.calibrate_extend``); then ``delta`` (units of ``s``) on hybrid validation, where warm and cold
items share one list (``train.calibrate_offset``, extended past its edge while the edge is best:
``train.calibrate_extend``). Only validation files are read. A data set without the validation
positives a step needs keeps that step's weights at their neutral value, with a note.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from graphrec.paths import ModelPaths
from graphrec.recipes.walk import fit_walk
from graphrec.training.checkpoint import load_checkpoint, save_checkpoint
from graphrec.training.config import TrainConfig

Validator = Callable[[Any, Sequence[str]], dict[str, float]]


@torch.no_grad()
def score_spreads(model, n_users: int = 512, seed: int = 0) -> tuple[float, float, float, float]:
    """Std of the GNN cosine, the content-walk, the backbone and the learned-walk scores over (sampled users x warm items)."""
    g = torch.Generator().manual_seed(seed)
    users = torch.randperm(model.num_users, generator=g)[:n_users]
    u, i = model.embeddings()
    warm = model.warm_index
    cos = (u[users] @ i[warm].T).std().item()
    prof = model.content_scores.profile_scores(users)[:, warm].std().item()
    bb = model.backbone.warm_scores(users)[:, warm].std().item() if model.backbone.ready else 1.0
    lw = model.walk.scores(users)[:, warm].std().item() if _has_walk(model) else 1.0
    return max(cos, 1e-6), max(prof, 1e-6), max(bb, 1e-6), max(lw, 1e-6)


def _has_walk(model) -> bool:
    return model.walk is not None and bool(model.walk.fitted)


class TermScores:
    """The model's score from precomputed term matrices, with whatever weights the model holds now.

    Calibration evaluates ~100 weightings; recomputing the content walk (users x D x items) for
    each would dominate, so the cold-item terms (content walk, CF transfer, learned walk) are
    computed once, on the non-warm columns only (the only ones they touch), and the weighted sum
    is formed per call; the GNN and backbone dot products (width d) are recomputed per batch. Memory:
    three (U, I - S) matrices, not (U, I) ones. ``score`` equals ``model.score`` for the model's
    current weights (tested).

    Shapes:
        score: users (B,) -> (B, I)
    """

    supports_cold = True

    @torch.no_grad()
    def __init__(self, model, batch: int = 2048) -> None:
        self.model, self.content_scores, self.backbone = model, model.content_scores, model.backbone
        self.u, self.i = model.embeddings()
        users = torch.arange(model.num_users, device=self.u.device)
        self.w, self.c = model.warm_index, torch.nonzero(~model.warm).flatten()  # (S,), (C,)
        self.warm_users = (torch.cat([model.warm_user_vectors(users[s:s + batch]) for s in range(0, model.num_users, batch)])
                           if bool(model.warm_user_residual.any()) else self.u)
        cs, bb, c = model.content_scores, model.backbone, self.c

        def cold_cols(f) -> torch.Tensor:  # (U, C) of a (B,) -> (B, I) term
            return torch.cat([f(users[s:s + batch])[:, c] for s in range(0, model.num_users, batch)])

        self.profile = cold_cols(cs.profile_scores)
        self.transfer = cold_cols(bb.transfer_scores) if bb.ready else None
        self.walk = model.walk if _has_walk(model) else None
        self.walk_scores = cold_cols(self.walk.scores) if self.walk is not None else None

    @torch.no_grad()
    def score(self, users: torch.Tensor) -> torch.Tensor:
        cs, bb, c, w = self.content_scores, self.backbone, self.c, self.w
        s = self.u[users] @ self.i.T  # (B, I) GNN cosine
        cold = s[:, c] + cs.profile_weight * self.profile[users] + (cs.prior_weight * cs.prior[c] + cs.cold_offset).unsqueeze(0)
        if self.transfer is not None:
            cold = cold + bb.transfer_weight * self.transfer[users]
        if self.walk is not None:
            cold = cold + self.walk.weight * self.walk_scores[users]
        s[:, c] = cold
        sw = self.warm_users[users] @ self.i[w].T  # (B, S)
        if bb.ready:
            sw = bb.warm_gnn_weight * sw + bb.user[users] @ bb.item[w].T
        s[:, w] = sw
        return s


def _best(points, evaluate):
    """The point of ``points`` with the highest ``evaluate(point)`` (first one on ties); every value."""
    rows = [(p, evaluate(p)) for p in points]
    best = max(rows, key=lambda r: r[1]) if rows else (None, None)
    return best, rows


def _extend_edges(pt: dict, v: float, grids: dict[str, Sequence[float]], extend: int,
                  evaluate: Callable[[dict], float | None], rows: list, tag: dict) -> tuple[dict, float]:
    """Each weight of ``pt`` that sits at its grid's largest (positive) value is doubled, at most
    ``extend`` times, while that strictly beats ``v``; every point tried is appended to ``rows``."""
    for key, grid in grids.items():
        top = max(grid, default=0.0)
        if top <= 0 or pt.get(key) != top:
            continue
        for _ in range(extend):
            cand = {**pt, key: pt[key] * 2.0}
            x = evaluate(cand)
            rows.append({**tag, **cand, "value": x})
            if x is None or x <= v:
                break
            pt, v = cand, x
    return pt, v


def _choose_offset(cfg: TrainConfig, evaluate: Callable[[dict], float | None], rec: dict[str, Any]) -> float:
    """The hybrid offset (:func:`_offset_search` on hybrid validation; 0 with a note without its positives)."""
    if not cfg.calibrate_offset:
        return 0.0
    if evaluate({"offset": 0.0}) is None:
        rec["notes"].append("no hybrid-validation positives: cold/warm offset left at 0")
        return 0.0
    pt, rows = _offset_search(cfg.calibrate_offset, cfg.calibrate_extend, evaluate)
    rec["offsets"] = [{**p, "value": v} for p, v in rows]
    return pt["offset"]


def _offset_search(grid: Sequence[float], extend: int, evaluate: Callable[[dict], float | None]):
    """The best offset of ``grid``, then, while the best is at an edge, one more offset beyond that edge
    (twice as far from 0; 1 past an edge at 0), at most ``extend`` times, stopping at the first that is
    not strictly better. Returns the best point and every ``(point, value)`` tried, in order."""
    rows = [({"offset": float(d)}, evaluate({"offset": float(d)})) for d in grid]

    def key(r):
        return float("-inf") if r[1] is None else r[1]

    for _ in range(extend):
        best = max(rows, key=key)
        tried = [p["offset"] for p, _ in rows]
        d = best[0]["offset"]
        if d not in (min(tried), max(tried)) or len(tried) < 2:
            break
        nxt = d * 2.0 if d != 0.0 else (-1.0 if d == min(tried) else 1.0)
        rows.append(({"offset": nxt}, evaluate({"offset": nxt})))
        if key(rows[-1]) <= key(best):
            break
    return max(rows, key=key)[0], rows


def _cold_search(points: list[dict], shares: list[float], refit: Callable[[float], None],
                 evaluate: Callable[[dict], float | None], rec: dict[str, Any]) -> tuple[dict, float]:
    """The best cold grid point, over each text share of ``shares`` (refitted in turn; none = the
    model's own); every point goes to ``rec["grid"]`` and the chosen share, refitted last, to ``rec["text_weight"]``."""
    best = None
    for tw in shares or [None]:
        if shares:
            refit(tw)
        (pt, v), rows = _best(points, evaluate)
        rec["grid"] += [{**({"text_weight": tw} if shares else {}), **p, "value": x} for p, x in rows]
        if best is None or v > best[2]:
            best = (tw, pt, v)
    tw, pt, v = best
    if shares:
        refit(tw)
        rec["text_weight"] = tw
    return pt, v


def calibrate(model, cfg: TrainConfig, validator: Validator) -> dict[str, Any]:
    """Choose ``w_g`` (warm validation), ``(w_t, w_p, w_b)`` (cold validation) and ``delta`` (hybrid
    validation); set them on ``model``.

    Returns:
        the record: the spreads, every grid point with its validation value, the choice, notes.
    """
    model.eval()
    cs, bb = model.content_scores, model.backbone
    if model.walk is not None and bool(model.walk.fitted):  # calibrated again: the walk is refitted with the share
        model.reset_walk()
    s, s_p, s_t, s_l = _rescaled_spreads(model, cfg.seed)
    metric = cfg.val_metric
    rec: dict[str, Any] = {"cos_spread": s, "profile_spread": s_p, "backbone_spread": s_t, "walk_spread": s_l,
                           "metric": metric, "grid": [], "offsets": [], "warm": [], "notes": []}
    w = {"gnn_warm": 1.0, "transfer": 0.0, "profile": 0.0, "prior": 0.0, "walk": 0.0, "offset": 0.0}

    def apply() -> None:
        cs.set_weights(w["profile"] * s / s_p, w["prior"] * s, w["offset"] * s)
        if _has_walk(model):
            model.walk.weight.fill_(w["walk"] * s / s_l)
        if bb.ready:
            bb.warm_gnn_weight.fill_(w["gnn_warm"] * s_t / s)
            bb.transfer_weight.fill_(w["transfer"] * s / s_t)
        model._eval_cache = None

    terms = TermScores(model)

    def refit(tw) -> None:  # text's share in the content vectors: new profile/prior terms, new spread
        nonlocal terms, s_p
        model.set_content_text_weight(tw)
        s_p = score_spreads(model, seed=cfg.seed)[1]
        terms = TermScores(model)

    def value(setting: str):
        def f(point: dict) -> float | None:
            w.update(point)
            apply()
            return validator(terms, (setting,)).get(f"{setting}/{metric}")
        return f

    apply()
    if bb.ready and value("warm")({}) is not None:
        (pt, _), rows = _best([{"gnn_warm": g} for g in cfg.calibrate_warm_gnn], value("warm"))
        rec["warm"] = [{**p, "value": v} for p, v in rows]
        w.update(pt)
    elif bb.ready:
        rec["notes"].append("no warm-validation positives: GNN weight on warm items left at 1")
    if value("cold")({}) is None:
        rec["notes"].append("no cold-validation positives: cold-item terms left at 0")
        apply()
        return rec
    base = value("cold")({"transfer": 0.0, "profile": 0.0, "prior": 0.0})
    transfers = cfg.calibrate_transfer if bb.ready else [0.0]
    points = [{"transfer": t, "profile": p, "prior": b}
              for t, p, b in itertools.product(transfers, cfg.calibrate_profile, cfg.calibrate_prior)]
    mods = model.knn_modalities
    shares = list(cfg.calibrate_text_weight) if "text" in mods and len(mods) > 1 else []
    if cfg.calibrate_text_weight and not shares:
        rec["notes"].append(f"calibrate_text_weight ignored: content terms use {mods} (needs text and another modality)")
    pt, best_v = _cold_search(points, shares, refit, value("cold"), rec)
    w.update(pt)
    best_pt = {**pt, "walk": 0.0}
    walk_rec = fit_walk(model, cfg, validator) if any(cfg.calibrate_walk) else None  # on the chosen share's vectors
    if walk_rec is not None:
        s_l = score_spreads(model, seed=cfg.seed)[3]
        rec.update(walk_spread=s_l, walk_fit=walk_rec)
        terms = TermScores(model)
        (pt, v), rows = _best([{**p, "walk": lw} for p in points for lw in cfg.calibrate_walk if lw > 0], value("cold"))
        rec["grid"] += [{**({"text_weight": rec["text_weight"]} if shares else {}), **p, "value": x} for p, x in rows]
        if pt is not None and v is not None and v > best_v:
            best_v, best_pt = v, pt
    grids = {"transfer": transfers, "profile": cfg.calibrate_profile, "prior": cfg.calibrate_prior,
             "walk": cfg.calibrate_walk if best_pt["walk"] > 0 else []}
    best_pt, best_v = _extend_edges(best_pt, best_v, grids, cfg.calibrate_extend, value("cold"),
                                    rec["grid"], {"text_weight": rec["text_weight"]} if shares else {})
    rec["profile_spread"] = s_p  # of the chosen share (the ablation rows read it)
    w.update(best_pt)
    w["offset"] = _choose_offset(cfg, value("hybrid"), rec)
    apply()
    rec.update({"chosen": dict(w), "cold_val": {"gnn_only": base, "calibrated": best_v}, "weights": _weights(model)})
    return rec


def _rescaled_spreads(model, seed: int) -> tuple[float, float, float, float]:
    """:func:`score_spreads`, after putting the backbone's scores on the GNN cosine's scale (so weights
    and offsets share one unit)."""
    s, s_p, s_t, s_l = score_spreads(model, seed=seed)
    if model.backbone.ready:
        with torch.no_grad():
            c = (s / s_t) ** 0.5
            model.backbone.user.mul_(c)
            model.backbone.item.mul_(c)
        s, s_p, s_t, s_l = score_spreads(model, seed=seed)
    return s, s_p, s_t, s_l


def _weights(model) -> dict[str, float]:
    """The calibrated scalars the model holds."""
    cs, bb = model.content_scores, model.backbone
    return {"profile_weight": float(cs.profile_weight), "prior_weight": float(cs.prior_weight),
            "walk_weight": float(model.walk.weight) if model.walk is not None else 0.0,
            "cold_offset": float(cs.cold_offset), "transfer_weight": float(bb.transfer_weight),
            "warm_gnn_weight": float(bb.warm_gnn_weight)}


def calibrate_checkpoint(model_dir: str | Path, data, validator: Validator, progress: bool = False) -> bool:
    """Calibrate the checkpoint in ``model_dir`` (rewritten with ``calibrated``; ``calibration.json``).

    Uses the checkpoint's own train config; does nothing when ``train.calibrate`` is off or the
    checkpoint is already calibrated. ``data`` is the split the model was trained on.
    """
    paths = ModelPaths(Path(model_dir))
    model, st = load_checkpoint(paths.checkpoint, return_state=True)
    cfg = TrainConfig.from_dict(st["train_config"])
    if not cfg.calibrate or st.get("calibrated"):
        return False
    rec = calibrate(model, cfg, validator)
    paths.calibration.write_text(json.dumps(rec, indent=1) + "\n")
    extra = {k: st[k] for k in ("warm_refined",) if k in st}
    save_checkpoint(paths.checkpoint, model, model.model_config, cfg, step=st["step"], epoch=st["epoch"],
                    best_metric=st["best_metric"], user_ids=st["user_ids"], item_ids=st["item_ids"],
                    fingerprints=st["fingerprints"], extra={**extra, "calibrated": True})
    if progress:
        c = rec.get("chosen", {})
        print(f"[calibrate] cold-val {cfg.val_metric} {rec.get('cold_val', {})}; chosen {c}")
    return True
