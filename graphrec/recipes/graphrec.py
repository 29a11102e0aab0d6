"""Training GraphRec: the model-specific setup around the generic loop (:func:`graphrec.training.loop.fit`).

:func:`setup_graphrec` builds the model from its config, attaches the train graph and the item
features, and settles the prerequisites of the configured loss terms (genre targets, Barlow
Twins user views), switching off a term the data cannot support *with a printed and saved
note*. :func:`train_graphrec` then runs the loop: shuffled train edges with shared sampled
negatives as batches, validation through an injected validator (training never imports the
evaluation layer), early stopping on ``train.val_setting``/``train.val_metric``, the best model
written to ``checkpoint.pt`` and the latest state to ``last.pt`` (both atomically), resumable.
Warm refinement is a separate step (:mod:`graphrec.recipes.refine`).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import yaml

from graphrec.data.dataset import RecData
from graphrec.devices import module_to, resolve_device
from graphrec.nn import GraphRec, ModelConfig, build_model
from graphrec.paths import ModelPaths
from graphrec.task import GraphRecTask
from graphrec.training.checkpoint import load_checkpoint, save_checkpoint
from graphrec.training.config import AUX_TERMS, TrainConfig
from graphrec.training.distributed import DistContext, finish_ranks
from graphrec.training.loop import EarlyStopping, FitState, fit
from graphrec.training.sampling import NegativeSampler
from graphrec.training.seed import rng_state, seed_everything, set_rng_state, torch_threads
from graphrec.training.weighting import LossWeighter, plot_weight_trajectories

#: ``validator(scorer, settings) -> {"<setting>/<metric>": value}`` (graphrec.evaluation.protocol.make_validator).
Validator = Callable[[Any, Sequence[str]], dict[str, float]]


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
        return None, None, "the items table has no `genres` column (generic data: set data.genres_col to keep the term)"
    t, mask, _, _ = genre_targets(data.items)
    if t.shape[1] == 0 or not bool(mask.any()):
        return None, None, "no item has a genre (generic data: data.genres_col names the genre column)"
    visible = [m for m in model_cfg.modalities if m not in train_cfg.genre_hidden]
    if not visible:
        return None, None, (f"train.genre_hidden {train_cfg.genre_hidden} hides every modality the model has "
                            f"({model_cfg.modalities}), so genres would be predicted from nothing "
                            f"(set train.genre_hidden: [] to keep the term)")
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


@dataclass
class GraphRecSetup:
    """A model with its graph attached, its task, and the train config actually used."""

    model: GraphRec
    task: GraphRecTask
    train_cfg: TrainConfig
    notes: list[str]


def setup_graphrec(data: RecData, model_cfg: ModelConfig, train_cfg: TrainConfig, progress: bool = False) -> GraphRecSetup:
    """Model + task for ``data`` (call after seeding: parameter initialisation draws random numbers)."""
    mods = list(dict.fromkeys(model_cfg.modalities + model_cfg.knn_modalities))
    feats = model_features(data, mods)
    model = build_model(model_cfg, data.num_users, data.num_items, {m: f[0].shape[1] for m, f in feats.items()})
    model.set_graph(data.train, feats)
    notes: list[str] = []
    genre_t = genre_m = None
    if train_cfg.weight("genre") > 0:
        genre_t, genre_m, why_not = _genre_targets_or_reason(data, model_cfg, train_cfg)
        if why_not:  # the term cannot apply to this data set: say so and train without it (never silently)
            notes.append(f"[train] loss_weights.genre = {train_cfg.weight('genre')} is switched off for this run: {why_not}")
            train_cfg = train_cfg.replace(loss_weights={**train_cfg.loss_weights, "genre": 0.0})
    train_csr = train_seq = None
    if train_cfg.weight("barlow") > 0 and "user" in train_cfg.barlow_views:
        train_csr, train_seq = user_history_views(data, train_cfg)
        if progress or train_seq is not None:
            print("[train] Barlow Twins user view: "
                  + (f"sequence ({train_cfg.sequence_encoder} over the last {train_seq[0].shape[1]} train items in time order)"
                     if train_seq is not None else "set (random subsets of the train history; no timestamps)"))
    task = GraphRecTask(model, train_cfg, genre_t, genre_m, train_csr, train_seq)
    return GraphRecSetup(model, task, train_cfg, notes)


class _Checkpoints:
    """``checkpoint.pt`` on every new best, ``last.pt`` (full training state) after every epoch."""

    def __init__(self, paths: ModelPaths, setup: GraphRecSetup, model_cfg: ModelConfig, opt, gen, weighter,
                 meta: dict[str, Any]) -> None:
        self.paths, self.setup, self.model_cfg, self.opt, self.gen, self.weighter, self.meta = \
            paths, setup, model_cfg, opt, gen, weighter, meta

    def _save(self, path: Path, state: FitState, extra: dict | None = None) -> None:
        st = state.stopping or {}
        save_checkpoint(path, self.setup.model, self.model_cfg, self.setup.train_cfg, step=state.step,
                        epoch=state.epoch - 1, best_metric=st.get("best"), extra=extra, **self.meta)

    def best(self, state: FitState) -> None:
        self._save(self.paths.checkpoint, state)

    def epoch_end(self, state: FitState) -> None:
        self._save(self.paths.last, state, {
            "task": self.setup.task.state_dict(), "optimizer": self.opt.state_dict(), "rng": rng_state(self.gen),
            "fit": {"epoch": state.epoch, "step": state.step, "history": state.history, "stopping": state.stopping},
            "weighter": self.weighter.state_dict()})


def _batches(data: RecData, cfg: TrainConfig, sampler: NegativeSampler, gen: torch.Generator,
             dist: DistContext | None = None):
    E = data.train.shape[1]
    n_steps = -(-E // cfg.batch_size)
    if cfg.steps_per_epoch:
        n_steps = min(n_steps, cfg.steps_per_epoch)

    def epoch_batches(epoch: int):
        perm = torch.randperm(E, generator=gen)
        for b in range(n_steps):
            idx = perm[b * cfg.batch_size: (b + 1) * cfg.batch_size]
            users, pos = data.train[0, idx], data.train[1, idx]
            neg, valid = sampler.sample_shared(users, cfg.num_negatives, gen)
            if dist is not None and dist.enabled:  # every rank drew this same batch: keep this rank's rows
                rows = dist.shard(users.numel())
                users, pos, valid = users[rows], pos[rows], valid[rows]
            yield users, pos, neg, valid

    return epoch_batches


def train_graphrec(data: RecData, model_cfg: ModelConfig, train_cfg: TrainConfig, out_dir: str | Path,
                   validator: Validator, progress: bool = True, resume: bool = False, *,
                   device: str | torch.device | None = None,
                   dist: DistContext | None = None) -> tuple[GraphRec, list[dict]]:
    """Train GraphRec on ``data.train`` with early stopping on validation.

    Writes into ``out_dir`` (:class:`~graphrec.paths.ModelPaths`): ``config.yaml``,
    ``checkpoint.pt`` (best validation model), ``last.pt`` (latest state, for ``resume``),
    ``history.json``, ``notes.txt`` (terms switched off) and TensorBoard scalars under ``tb/``.

    Args:
        data: the split; only ``data.train`` edges are used for training/graph/negatives.
        model_cfg, train_cfg: configuration sections.
        out_dir: model directory.
        validator: ``(model, settings) -> {"<setting>/<metric>": value}`` on validation data
            (:func:`graphrec.evaluation.protocol.make_validator`).
        progress: show tqdm bars and per-epoch lines.
        resume: continue from ``out_dir/last.pt`` if it exists (same seed: the same result
            as an uninterrupted run).
        device: where the model and the task compute (None = CPU; batches are drawn on the CPU
            and moved, so the sampled data do not depend on the device).
        dist: data-parallel context (:mod:`graphrec.training.distributed`): each rank trains on
            its shard of every batch, rank 0 alone validates and writes; None = one process.

    Returns:
        ``(model, history)``: the best-on-validation model (eval mode) and one dict per epoch.
    """
    from tqdm.auto import tqdm

    paths = ModelPaths(Path(out_dir))
    paths.root.mkdir(parents=True, exist_ok=True)
    main = dist is None or dist.is_main  # data-parallel: rank 0 alone writes files
    if main:
        paths.config.write_text(yaml.safe_dump({"model": model_cfg.to_dict(), "train": train_cfg.to_dict()}, sort_keys=False))
    with torch_threads(train_cfg.num_threads):
        gen = seed_everything(train_cfg.seed)
        setup = setup_graphrec(data, model_cfg, train_cfg, progress)
        model, task, train_cfg = setup.model, setup.task, setup.train_cfg
        device = resolve_device(device)
        module_to(task, device)  # the model (graph buffers included) and the task's own tensors
        if dist is not None:
            dist.broadcast_parameters(task)
        for msg in setup.notes if main else ():
            print(msg, file=sys.stderr)
            with open(paths.notes, "a") as fh:
                fh.write(msg + "\n")
        weighter = LossWeighter(dict(train_cfg.loss_weights), [t for t in AUX_TERMS if t in train_cfg.loss_weights],
                                mode=train_cfg.loss_weighting, down=train_cfg.weighting_down, up=train_cfg.weighting_up)
        opt = torch.optim.Adam(task.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
        sampler = NegativeSampler(data.train, data.num_items)
        key = f"{train_cfg.val_setting}/{train_cfg.val_metric}"
        settings = tuple(dict.fromkeys([train_cfg.val_setting, "warm"]))
        mods = list(dict.fromkeys(model_cfg.modalities + model_cfg.knn_modalities))
        meta = dict(user_ids=data.user_ids, item_ids=data.item_ids,
                    fingerprints={n: f.fingerprint for n, f in data.features.items() if n in mods})
        state = None
        if resume and paths.last.exists():
            _, st = load_checkpoint(paths.last, return_state=True)
            task.load_state_dict(st["task"])
            opt.load_state_dict(st["optimizer"])
            set_rng_state(st["rng"], gen)
            state = FitState(**st["fit"])
            weighter.load_state_dict(st["weighter"])
            task.weights = dict(weighter.weights)

        def on_validation(metrics: dict[str, float], rec: dict[str, Any]) -> dict[str, Any]:
            task.weights = weighter.update(metrics[key], {k: v for k, v in rec.items() if k.endswith("_loss")},
                                           rec["step"], rec["epoch"])
            if writer is not None:
                for k, v in task.weights.items():
                    if weighter.initial.get(k, 0) > 0:
                        writer.add_scalar(f"weights/{k}", v, rec["step"])
            return {"weights": dict(task.weights)}

        writer = None
        if train_cfg.tensorboard and main:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(paths.tensorboard))
        validate = lambda: validator(model, settings)  # noqa: E731
        state = fit(task, _batches(data, train_cfg, sampler, gen, dist), opt, epochs=train_cfg.epochs,
                    validate=dist.main_only(validate) if dist is not None else validate,
                    early_stopping=EarlyStopping(key, train_cfg.patience), eval_every=train_cfg.eval_every,
                    checkpointer=_Checkpoints(paths, setup, model_cfg, opt, gen, weighter, meta) if main else None,
                    logger=writer, on_validation=on_validation,
                    epoch_stats=lambda: {"mix": float(torch.sigmoid(model.mix_logit.detach()))},
                    grad_clip=train_cfg.grad_clip, state=state, progress=progress and main, desc="epoch",
                    log_epochs=tqdm.write if progress and main else None, device=device, dist=dist,
                    precision=train_cfg.precision)
        if writer is not None:
            writer.close()
        if dist is not None:
            finish_ranks(dist, task, paths.root, state)
    if main:
        paths.history.write_text(json.dumps(state.history, indent=1))
        if weighter.trajectory and any(weighter.initial.get(t, 0) > 0 for t in weighter.adjustable):
            plot_weight_trajectories(weighter.trajectory, paths.loss_weights_plot, f"loss weights ({train_cfg.loss_weighting})")
    if dist is not None:
        dist.barrier()  # rank 0 has written checkpoint.pt and history.json
    model = load_checkpoint(paths.checkpoint) if paths.checkpoint.exists() else model.eval()
    return model, state.history
