"""One generic training loop for GraphRec: batches of train edges, named loss terms, validation,
early stopping on cold-validation NDCG@20 (warm-validation reported), checkpoints, resume,
TensorBoard scalars and tqdm progress."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import yaml

from graphrec.data.dataset import RecData
from graphrec.nn import GraphRec, ModelConfig, build_model
from graphrec.training.checkpoint import load_checkpoint, save_checkpoint
from graphrec.training.config import TrainConfig
from graphrec.training.sampling import NegativeSampler
from graphrec.training.seed import rng_state, seed_everything, set_rng_state

ValFn = Callable[[GraphRec, RecData], dict[str, float]]


def default_validation(setting: str, metric: str) -> ValFn:
    """Validation with :func:`graphrec.evaluation.protocol.evaluate` (phase ``val``).

    Returns ``{"<setting>/<metric>": value}`` for the early-stopping setting and ``warm``
    (recall@20 and ndcg@20 of each).
    """

    def fn(model: GraphRec, data: RecData) -> dict[str, float]:
        from graphrec.evaluation.protocol import evaluate

        k = int(metric.split("@")[1])
        settings = tuple(dict.fromkeys([setting, "warm"]))
        res = evaluate(model, data, phase="val", settings=settings, ks=tuple(sorted({k, 20})))
        out = {}
        for s in settings:
            if s in res:
                for name, v in res[s].items():
                    if "@" in name:
                        out[f"{s}/{name}"] = float(v)
        return out

    return fn


def model_features(data: RecData, modalities: list[str]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{name: (x, mask)}`` for the requested feature sets of a RecData (error names missing ones)."""
    missing = [m for m in modalities if m not in data.features]
    if missing:
        raise KeyError(f"RecData has no feature sets {missing} (loaded: {sorted(data.features)}); check model.modalities")
    return {m: (data.features[m].x, data.features[m].mask) for m in modalities}


def _genre_targets_or_reason(data: RecData, model_cfg: ModelConfig, train_cfg: TrainConfig):
    """Genre targets for the masked-genre term, or why the term cannot apply to ``data``."""
    from graphrec.data.genres import genre_targets

    if data.items is None or "genres" not in data.items.columns:
        return None, None, "the items table has no `genres` column"
    t, mask, _, _ = genre_targets(data.items)
    if t.shape[1] == 0 or not bool(mask.any()):
        return None, None, "no item has a genre"
    visible = [m for m in model_cfg.modalities if m not in train_cfg.genre_hidden]
    if not visible:
        return None, None, (f"train.genre_hidden {train_cfg.genre_hidden} hides every modality the model has "
                            f"({model_cfg.modalities}), so genres would be predicted from nothing")
    return t, mask, ""


def user_history_views(data: RecData, cfg: TrainConfig) -> tuple[tuple[torch.Tensor, torch.Tensor] | None,
                                                                    tuple[torch.Tensor, torch.Tensor] | None]:
    """The train histories the Barlow Twins user term needs: ``(csr, None)`` for the set view,
    ``(None, (recent_histories, lengths))`` for the sequence view (see ``train.user_view``)."""
    from graphrec.nn.sequence import recent_histories, user_view_kind

    kind = user_view_kind(data.train_timestamps) if cfg.user_view == "auto" else cfg.user_view
    if kind == "set":
        return data.csr("train"), None
    if user_view_kind(data.train_timestamps) != "sequence":
        raise ValueError("train.user_view = 'sequence' needs timestamps on every train interaction; this data has none "
                         "(give the interactions a timestamp column: data.timestamp_col) - use 'auto' or 'set'")
    return None, recent_histories(data.train, data.train_timestamps, data.num_users, cfg.history_max or 64)


