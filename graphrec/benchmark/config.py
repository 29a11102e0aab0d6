"""Configuration of the item k-fold benchmark (section ``benchmark`` of a run config)."""

from __future__ import annotations

from dataclasses import dataclass

from graphrec.config_base import ConfigError, StrictConfig, opt


@dataclass
class BenchmarkConfig(StrictConfig):
    """Item k-fold cross-validation: every model trained and evaluated on ``runs`` item splits.

    The items with interactions are dealt into ``folds`` popularity-stratified folds; run ``r``
    uses fold ``r`` as cold-test and fold ``(r + 1) mod folds`` as cold-validation; warm
    interactions are split per user 80/10/10 as in the single-split protocol.
    """

    runs: int = opt(5, help="Runs (item splits) to train and evaluate; runs = folds makes every item with interactions cold-test exactly once.")
    folds: int = opt(10, help="Item folds (2 per run are cold: 20% cold items, as the single-split protocol).")
    fold_seed: int = opt(0, help="Seed of the item folds (and of the per-user warm split: split.seed + run).")
    seeds: list[int] = opt([0], help="GraphRec training seeds per run; the first is the `graphrec` row (one model per run); with more, graphrec_seed<N> rows and the seed ensemble `graphrec_ensemble` are reported apart.")
    oracle: bool = opt(False, help="Also train the warm oracle in every run (costs one more GraphRec training per run).")
    tune_first_run_only: bool = opt(True, help="Tune the baselines on run 0's validation and reuse the chosen parameters in the other runs (each still early-stops on its own validation).")
    jobs: int = opt(2, help="1 = one process trains every run in turn; 2 (or more) = two lane processes of one torch thread each share every run's models (lane A: the baselines' teacher chain; lane B: GraphRec and the other baselines, then lane A's chains of the last runs; graphrec.benchmark.lanes).")
    threads: int = opt(2, help="Torch threads of the single process when jobs = 1 (the lanes use one thread each).")
    item_bootstrap: int = opt(1000, help="Within-run bootstrap resamples of the cold-test items (uncertainty from the item draw; 0 = off).")
    ci_level: float = opt(0.95, help="Confidence level of the across-run and bootstrap intervals.")

    def validate(self) -> None:
        if self.folds < 3:
            raise ConfigError(f"folds: need at least 3 (cold-test, cold-validation and warm folds), got {self.folds}")
        if not 1 <= self.runs <= self.folds:
            raise ConfigError(f"runs: must be in 1..folds ({self.folds}), got {self.runs}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds: need one or more distinct seeds, got {self.seeds}")
        if self.jobs < 1 or self.threads < 1:
            raise ConfigError(f"jobs/threads: must be >= 1, got {self.jobs}/{self.threads}")
        if self.item_bootstrap < 0:
            raise ConfigError(f"item_bootstrap: must be >= 0, got {self.item_bootstrap}")
        if not 0 < self.ci_level < 1:
            raise ConfigError(f"ci_level: must be in (0, 1), got {self.ci_level}")
