"""Settings and exclusions of the full-ranking protocol, as one explicit index object.

============  ==============================  ==========================
setting       candidates ranked               positives
============  ==============================  ==========================
``cold``      cold items of the phase         cold edges of the phase
``warm``      warm items                      warm edges of the phase
``hybrid``    warm + cold items of the phase  warm + cold edges
``cold_full`` every catalogue item            cold edges of the phase
============  ==============================  ==========================

``phase="test"`` uses ``test_warm``/``test_cold`` and the cold-test items and excludes the
user's train *and* validation positives from every ranking (known history);
``phase="val"`` uses ``val_warm``/``val_cold`` and the cold-validation items and excludes
train positives only. :class:`EvalIndex` holds all of it for one ``(data, phase)``; build it
once and pass it to every evaluation of that phase (validation runs every epoch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import torch

from graphrec.data.dataset import RecData
from graphrec.data.edges import csr, dedup, pair_keys

SETTINGS = ("cold", "warm", "hybrid", "cold_full")


@dataclass
class SettingSpec:
    """Candidates and positives of one setting in one phase.

    Shapes:
        candidates: (C,) item indices, sorted; positives: (2, P) ``[user, item]``, deduplicated.
    """

    name: str
    candidates: torch.Tensor
    positives: torch.Tensor
    all_items: bool = False


def check_phase(phase: str) -> None:
    if phase not in ("val", "test"):
        raise ValueError(f"phase must be 'val' or 'test', got {phase!r}")


def check_settings(settings: Sequence[str]) -> None:
    bad = [s for s in settings if s not in SETTINGS]
    if bad:
        raise ValueError(f"unknown setting(s) {bad}; expected some of {SETTINGS}")


def exclusion_edges(data: RecData, phase: Literal["val", "test"]) -> torch.Tensor:
    """Known history excluded from every ranking: train (+ val_warm, val_cold at test time).

    Shapes:
        returns (2, E) ``[user, item]``, deduplicated and sorted.
    """
    check_phase(phase)
    parts = [data.train] + ([data.val_warm, data.val_cold] if phase == "test" else [])
    return dedup(torch.cat([p.long() for p in parts], 1), data.num_items)


def setting_specs(data: RecData, phase: Literal["val", "test"] = "test",
                  settings: Sequence[str] = SETTINGS) -> dict[str, SettingSpec]:
    """Candidates and positives of each setting (docs/DESIGN.md, "Evaluation protocol")."""
    check_phase(phase)
    check_settings(settings)
    warm_pos = data.test_warm if phase == "test" else data.val_warm
    cold_pos = data.test_cold if phase == "test" else data.val_cold
    cold_items = data.cold_test_items if phase == "test" else data.cold_val_items
    n = data.num_items
    warm_items = torch.unique(data.warm_items.long())
    cold_items = torch.unique(cold_items.long())
    table = {
        "cold": (cold_items, cold_pos, False),
        "warm": (warm_items, warm_pos, False),
        "hybrid": (torch.unique(torch.cat([warm_items, cold_items])), torch.cat([warm_pos, cold_pos], 1), False),
        "cold_full": (torch.arange(n), cold_pos, True),
    }
    return {s: SettingSpec(s, table[s][0], dedup(table[s][1].long(), n), table[s][2]) for s in settings}


@dataclass
class EvalIndex:
    """Everything the ranking loop needs for one ``(data, phase)``, computed once.

    Attributes:
        phase: ``"val"`` or ``"test"``.
        num_users / num_items: index-space sizes.
        specs: every setting's :class:`SettingSpec`.
        excl_indptr / excl_items: CSR of the excluded known history per user.
        excl_keys: sorted pair keys of the excluded history.
        pos_csr: per setting, CSR of the positives per user.
        pos_count: per setting, (U,) number of positives per user.
    """

    phase: str
    num_users: int
    num_items: int
    specs: dict[str, SettingSpec]
    excl_indptr: torch.Tensor
    excl_items: torch.Tensor
    excl_keys: torch.Tensor
    pos_csr: dict[str, tuple[torch.Tensor, torch.Tensor]]
    pos_count: dict[str, torch.Tensor]

    @classmethod
    def build(cls, data: RecData, phase: Literal["val", "test"] = "test") -> "EvalIndex":
        check_phase(phase)
        U, N = data.num_users, data.num_items
        specs = setting_specs(data, phase, SETTINGS)
        excl = exclusion_edges(data, phase)
        indptr, items = csr(excl, U)
        pos_csr = {s: csr(sp.positives, U) for s, sp in specs.items()}
        pos_count = {s: c[0][1:] - c[0][:-1] for s, c in pos_csr.items()}
        return cls(phase, U, N, specs, indptr, items, pair_keys(excl[0], excl[1], N), pos_csr, pos_count)
