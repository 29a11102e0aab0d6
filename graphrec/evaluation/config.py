"""Configuration of the evaluation protocol and of the model suite a run trains and evaluates."""

from __future__ import annotations

from dataclasses import dataclass

from graphrec.config_base import ConfigError, StrictConfig, opt

_SETTINGS = ("cold", "warm", "hybrid", "cold_full")


@dataclass
class EvalConfig(StrictConfig):
    """Evaluation: full-ranking settings, cut-offs, confidence intervals, beyond-accuracy."""

    settings: list[str] = opt(list(_SETTINGS), help="settings to evaluate: cold, warm, hybrid, cold_full")
    ks: list[int] = opt([10, 20, 50], help="metric cut-offs K (beyond_k, the K of the beyond-accuracy metrics and the fairness audit, is evaluated too)")
    main_metric: str | None = opt(None, help="metric whose cut-off K the report tables, plots and summary show (e.g. ndcg@10; its K must be in ks); null = ndcg@20 when 20 is in ks, else ndcg at the largest K of ks. Early stopping uses train.val_metric")
    val_setting: str = opt("cold", help="setting used for validation-based model selection")
    batch_size: int = opt(1024, help="users scored per scorer.score call")
    topk_k: int = opt(50, help="ranks written to topk/<model>_<setting>.csv (>= max(ks))")
    bootstrap_samples: int = opt(1000, help="bootstrap resamples of users for 95% CIs (0 = no CIs)")
    bootstrap_seed: int = opt(0, help="seed of the bootstrap resampling")
    ci_level: float = opt(0.95, help="confidence level of the intervals")
    beyond_k: int = opt(20, help="K of the beyond-accuracy metrics (coverage, novelty, tail share, buckets)")
    tail_frac: float = opt(0.2, help="share of least-popular candidate items counted as the tail")
    popularity_buckets: int = opt(3, help="train-popularity quantile buckets of warm items (cold items: own bucket)")
    oracle_frac: float = opt(0.5, help="warm oracle: share of each cold-test item's interactions moved to train")
    oracle_seed: int = opt(0, help="seed of the warm-oracle split")
    progress: bool = opt(True, help="show tqdm progress bars")
    fairness: bool = opt(True, help="fairness and exposure audit (graphrec.evaluation.fairness): fairness.json, report section, plots; K = beyond_k")
    activity_buckets: int = opt(4, help="fairness: user groups by train history length, this many quantile buckets")
    fairness_min_group_users: int = opt(20, help="fairness: user groups with fewer evaluated users are pooled into 'other' (dropped if the pool is smaller)")
    inheritance_neighbors: int = opt(10, help="fairness: content neighbours (warm items) whose mean train popularity a cold item is compared with")
    rerank_lambdas: list[float] = opt([0.0, 0.1, 0.25, 0.5, 1.0, 2.0], help="exposure re-ranking: penalty values lambda of the accuracy-vs-exposure curve (hybrid setting; [] = no curve)")
    rerank_tolerance: float = opt(0.05, help="exposure re-ranking: the marked 'gini' and 'calibrated' points are chosen among the lambdas whose validation Recall@beyond_k is within this relative drop of the best")
    rerank_models: list[str] = opt(["graphrec"], help="exposure re-ranking: models whose curve is computed (each lambda costs one validation and one test evaluation)")

    def validate(self) -> None:
        bad = [s for s in self.settings if s not in _SETTINGS]
        if bad or not self.settings:
            raise ConfigError(f"settings: {bad or self.settings} not valid; choose from {list(_SETTINGS)}")
        if not self.ks or any(k < 1 for k in self.ks):
            raise ConfigError(f"ks: cut-offs must be positive integers, got {self.ks}")
        if self.main_metric is not None:
            name, _, k = self.main_metric.partition("@")
            if name not in ("recall", "ndcg", "hit", "precision", "mrr") or not k.isdigit():
                raise ConfigError(f"main_metric: expected e.g. 'ndcg@20', got {self.main_metric!r}")
            if int(k) not in self.ks:
                raise ConfigError(f"main_metric: K={k} is not in ks {self.ks} (add it to eval.ks, or set main_metric: null)")
        if self.val_setting not in _SETTINGS:
            raise ConfigError(f"val_setting: {self.val_setting!r} not one of {list(_SETTINGS)}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size: must be >= 1, got {self.batch_size}")
        if self.topk_k < max(self.evaluated_ks):
            raise ConfigError(f"topk_k: {self.topk_k} < the largest cut-off evaluated, {max(self.evaluated_ks)} "
                              "(max of ks and beyond_k)")
        if self.bootstrap_samples < 0:
            raise ConfigError(f"bootstrap_samples: must be >= 0, got {self.bootstrap_samples}")
        if not 0 < self.ci_level < 1:
            raise ConfigError(f"ci_level: must be in (0, 1), got {self.ci_level}")
        if self.beyond_k < 1:
            raise ConfigError(f"beyond_k: must be >= 1, got {self.beyond_k}")
        if not 0 < self.tail_frac < 1:
            raise ConfigError(f"tail_frac: must be in (0, 1), got {self.tail_frac}")
        if self.popularity_buckets < 1:
            raise ConfigError(f"popularity_buckets: must be >= 1, got {self.popularity_buckets}")
        if self.activity_buckets < 1:
            raise ConfigError(f"activity_buckets: must be >= 1, got {self.activity_buckets}")
        if self.fairness_min_group_users < 1:
            raise ConfigError(f"fairness_min_group_users: must be >= 1, got {self.fairness_min_group_users}")
        if self.inheritance_neighbors < 1:
            raise ConfigError(f"inheritance_neighbors: must be >= 1, got {self.inheritance_neighbors}")
        if any(x < 0 for x in self.rerank_lambdas):
            raise ConfigError(f"rerank_lambdas: penalties must be >= 0, got {self.rerank_lambdas}")
        if not 0 <= self.rerank_tolerance < 1:
            raise ConfigError(f"rerank_tolerance: must be in [0, 1), got {self.rerank_tolerance}")
        if not 0 < self.oracle_frac < 1:
            raise ConfigError(f"oracle_frac: must be in (0, 1), got {self.oracle_frac}")


    @property
    def evaluated_ks(self) -> list[int]:
        """Every cut-off the test evaluation computes: ``ks`` and ``beyond_k`` (per-user, for the fairness audit)."""
        return sorted({*self.ks, self.beyond_k})

    @property
    def main_k(self) -> int:
        """The cut-off of the report tables, plots and summary (see ``main_metric``)."""
        if self.main_metric is not None:
            return int(self.main_metric.partition("@")[2])
        return 20 if 20 in self.ks else max(self.ks)


