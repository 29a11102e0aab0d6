"""Configuration of the baseline suite: which baselines, their tuning grids and budgets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphrec.config_base import ConfigError, StrictConfig, opt

ALL = ["random", "popularity", "content_knn", "item_knn", "knn_pop", "mf_bpr", "lightgcn", "dropoutnet", "heater",
       "clcrec", "aldi", "content_cf_nb", "content_cf_reg"]

# Full-strength grids (issue 12): every trainable baseline early-stops on its own validation with
# patience 5 under an epoch cap that does not bind (the benchmark report shows best epoch vs epochs
# run vs cap); >= 4 configurations over the parameters its paper tunes. The teacher of the
# teacher-based baselines is the best warm model on validation (`teacher: best_warm`).
_LONG = {"epochs": [200], "patience": [5]}
DEFAULT_GRIDS: dict[str, dict[str, list]] = {
    "random": {},
    "popularity": {},
    "content_knn": {"text_weight": [0.0, 0.25, 0.5, 0.75, 1.0]},
    "item_knn": {"k": [50, 100, 200, 400], "alpha": [1.0, 2.0], "text_weight": [0.5, 0.75]},
    "knn_pop": {"weight": [0.25, 0.5, 1.0, 2.0], "ridge": [1.0, 10.0, 100.0], "text_weight": [0.5, 0.75]},
    "mf_bpr": {"lr": [1e-3, 5e-3], "reg": [1e-5, 1e-4], "dim": [64], "eval_every": [2], **_LONG},
    "lightgcn": {"lr": [2e-3, 5e-3], "layers": [2, 3], "reg": [1e-4], "dim": [64], "batch_size": [4096],
                 "eval_every": [2], **_LONG},
    "dropoutnet": {"dropout": [0.3, 0.5, 0.7], "lr": [1e-3, 3e-3], **_LONG},
    "heater": {"alpha": [0.1, 1.0], "p_random": [0.3, 0.7], **_LONG},
    "clcrec": {"tau": [0.1, 0.2], "lam": [0.3, 0.7], **_LONG},
    "aldi": {"gamma": [0.1, 1.0], "alpha": [0.5, 0.9], **_LONG},
    "content_cf_nb": {"k": [10, 20, 50], "temperature": [0.02, 0.05, 0.1]},
    "content_cf_reg": {"hidden": [256, 512], "bpr_weight": [0.1, 1.0], **_LONG},
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
    budgets: dict[str, int] = opt({"content_knn": 5, "item_knn": 16, "knn_pop": 24, "content_cf_nb": 9, "dropoutnet": 6},
                                  help="per-baseline budget overrides")
    grids: dict[str, dict[str, list]] = opt(
        {k: dict(v) for k, v in DEFAULT_GRIDS.items()},
        help="per-baseline grid: parameter -> list of values; parameters not named keep their defaults",
    )
    share_teacher: bool = opt(True, help="DropoutNet/Heater/ALDI start from a trained warm model's vectors (see `teacher`) instead of training their own MF-BPR")
    teacher: str = opt("best_warm", help="with share_teacher: the warm model whose vectors the teacher-based baselines use, by name (it must be listed before them in `names`), or best_warm = the warm-only baseline with the best warm-validation NDCG@20")
    seed: int = opt(0, help="seed of training and of grid subsampling")
    progress: bool = opt(True, help="tqdm progress bars")

    def validate(self) -> None:
        """Names, budgets and grid values; grid *parameter names* are checked against the registry by
        :func:`graphrec.baselines.check_grids` when the whole config loads (this module stays a leaf)."""
        for n in self.names:
            if n not in ALL:
                raise ConfigError(f"names: unknown baseline {n!r}; available: {sorted(ALL)}")
        if self.teacher != "best_warm" and self.teacher not in ALL:
            raise ConfigError(f"teacher: {self.teacher!r} is neither best_warm nor a baseline name")
        if self.num_threads < 0:
            raise ConfigError(f"num_threads: must be >= 0, got {self.num_threads}")
        if self.budget < 1:
            raise ConfigError(f"budget: must be >= 1, got {self.budget}")
        for n, b in self.budgets.items():
            if n not in ALL:
                raise ConfigError(f"budgets.{n}: unknown baseline")
            if b < 1:
                raise ConfigError(f"budgets.{n}: must be >= 1, got {b}")
        for n, grid in self.grids.items():
            if n not in ALL:
                raise ConfigError(f"grids.{n}: unknown baseline; available: {sorted(ALL)}")
            for k, vals in grid.items():
                if not isinstance(vals, list) or not vals:
                    raise ConfigError(f"grids.{n}.{k}: expected a non-empty list of values")

    def budget_of(self, name: str) -> int:
        return int(self.budgets.get(name, self.budget))

    def grid_of(self, name: str) -> dict[str, list[Any]]:
        return dict(self.grids.get(name, {}))