def train_graphrec(
    data: RecData,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    out_dir: str | Path,
    progress: bool = True,
    val_fn: ValFn | None = None,
    resume: bool = False,
) -> tuple[GraphRec, list[dict]]:
    """Train GraphRec on ``data.train`` with early stopping on validation.

    Writes ``out_dir/config.yaml``, ``out_dir/checkpoint.pt`` (best validation model),
    ``out_dir/last.pt`` (latest state, for ``resume``), ``out_dir/history.json`` and
    TensorBoard scalars under ``out_dir/tb``.

    Args:
        data: the split; only ``data.train`` edges are used for training/graph/negatives.
        model_cfg, train_cfg: configuration sections.
        out_dir: run directory.
        progress: show tqdm bars.
        val_fn: ``(model, data) -> {"setting/metric": value}``; default evaluates the
            validation phase (``train_cfg.val_setting`` and warm).
        resume: continue from ``out_dir/last.pt`` if it exists.

    Returns:
        ``(model, history)``: the best-on-validation model (eval mode) and one dict per epoch.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if train_cfg.num_threads > 0:
        torch.set_num_threads(train_cfg.num_threads)
    (out_dir / "config.yaml").write_text(yaml.safe_dump({"model": model_cfg.to_dict(), "train": train_cfg.to_dict()}, sort_keys=False))
    gen = seed_everything(train_cfg.seed)

    mods = list(dict.fromkeys(model_cfg.modalities + model_cfg.knn_modalities))
    feats = model_features(data, mods)
    model = build_model(model_cfg, data.num_users, data.num_items, {m: f[0].shape[1] for m, f in feats.items()})
    model.set_graph(data.train, feats)
    from graphrec.task import GraphRecTask

    genre_t = genre_m = None
    if train_cfg.weight("genre") > 0:
        genre_t, genre_m, why_not = _genre_targets_or_reason(data, model_cfg, train_cfg)
        if why_not:
            # the term cannot apply to this data set: say so and train without it (never silently)
            msg = f"[train] loss_weights.genre = {train_cfg.weight('genre')} is switched off for this run: {why_not}"
            print(msg, file=sys.stderr)
            with open(out_dir / "notes.txt", "a") as fh:
                fh.write(msg + "\n")
            train_cfg = train_cfg.replace(loss_weights={**train_cfg.loss_weights, "genre": 0.0})
    train_csr = train_seq = None
    if train_cfg.weight("barlow") > 0 and "user" in train_cfg.barlow_views:
        train_csr, train_seq = user_history_views(data, train_cfg)
        if progress or train_seq is not None:
            print(f"[train] Barlow Twins user view: "
                  + (f"sequence ({train_cfg.sequence_encoder} over the last {train_seq[0].shape[1]} train items in time order)"
                     if train_seq is not None else "set (random subsets of the train history; no timestamps)"))
    task = GraphRecTask(model, train_cfg, genre_t, genre_m, train_csr, train_seq)
    from graphrec.training.config import AUX_TERMS
    from graphrec.training.weighting import LossWeighter, plot_weight_trajectories

    weighter = LossWeighter(dict(train_cfg.loss_weights), [t for t in AUX_TERMS if t in train_cfg.loss_weights],
                            mode=train_cfg.loss_weighting, down=train_cfg.weighting_down, up=train_cfg.weighting_up)
    opt = torch.optim.Adam(task.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    sampler = NegativeSampler(data.train, data.num_items)
    val_fn = val_fn or default_validation(train_cfg.val_setting, train_cfg.val_metric)
    key = f"{train_cfg.val_setting}/{train_cfg.val_metric}"
    fingerprints = {n: f.fingerprint for n, f in data.features.items() if n in mods}
    ckpt_meta = dict(user_ids=data.user_ids, item_ids=data.item_ids, fingerprints=fingerprints)

    history: list[dict] = []
    best, best_epoch, bad, step, start_epoch = None, -1, 0, 0, 0
    last_path = out_dir / "last.pt"
    if resume and last_path.exists():
        _, st = load_checkpoint(last_path, return_state=True)
        task.load_state_dict(st["task"])
        opt.load_state_dict(st["optimizer"])
        set_rng_state(st["rng"], gen)
        history, best, best_epoch, bad = st["history"], st["best_metric"], st["best_epoch"], st["bad"]
        step, start_epoch = st["step"], st["epoch"] + 1
        if "weighter" in st:
            weighter.load_state_dict(st["weighter"])
            task.weights = dict(weighter.weights)

    writer = None
    if train_cfg.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out_dir / "tb"))

    E = data.train.shape[1]
    n_steps = -(-E // train_cfg.batch_size)
    if train_cfg.steps_per_epoch:
        n_steps = min(n_steps, train_cfg.steps_per_epoch)
    for epoch in range(start_epoch, train_cfg.epochs):
        if bad >= max(train_cfg.patience, 1):
            break
        task.train()
        t0 = time.perf_counter()
        perm = torch.randperm(E, generator=gen)
        sums: dict[str, float] = {}
        bar = tqdm(range(n_steps), desc=f"epoch {epoch}", disable=not progress, leave=False)
        for b in bar:
            idx = perm[b * train_cfg.batch_size : (b + 1) * train_cfg.batch_size]
            users, pos = data.train[0, idx], data.train[1, idx]
            neg, valid = sampler.sample_shared(users, train_cfg.num_negatives, gen)
            terms = task(users, pos, neg, valid)
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            if train_cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(task.parameters(), train_cfg.grad_clip)
            opt.step()
            step += 1
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            if writer is not None:
                for k, v in terms.items():
                    writer.add_scalar(f"train/{k}", float(v.detach()), step)
            bar.set_postfix(loss=f"{float(terms['loss'].detach()):.4f}")
        rec = {"epoch": epoch, "step": step, "seconds": time.perf_counter() - t0}
        rec.update({k: v / n_steps for k, v in sums.items()})
        rec["mix"] = float(torch.sigmoid(model.mix_logit.detach()))
        if (epoch + 1) % train_cfg.eval_every == 0 or epoch == train_cfg.epochs - 1:
            model.eval()
            metrics = val_fn(model, data)
            model.train()
            rec.update({f"val/{k}": v for k, v in metrics.items()})
            if key not in metrics:
                raise ValueError(f"validation returned no {key!r} (got {sorted(metrics)})")
            if best is None or metrics[key] > best:
                best, best_epoch, bad = metrics[key], epoch, 0
                save_checkpoint(out_dir / "checkpoint.pt", model, model_cfg, train_cfg, step=step, epoch=epoch,
                                best_metric=best, **ckpt_meta)
            else:
                bad += 1
            task.weights = weighter.update(metrics[key], {k: v for k, v in rec.items() if k.endswith("_loss")}, step, epoch)
            rec["weights"] = dict(task.weights)
            if writer is not None:
                for k, v in metrics.items():
                    writer.add_scalar(f"val/{k}", v, step)
                for k, v in task.weights.items():
                    if weighter.initial.get(k, 0) > 0:
                        writer.add_scalar(f"weights/{k}", v, step)
        if progress:
            shown = {k: round(v, 4) for k, v in rec.items() if k.endswith("loss") or k.startswith("val/")}
            tqdm.write(f"epoch {epoch} ({rec['seconds']:.1f}s) {shown}")
        history.append(rec)
        save_checkpoint(last_path, model, model_cfg, train_cfg, step=step, epoch=epoch, best_metric=best, **ckpt_meta,
                        extra={"task": task.state_dict(), "optimizer": opt.state_dict(), "rng": rng_state(gen),
                               "history": history, "best_epoch": best_epoch, "bad": bad, "weighter": weighter.state_dict()})
    if writer is not None:
        writer.close()
    (out_dir / "history.json").write_text(json.dumps(history, indent=1))
    if weighter.trajectory and any(weighter.initial.get(t, 0) > 0 for t in weighter.adjustable):
        plot_weight_trajectories(weighter.trajectory, out_dir / "loss_weights.png",
                                 f"loss weights ({train_cfg.loss_weighting})")
    best_path = out_dir / "checkpoint.pt"
    model = load_checkpoint(best_path) if best_path.exists() else model.eval()
    if train_cfg.warm_refine_epochs > 0 and best_path.exists() and not getattr(model, "checkpoint_info", {}).get("warm_refined"):
        from graphrec.training.refine import refine_warm

        refined = refine_warm(model, data, train_cfg, default_validation("warm", "ndcg@20"), progress)
        (out_dir / "warm_refine.json").write_text(json.dumps(refined, indent=1))
        info = model.checkpoint_info
        save_checkpoint(best_path, model, model_cfg, train_cfg, step=info["step"], epoch=info["epoch"],
                        best_metric=info["best_metric"], **ckpt_meta, extra={"warm_refined": True})
        if progress:
            tqdm.write(refined[-1]["note"])
        model = load_checkpoint(best_path)
    return model, history