@dataclass
class SuiteConfig(StrictConfig):
    """Which models a run trains and evaluates besides the main GraphRec model.

    The train stage trains every model named here (GraphRec seeds, the warm oracle, the
    baselines) and writes their checkpoints; the evaluate stage only reads them.
    """

    seeds: list[int] = opt([0, 1, 2], help="GraphRec training seeds (train.seed is replaced by each); the first is the main model (model/), the others are trained into model_seed<N>/. Mean and spread over seeds go to the report.")
    baselines: bool = opt(True, help="Tune, train and evaluate the baselines (section `baselines`).")
    oracle: bool = opt(True, help="Train the warm oracle (GraphRec that saw part of each cold-test item's users) and report the cold-to-warm gap closed.")
    jobs: int = opt(1, help="Processes of the train stage (1 or 2; configs/ml1m-mm.yaml uses 2): with 2, a second process trains the warm baselines and the baselines taught by them while the first trains GraphRec and the rest (one torch thread each).")
    ensemble: bool = opt(True, help="With two or more seeds: also evaluate their mean-of-scores ensemble (row graphrec_ensemble; no extra training) and record it in <run_dir>/ensemble.json, which serving then uses.")

    def validate(self) -> None:
        if not self.seeds:
            raise ConfigError("seeds: at least one seed")
        if self.jobs not in (1, 2):
            raise ConfigError(f"jobs: 1 or 2, got {self.jobs}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds: duplicate seeds in {self.seeds}")
