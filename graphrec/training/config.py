"""Configuration of the generic trainer (the ``train`` section of a run config)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from graphrec.config_base import ConfigError, StrictConfig, opt

#: Loss terms known to :class:`graphrec.task.GraphRecTask`; a weight of 0 skips the term.
LOSS_TERMS = ("rec", "cold_rec", "align", "modal", "reg", "barlow", "genre", "recon", "consist")
#: Validation settings early stopping can watch, and the metrics it can read (``<metric>@<K>``).
VAL_SETTINGS = ("cold", "warm", "hybrid", "cold_full")
VAL_METRICS = ("recall", "ndcg", "hit", "precision", "mrr")
#: Terms the dynamic loss weighting may adjust (auxiliary / self-supervised ones).
AUX_TERMS = ("align", "modal", "barlow", "genre", "recon", "consist")


@dataclass
class TrainConfig(StrictConfig):
    """Optimisation, loss weights, validation and early stopping."""

    seed: int = opt(0, help="Seed for torch/numpy/random; CPU reruns with the same seed are identical.")
    epochs: int = opt(40, help="Maximum number of passes over the train interactions.")
    batch_size: int = opt(8192, help="Train interactions (user, positive item) per step (each step propagates the full graph once).")
    steps_per_epoch: int = opt(0, help="Cap on steps per epoch (0 = a full pass); for quick experiments.")
    lr: float = opt(0.005, help="Adam learning rate.")
    weight_decay: float = opt(0.0, help="Adam weight decay on the dense (non-embedding) parameters.")
    rec_loss: Literal["bpr", "softmax"] = opt("softmax", help="Link prediction loss: BPR or sampled softmax.")
    num_negatives: int = opt(256, help="Negatives sampled per step, shared by the batch (warm train items; pairs that are a user's train positive are ignored).")
    rec_temperature: float = opt(0.1, help="Temperature of the sampled-softmax link prediction loss (cosine scores).")
    loss_weights: dict[str, float] = opt(
        {"rec": 1.0, "cold_rec": 1.0, "align": 0.1, "modal": 0.05, "reg": 1e-4},
        help=f"Weight of each named loss term ({', '.join(LOSS_TERMS)}); 0 disables a term. The default is link "
             "prediction (warm and cold views) + cross-modal InfoNCE: the self-supervised terms (barlow, genre, recon, "
             "consist) gave no gain beyond the noise of the objective ablation (RESULTS.md) and cost ~1.7x per step, "
             "so they are opt-in. A term that cannot apply to the data (genres without a genre column) is switched off "
             "with a note.",
    )
    init_temperature: float = opt(0.1, help="Initial temperature of the contrastive (InfoNCE) losses; learnable.")
    min_temperature: float = opt(0.01, help="Lower clamp of the learnable contrastive temperature.")
    max_temperature: float = opt(1.0, help="Upper clamp of the learnable contrastive temperature.")
    contrastive_items: int = opt(1024, help="Items per step in the contrastive terms (unique batch items, subsampled).")
    eval_every: int = opt(1, help="Validate every N epochs.")
    patience: int = opt(3, help="Stop after this many consecutive validations without improvement (0 acts as 1).")
    val_setting: str = opt("cold", help="Validation setting used for early stopping (cold, warm, hybrid or cold_full).")
    val_metric: str = opt("ndcg@20", help="Validation metric used for early stopping: <metric>@<K> with metric one of recall, ndcg, hit, precision, mrr and K >= 1.")
    grad_clip: float = opt(0.0, help="Clip the gradient norm to this value (0 = off).")
    num_threads: int = opt(0, help="torch.set_num_threads for training (0 = leave as is).")
    precision: Literal["fp32", "bf16"] = opt("fp32", help="Training forward pass: fp32, or bf16 = torch.autocast to bfloat16 (dense layers and products in bfloat16, losses, softmax and the sparse graph propagation in float32; weights and optimizer stay float32). bf16 was 1.6x faster per epoch on one CPU with AVX512-BF16 and slower than fp32 on another (BENCHMARKS.md); measure on yours; evaluation and serving always run in float32.")
    tensorboard: bool = opt(True, help="Write TensorBoard scalars under <out_dir>/tb.")
    warm_refine_epochs: int = opt(0, help="After early stopping on cold validation: epochs of the warm refinement stage, which fits a post-propagation residual of warm items with everything else frozen (cold-item scores cannot change) and keeps the best warm-validation NDCG@20 (0 = off). Off by default: the collaborative backbone (model.backbone_dim) scores warm items.")
    warm_refine_lr: float = opt(0.01, help="Adam learning rate of the warm refinement stage.")
    backbone_lr: float = opt(5e-3, help="Collaborative backbone (model.backbone_dim): Adam learning rate (LightGCN, BPR).")
    backbone_layers: int = opt(3, help="Collaborative backbone: LightGCN layers (3: what tuning chose for the LightGCN baseline in all 5 benchmark runs on ml1m-mm, and LightGCN's own default).")
    backbone_reg: float = opt(1e-4, help="Collaborative backbone: L2 weight of the BPR loss (PyG's lambda_reg).")
    backbone_batch_size: int = opt(4096, help="Collaborative backbone: train interactions per step.")
    backbone_epochs: int = opt(200, help="Collaborative backbone: epoch cap (it early-stops on warm validation).")
    backbone_eval_every: int = opt(2, help="Collaborative backbone: validate every N epochs.")
    backbone_patience: int = opt(5, help="Collaborative backbone: validations without improvement before stopping.")
    calibrate: bool = opt(True, help="After training (and warm refinement): choose the weights of the cold-item content score terms (content walk, popularity prior) on cold validation and a cold/warm score offset on hybrid validation (graphrec.recipes.calibrate). Off = the plain GNN score.")
    calibrate_profile: list[float] = opt([0.0, 0.5, 1.0, 2.0, 4.0], help="Calibration grid of the content-walk weight (relative to the spread of the GNN scores).")
    calibrate_prior: list[float] = opt([0.0, 0.25, 0.5, 1.0, 2.0], help="Calibration grid of the popularity-prior weight (standardised prior, relative to the spread of the GNN scores).")
    calibrate_transfer: list[float] = opt([0.0, 0.5, 1.0, 2.0], help="Calibration grid of the backbone's CF-transfer weight on cold items (relative to the spread of the GNN scores); used when the model has a backbone.")
    calibrate_text_weight: list[float] = opt([0.5, 0.75, 1.0], help="Calibration grid of text's share in the content vectors of the content-walk and prior terms (model.content_text_weight; 0.5 = the equal share of two modalities), searched jointly with the cold grid on cold validation, as the content-kNN baselines tune it; empty = keep the model's value. Only used with text and another knn modality (RESULTS.md: chosen 1.0 in all 5 benchmark runs on ml1m-mm).")
    calibrate_walk: list[float] = opt([0.5, 1.0, 2.0, 4.0], help="Calibration grid of the learned content walk's weight on cold items (relative to the spread of the GNN scores), searched with the cold grid once the walk is fitted (weight 0 is the grid without it; empty = the walk is not fitted); used when the model has a learned walk (model.learned_walk).")
    walk_epochs: int = opt(30, help="Learned content walk: epoch cap (selected on cold validation every walk_eval_every epochs when the data has cold-validation items).")
    walk_lr: float = opt(3e-4, help="Learned content walk: Adam learning rate.")
    walk_keep: float = opt(0.5, help="Learned content walk: share of a user's train items put in the profile each step (the rest are the targets).")
    walk_batch_size: int = opt(512, help="Learned content walk: users per step.")
    walk_eval_every: int = opt(3, help="Learned content walk: validate every N epochs.")
    walk_patience: int = opt(3, help="Learned content walk: validations without improvement before stopping.")
    calibrate_warm_gnn: list[float] = opt([0.0, 0.25, 0.5, 1.0], help="Calibration grid of the GNN's weight next to the backbone on warm items (relative), chosen on warm validation.")
    calibrate_offset: list[float] = opt([-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0], help="Calibration grid of the cold-item score offset in hybrid lists (units of the GNN score spread); empty = no offset.")
    calibrate_extend: int = opt(5, help="When a calibrated value is best at the edge of its grid (a cold-term weight at its grid's largest value, the hybrid offset at either end), try up to this many further values beyond it (each twice as far from 0 as the last), stopping at the first that is not better: a data set whose GNN cold view is weak can need content weights, and offsets, far outside the grids. 0 = the grids alone.")
    warm_refine_patience: int = opt(2, help="Warm refinement stops after this many epochs without warm-validation improvement.")
    # --- self-supervised / auxiliary objectives (issue 8); their weights are in loss_weights (see its help)
    modality_dropout: float = opt(0.0, help="Training-time probability of dropping each present modality of each item in the forward pass (an item keeps >= 1).")
    feature_noise: float = opt(0.0, help="Training-time Gaussian feature noise, std relative to each item's feature RMS (0 = off).")
    ssl_items: int = opt(512, help="Items per step in the item-side self-supervised terms (unique batch positives, subsampled).")
    ssl_users: int = opt(512, help="Users per step in the user-side Barlow Twins term (unique batch users, subsampled).")
    barlow_views: list[str] = opt(["user", "item"], help="Barlow Twins views: user = two augmented views of the train history (see user_view), item = two augmented content views.")
    user_view: Literal["auto", "set", "sequence"] = opt("auto", help="User view of the Barlow Twins user term: set = random history subsets pooled by mean (order-free); sequence = random in-order subsets of the most recent history_max items through a sequence encoder (needs interaction timestamps); auto = sequence when the train interactions have timestamps, else set (ml1m-mm has none).")
    sequence_encoder: Literal["gru", "transformer"] = opt("gru", help="Sequence user view encoder: GRU (GRU4Rec) or causal transformer (SASRec-style).")
    barlow_off_diagonal: float = opt(5e-3, help="Barlow Twins off-diagonal (redundancy) weight lambda.")
    barlow_dim: int = opt(128, help="Barlow Twins projector width (size of the cross-correlation matrix).")
    history_keep: float = opt(0.5, help="Keep probability of each history item in a user view (Barlow Twins; set and sequence views).")
    history_max: int = opt(64, help="At most this many history items per user view (0 = all for the set view; the sequence view keeps the most recent history_max, 64 when 0).")
    aug_modality_dropout: float = opt(0.5, help="Modality dropout of the augmented item views (Barlow Twins item views, consistency).")
    aug_feature_noise: float = opt(0.1, help="Relative feature noise of the augmented item views.")
    genre_hidden: list[str] = opt(["text"], help="Modalities hidden from the genre classifier's input (the default text template contains the genres).")
    recon_kind: Literal["cosine", "mse"] = opt("cosine", help="Feature reconstruction loss: 1 - cosine or MSE against the frozen features.")
    loss_weighting: Literal["fixed", "validation"] = opt("fixed", help="Auxiliary loss weights: fixed, or adjusted after each validation (graphrec.training.weighting).")
    weighting_down: float = opt(0.5, help="Dynamic weighting: factor for a term whose progress coincides with worse validation.")
    weighting_up: float = opt(1.1, help="Dynamic weighting: factor for a term whose progress coincides with better validation.")

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "num_negatives", "eval_every", "contrastive_items"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.val_setting not in VAL_SETTINGS:
            raise ConfigError(f"val_setting: {self.val_setting!r} is not one of {list(VAL_SETTINGS)}")
        name, _, k = self.val_metric.partition("@")
        if name not in VAL_METRICS or not k.isdigit() or int(k) < 1:
            raise ConfigError(f"val_metric: expected <metric>@<K> with metric one of {list(VAL_METRICS)} and K >= 1 "
                              f"(e.g. 'ndcg@20'), got {self.val_metric!r}")
        if self.steps_per_epoch < 0:
            raise ConfigError(f"steps_per_epoch: must be >= 0, got {self.steps_per_epoch}")
        if self.lr <= 0:
            raise ConfigError(f"lr: must be > 0, got {self.lr}")
        if self.patience < 0:
            raise ConfigError(f"patience: must be >= 0, got {self.patience}")
        for k, v in self.loss_weights.items():
            if k not in LOSS_TERMS:
                raise ConfigError(f"loss_weights.{k}: unknown loss term; known terms: {list(LOSS_TERMS)}")
            if v < 0:
                raise ConfigError(f"loss_weights.{k}: must be >= 0, got {v}")
        if not 0 < self.min_temperature <= self.init_temperature <= self.max_temperature:
            raise ConfigError(
                f"init_temperature: need 0 < min_temperature <= init_temperature <= max_temperature, got "
                f"{self.min_temperature}, {self.init_temperature}, {self.max_temperature}"
            )
        if self.rec_temperature <= 0:
            raise ConfigError(f"rec_temperature: must be > 0, got {self.rec_temperature}")
        for name in ("modality_dropout", "aug_modality_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name}: must be in [0, 1), got {getattr(self, name)}")
        for name in ("feature_noise", "aug_feature_noise", "barlow_off_diagonal", "history_max"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be >= 0, got {getattr(self, name)}")
        for name in ("ssl_items", "ssl_users", "barlow_dim"):
            if getattr(self, name) < 2:
                raise ConfigError(f"{name}: must be >= 2, got {getattr(self, name)}")
        if not 0.0 < self.history_keep <= 1.0:
            raise ConfigError(f"history_keep: must be in (0, 1], got {self.history_keep}")
        bad = [v for v in self.barlow_views if v not in ("user", "item")]
        if bad or not self.barlow_views:
            raise ConfigError(f"barlow_views: must be a non-empty subset of ['user', 'item'], got {self.barlow_views}")
        if any(not 0.0 <= v <= 1.0 for v in self.calibrate_text_weight):
            raise ConfigError(f"calibrate_text_weight: values must be in [0, 1], got {self.calibrate_text_weight}")
        if not 0.0 < self.walk_keep < 1.0 or self.walk_lr <= 0:
            raise ConfigError(f"walk_keep/walk_lr: need 0 < keep < 1 and lr > 0, got {self.walk_keep}/{self.walk_lr}")
        for name in ("walk_epochs", "walk_batch_size", "walk_eval_every", "walk_patience"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if any(v < 0 for v in self.calibrate_walk):
            raise ConfigError(f"calibrate_walk: weights must be >= 0, got {self.calibrate_walk}")
        for name in ("calibrate_profile", "calibrate_prior"):
            if not getattr(self, name) or any(v < 0 for v in getattr(self, name)):
                raise ConfigError(f"{name}: need a non-empty list of weights >= 0, got {getattr(self, name)}")
        if not 0.0 < self.weighting_down <= 1.0 or self.weighting_up < 1.0:
            raise ConfigError(f"weighting_down/weighting_up: need 0 < down <= 1 <= up, got {self.weighting_down}, {self.weighting_up}")

    def weight(self, term: str) -> float:
        """Weight of a loss term (0 when not listed)."""
        return float(self.loss_weights.get(term, 0.0))
