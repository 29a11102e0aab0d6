"""Baselines of the cold-start evaluation suite, all behind one call shape.

Every baseline is ``fit(data: RecData, params: dict, seed: int, validate, progress=True,
teacher=None) -> Scorer`` (``Scorer.score(users (B,)) -> (B, num_items)``, docs/DESIGN.md);
``validate`` is a validator (``graphrec.evaluation.protocol.make_validator``) used for early
stopping, ``teacher`` the frozen (user, item) vectors of a warm model for the teacher-based
ones. :data:`BASELINES` maps a name to its :class:`BaselineSpec`;
:func:`graphrec.baselines.tune.tune` selects parameters on validation only.

| name | idea | cold items |
| --- | --- | --- |
| random | uniform scores | yes (chance) |
| popularity | train interaction counts | yes (ties: all zero) |
| content_knn | cosine to the mean of the user's items' features | yes |
| mf_bpr | matrix factorisation, BPR | no |
| lightgcn | PyG LightGCN, BPR | no |
| dropoutnet | Volkovs et al. 2017 | yes |
| heater | Zhu et al. 2020 | yes |
| clcrec | Wei et al. 2021 | yes |
| aldi | Huang et al. 2023 | yes |
| item_knn | item-item content kNN over the user's history | yes |
| knn_pop | content kNN + popularity prior regressed from content | yes |
| content_cf_nb | cold item = weighted mean of its content neighbours' CF vectors | yes |
| content_cf_reg | MLP from content to the teacher's CF space | yes |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from graphrec.baselines import (aldi, clcrec, content_cf, content_knn, dropoutnet, heater, item_knn, knn_pop, lightgcn,
                                mf_bpr, simple)


@dataclass(frozen=True)
class BaselineSpec:
    """One registered baseline.

    Attributes:
        name: registry name (also the model name in reports).
        fit: ``fit(data, params, seed, validate, progress, teacher) -> Scorer``.
        defaults: every accepted parameter with its default.
        supports_cold: False for models that cannot score items without training edges.
        val_setting: validation setting used for selection (``"cold"`` or ``"warm"``).
        uses_teacher: distils / starts from a frozen warm model's vectors (``teacher``).
        inert: ``inert(data) -> {param: reason}`` for parameters that do nothing on ``data``
            (not tuned, not reported as chosen).
    """

    name: str
    fit: Callable[..., Any]
    defaults: dict[str, Any]
    supports_cold: bool = True
    val_setting: str = "cold"
    uses_teacher: bool = False
    inert: Callable[[Any], dict[str, str]] | None = None


BASELINES: dict[str, BaselineSpec] = {
    s.name: s
    for s in [
        BaselineSpec("random", simple.fit_random, {}),
        BaselineSpec("popularity", simple.fit_popularity, {}),
        BaselineSpec("content_knn", content_knn.fit_content_knn, content_knn.DEFAULTS, inert=content_knn.inert_params),
        BaselineSpec("item_knn", item_knn.fit_item_knn, item_knn.DEFAULTS, inert=content_knn.inert_params),
        BaselineSpec("knn_pop", knn_pop.fit_knn_pop, knn_pop.DEFAULTS, inert=content_knn.inert_params),
        BaselineSpec("mf_bpr", mf_bpr.fit_mf_bpr, mf_bpr.DEFAULTS, supports_cold=False, val_setting="warm"),
        BaselineSpec("lightgcn", lightgcn.fit_lightgcn, lightgcn.DEFAULTS, supports_cold=False,
                     val_setting="warm"),
        BaselineSpec("dropoutnet", dropoutnet.fit_dropoutnet, dropoutnet.DEFAULTS, uses_teacher=True),
        BaselineSpec("heater", heater.fit_heater, heater.DEFAULTS, uses_teacher=True),
        BaselineSpec("clcrec", clcrec.fit_clcrec, clcrec.DEFAULTS),
        BaselineSpec("aldi", aldi.fit_aldi, aldi.DEFAULTS, uses_teacher=True),
        BaselineSpec("content_cf_nb", content_cf.fit_content_cf_nb, content_cf.NB_DEFAULTS, uses_teacher=True,
                     inert=content_knn.inert_params),
        BaselineSpec("content_cf_reg", content_cf.fit_content_cf_reg, content_cf.REG_DEFAULTS, uses_teacher=True,
                     inert=content_knn.inert_params),
    ]
}


def check_grids(config) -> None:
    """Every grid parameter of a :class:`~graphrec.baselines.config.BaselinesConfig` is one its baseline takes."""
    from graphrec.config_base import ConfigError

    for n, grid in config.grids.items():
        for k in grid:
            if k not in BASELINES[n].defaults:
                raise ConfigError(f"baselines.grids.{n}.{k}: unknown parameter; valid: {sorted(BASELINES[n].defaults)}")


def get_baseline(name: str) -> BaselineSpec:
    """The spec of ``name``; an unknown name is an error listing the valid ones."""
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; available: {sorted(BASELINES)}")
    return BASELINES[name]


def fit_baseline(name: str, data, params: dict[str, Any] | None = None, seed: int = 0, validate=None,
                 progress: bool = True, teacher=None):
    """Fit baseline ``name`` with ``params`` (missing keys take the defaults).

    ``validate`` is required by the trainable baselines (early stopping on validation).
    """
    spec = get_baseline(name)
    return spec.fit(data, params or {}, seed, validate, progress, teacher)


__all__ = ["BASELINES", "BaselineSpec", "check_grids", "get_baseline", "fit_baseline"]
