"""Loss weights for auxiliary objectives: fixed, or adjusted from validation signals.

:class:`LossWeighter` is called once after each validation with the validation metric (the
early-stopping metric, cold-validation NDCG@20 by default) and the mean training value of each
loss term since the previous validation. In ``"validation"`` mode it compares, for every
adjustable (auxiliary) term, the change of the validation metric with the term's *trend*:

* ``progress_k = (L_k(prev) - L_k(now)) / |L_k(prev)|`` - how much the model advanced on term
  ``k`` since the last validation (positive when the term's loss fell, i.e. the model moved
  towards that objective);
* ``share_k = progress_k / max_j progress_j`` over the terms with positive progress (in [0, 1];
  the term that moved most carries most of the credit or blame);
* validation worse by more than ``tolerance``: ``w_k <- w_k * down ** share_k``
  (a term whose progress coincides with worse validation is turned down);
* validation better by more than ``tolerance``: ``w_k <- w_k * up ** share_k``;
* weights are clipped to ``[min_ratio, max_ratio] x`` their initial value; a term with initial
  weight 0 stays off; non-adjustable terms (the main link-prediction loss) never change.

This is a heuristic in the spirit of validation-driven auxiliary weighting (e.g. "Adaptive
Auxiliary Task Weighting for Reinforcement Learning", Lin et al., NeurIPS 2019; GradNorm,
Chen et al., ICML 2018, balances by gradients instead). Its credit assignment is
correlational: when every term progresses at once, all are moved together. ``"fixed"`` mode
keeps the initial weights (the comparison baseline) but still records the trajectory.

Every update appends a record to :attr:`LossWeighter.trajectory` (for TensorBoard,
``history.json`` and :func:`plot_weight_trajectories`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class LossWeighter:
    """Per-term loss weights, fixed or updated after each validation.

    Args:
        weights: initial weight of every loss term (``{"rec": 1.0, "barlow": 0.1, ...}``).
        adjustable: the terms that may change (default: every term except ``rec``).
        mode: ``"fixed"`` or ``"validation"``.
        down: multiplicative decrease (< 1) for a harmful term at full share.
        up: multiplicative increase (>= 1) for a helpful term at full share.
        tolerance: validation changes within +-tolerance count as no change.
        min_ratio / max_ratio: clip range relative to the initial weight.
        min_progress: progress at or below this gives a term no credit or blame.
    """

    MODES = ("fixed", "validation")

    def __init__(self, weights: dict[str, float], adjustable: list[str] | None = None, mode: str = "fixed",
                 down: float = 0.5, up: float = 1.1, tolerance: float = 1e-4, min_ratio: float = 0.01,
                 max_ratio: float = 4.0, min_progress: float = 0.0) -> None:
        if mode not in self.MODES:
            raise ValueError(f"LossWeighter: mode must be one of {self.MODES}, got {mode!r}")
        if not 0 < down <= 1 or up < 1:
            raise ValueError(f"LossWeighter: need 0 < down <= 1 <= up, got down={down}, up={up}")
        if not 0 <= min_ratio <= 1 <= max_ratio:
            raise ValueError(f"LossWeighter: need 0 <= min_ratio <= 1 <= max_ratio, got {min_ratio}, {max_ratio}")
        bad = [k for k in (adjustable or []) if k not in weights]
        if bad:
            raise KeyError(f"LossWeighter: adjustable terms {bad} have no weight; terms: {sorted(weights)}")
        self.initial = {k: float(v) for k, v in weights.items()}
        self.weights = dict(self.initial)
        self.adjustable = list(adjustable) if adjustable is not None else [k for k in weights if k != "rec"]
        self.mode, self.down, self.up, self.tolerance = mode, down, up, tolerance
        self.min_ratio, self.max_ratio, self.min_progress = min_ratio, max_ratio, min_progress
        self.trajectory: list[dict[str, Any]] = []
        self._prev: tuple[float, dict[str, float]] | None = None

    def weight(self, term: str) -> float:
        """Current weight (0 for an unknown term)."""
        return float(self.weights.get(term, 0.0))

    def update(self, metric: float, losses: dict[str, float], step: int = 0, epoch: int = -1) -> dict[str, float]:
        """Record a validation and (``"validation"`` mode) adjust the weights.

        Args:
            metric: validation metric, higher is better.
            losses: mean training value of each term since the last update (keys may carry a
                ``_loss`` suffix, e.g. ``"barlow_loss"``).
            step / epoch: for the trajectory record.

        Returns:
            the new weights.
        """
        cur = {k[:-5] if k.endswith("_loss") else k: float(v) for k, v in losses.items()}
        progress: dict[str, float] = {}
        actions: dict[str, float] = {}
        delta = None
        if self._prev is not None:
            m_prev, l_prev = self._prev
            delta = float(metric) - m_prev
            for k in self.adjustable:
                if k in cur and k in l_prev and self.initial[k] > 0:
                    progress[k] = (l_prev[k] - cur[k]) / max(abs(l_prev[k]), 1e-12)
            pos = {k: p for k, p in progress.items() if p > self.min_progress}
            top = max(pos.values(), default=0.0)
            if self.mode == "validation" and top > 0 and abs(delta) > self.tolerance:
                base = self.down if delta < 0 else self.up
                for k, p in pos.items():
                    factor = base ** (p / top)
                    lo, hi = self.initial[k] * self.min_ratio, self.initial[k] * self.max_ratio
                    self.weights[k] = min(max(self.weights[k] * factor, lo), hi)
                    actions[k] = factor
        self._prev = (float(metric), cur)
        self.trajectory.append({"step": int(step), "epoch": int(epoch), "metric": float(metric), "delta": delta,
                                "weights": dict(self.weights), "progress": progress, "factor": actions})
        return dict(self.weights)

    def state_dict(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "trajectory": list(self.trajectory), "prev": self._prev}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights = dict(state["weights"])
        self.trajectory = list(state["trajectory"])
        self._prev = tuple(state["prev"]) if state.get("prev") is not None else None


def plot_weight_trajectories(trajectory: list[dict[str, Any]], path: str | Path, title: str = "loss weights") -> Path:
    """Plot weight per term (left axis, log scale) and the validation metric (right axis) per step.

    Returns the written path (PNG).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if trajectory:
        steps = [r["step"] for r in trajectory]
        for term in trajectory[0]["weights"]:
            ys = [r["weights"].get(term, 0.0) for r in trajectory]
            if any(y > 0 for y in ys):
                ax.plot(steps, ys, marker="o", ms=3, label=term)
        ax.set_yscale("log")
        ax2 = ax.twinx()
        ax2.plot(steps, [r["metric"] for r in trajectory], "k--", lw=1, label="validation")
        ax2.set_ylabel("validation metric")
    ax.set_xlabel("step")
    ax.set_ylabel("weight")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
