"""A plain container for one modality's item feature matrix."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ItemFeatures:
    """Features of one modality for a list of items.

    Attributes:
        name: modality / encoder name, e.g. ``"text"`` or ``"image"``.
        item_ids: original item ids (strings), one per row.
        x: float32 matrix, rows of items without this modality are zeros.
        mask: bool vector, True where the item had this modality.
        fingerprint: a string that identifies the encoder, weights and preprocessing.
        meta: free-form metadata (counts of missing inputs, creation time, ...).

    Shapes:
        x: (N, D); mask: (N,)
    """

    name: str
    item_ids: list[str]
    x: torch.Tensor
    mask: torch.Tensor
    fingerprint: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.x.dim() != 2 or self.x.shape[0] != len(self.item_ids):
            raise ValueError(f"features {self.name!r}: x has shape {tuple(self.x.shape)}, expected ({len(self.item_ids)}, D)")
        if self.mask.shape != (len(self.item_ids),):
            raise ValueError(f"features {self.name!r}: mask has shape {tuple(self.mask.shape)}, expected ({len(self.item_ids)},)")
        self.x = self.x.float()
        self.mask = self.mask.bool()

    @property
    def dim(self) -> int:
        return int(self.x.shape[1])

    def align(self, item_ids: list[str]) -> "ItemFeatures":
        """Rows reordered to ``item_ids``; ids not present get a zero row with mask False."""
        pos = {i: k for k, i in enumerate(self.item_ids)}
        idx = torch.tensor([pos.get(i, -1) for i in item_ids], dtype=torch.long)
        have = idx >= 0
        x = torch.zeros(len(item_ids), self.dim)
        mask = torch.zeros(len(item_ids), dtype=torch.bool)
        x[have] = self.x[idx[have]]
        mask[have] = self.mask[idx[have]]
        return ItemFeatures(self.name, list(item_ids), x, mask, self.fingerprint, dict(self.meta))
