"""What each of GraphRec's cold-start mechanisms is worth, read from its validation calibration.

The calibration step (:mod:`graphrec.recipes.calibrate`) records the cold-validation value of
every grid point of the content-term weights. From that record alone (validation data) this
module derives the model each ablation would have selected, and scores it without retraining:

* ``graphrec-gnn``: the GNN score alone (CF transfer, content walks and popularity prior off);
* ``graphrec-no_transfer``: the best calibration with the backbone's CF transfer off;
* ``graphrec-no_walk``: the best calibration with the content walk off;
* ``graphrec-no_prior``: the best calibration with the popularity prior off;
* ``graphrec-no_learned_walk``: the best calibration with the learned content walk off (its
  grid points exist when the model has a fitted walk).

They are evaluated in the cold setting, next to ``graphrec`` (everything on).
"""

from __future__ import annotations

from typing import Any

import torch

VARIANTS = {"graphrec-gnn": lambda p: p["profile"] == 0 and p["prior"] == 0 and p.get("transfer", 0) == 0
            and p.get("walk", 0) == 0,
            "graphrec-no_transfer": lambda p: p.get("transfer", 0) == 0,
            "graphrec-no_walk": lambda p: p["profile"] == 0,
            "graphrec-no_prior": lambda p: p["prior"] == 0,
            "graphrec-no_learned_walk": lambda p: p.get("walk", 0) == 0}
NEEDS = {"graphrec-no_transfer": "transfer", "graphrec-no_learned_walk": "walk"}  # variant -> term it drops


class WithContentWeights:
    """``model`` scored with other content-term weights (the model's own are restored after each call).

    Shapes:
        score: (B,) -> (B, I)
    """

    supports_cold = True

    def __init__(self, model, profile_weight: float, prior_weight: float, cold_offset: float = 0.0,
                 transfer_weight: float = 0.0, walk_weight: float = 0.0) -> None:
        self.model, self.weights = model, (profile_weight, prior_weight, cold_offset)
        self.transfer_weight, self.walk_weight = transfer_weight, walk_weight

    @torch.no_grad()
    def score(self, users: torch.Tensor) -> torch.Tensor:
        cs, bb, walk = self.model.content_scores, self.model.backbone, self.model.walk
        saved = (float(cs.profile_weight), float(cs.prior_weight), float(cs.cold_offset))
        saved_t, saved_w = float(bb.transfer_weight), float(walk.weight) if walk is not None else 0.0
        cs.set_weights(*self.weights)
        bb.transfer_weight.fill_(self.transfer_weight)
        if walk is not None:
            walk.weight.fill_(self.walk_weight)
        try:
            return self.model.score(users)
        finally:
            cs.set_weights(*saved)
            bb.transfer_weight.fill_(saved_t)
            if walk is not None:
                walk.weight.fill_(saved_w)


def mechanism_variants(model, record: dict[str, Any]) -> dict[str, WithContentWeights]:
    """The ablation scorers a calibration record supports (empty when it has no grid)."""
    grid = record.get("grid") or []
    if "text_weight" in record:  # the model holds the chosen share's content terms: its rows only
        grid = [g for g in grid if g.get("text_weight") == record["text_weight"]]
    if not grid:
        return {}
    s, s_p, s_t = record["cos_spread"], record["profile_spread"], record.get("backbone_spread", 1.0)
    s_l = record.get("walk_spread", 1.0)
    out = {}
    for name, keep in VARIANTS.items():
        pts = [g for g in grid if keep(g)]
        if pts and (name not in NEEDS or any(g.get(NEEDS[name], 0) for g in grid)):
            best = max(pts, key=lambda g: g["value"])
            out[name] = WithContentWeights(model, best["profile"] * s / s_p, best["prior"] * s, 0.0,
                                           best.get("transfer", 0.0) * s / s_t, best.get("walk", 0.0) * s / s_l)
    return out
