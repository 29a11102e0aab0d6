"""Configuration of the baseline suite: which baselines, their tuning grids and budgets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphrec.config_base import ConfigError, StrictConfig, opt

ALL = ["random", "popularity", "content_knn", "mf_bpr", "lightgcn", "dropoutnet", "heater", "clcrec", "aldi"]

# Small, fair grids: at most `budget` configurations each (content_knn is cheap: 5 mixes).
# Epoch caps keep the whole suite within ~10-15 minutes on 2 CPU cores for ml1m-mm; every
# trainable baseline early-stops on its validation setting within that cap.
DEFAULT_GRIDS: dict[str, dict[str, list]] = {
    "random": {},
    "popularity": {},
    "content_knn": {"text_weight": [0.0, 0.25, 0.5, 0.75, 1.0]},
    "mf_bpr": {"lr": [5e-3, 1e-2], "reg": [1e-5, 1e-4], "dim": [64], "epochs": [24]},
    "lightgcn": {"lr": [1e-2, 2e-2], "reg": [1e-4], "layers": [2], "dim": [64], "epochs": [30]},
    "dropoutnet": {"dropout": [0.5, 0.8], "epochs": [5]},
    "heater": {"alpha": [0.1, 1.0], "epochs": [5]},
    "clcrec": {"tau": [0.1, 0.2], "epochs": [5]},
    "aldi": {"gamma": [0.1, 1.0], "epochs": [5]},
}


@dataclass
class BaselinesConfig(StrictConfig):
    """Baseline suite: which baselines run, their grids and tuning budgets.

    Selection uses validation only: cold-validation NDCG@20 for cold-capable baselines,
    warm-validation NDCG@20 for MF-BPR and LightGCN.
    """

    names: list[str] = opt(list(ALL), help="baselines to run, in order (mf_bpr before the teacher-based ones)")
    num_threads: int = opt(1, help="torch threads while tuning (0 = leave as is); 1 avoids OpenMP contention on small shared CPUs")
    budget: int = opt(4, help="max configurations tried per baseline (grids larger than this are subsampled with the seed)")
    budgets: dict[str, int] = opt({"content_knn": 5}, help="per-baseline budget overrides")
    grids: dict[str, dict[str, list]] = opt(
        {k: dict(v) for k, v in DEFAULT_GRIDS.items()},
        help="per-baseline grid: parameter -> list of values; parameters not named keep their defaults",
    )
    share_teacher: bool = opt(True, help="DropoutNet/Heater/ALDI start from a trained warm model's vectors (see `teacher`) instead of training their own MF-BPR")
    teacher: str = opt("mf_bpr", help="with share_teacher: the warm model whose vectors the teacher-based baselines use, by name (it must be listed before them in `names`), or best_warm = the warm-only baseline with the best warm-validation NDCG@20")
    seed: int = opt(0, help="seed of training and of grid subsampling")
    progress: bool = opt(True, help="tqdm progress bars")

    def validate(self) -> None:
        from graphrec.baselines import BASELINES

        for n in self.names:
            if n not in BASELINES:
                raise ConfigError(f"names: unknown baseline {n!r}; available: {sorted(BASELINES)}")
        if self.teacher != "best_warm" and self.teacher not in BASELINES:
            raise ConfigError(f"teacher: {self.teacher!r} is neither best_warm nor a baseline name")
        if self.num_threads < 0:
            raise ConfigError(f"num_threads: must be >= 0, got {self.num_threads}")
        if self.budget < 1:
            raise ConfigError(f"budget: must be >= 1, got {self.budget}")
        for n, b in self.budgets.items():
            if n not in BASELINES:
                raise ConfigError(f"budgets.{n}: unknown baseline")
            if b < 1:
                raise ConfigError(f"budgets.{n}: must be >= 1, got {b}")
        for n, grid in self.grids.items():
            if n not in BASELINES:
                raise ConfigError(f"grids.{n}: unknown baseline; available: {sorted(BASELINES)}")
            for k, vals in grid.items():
                if k not in BASELINES[n].defaults:
                    raise ConfigError(f"grids.{n}.{k}: unknown parameter; valid: {sorted(BASELINES[n].defaults)}")
                if not isinstance(vals, list) or not vals:
                    raise ConfigError(f"grids.{n}.{k}: expected a non-empty list of values")

    def budget_of(self, name: str) -> int:
        return int(self.budgets.get(name, self.budget))

    def grid_of(self, name: str) -> dict[str, list[Any]]:
        return dict(self.grids.get(name, {}))
