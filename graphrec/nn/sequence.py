"""User views from interaction histories: order-free (set) and ordered (sequence).

* :class:`SetUserEncoder`: mean of the history's item embeddings plus an MLP. This is the user
  view on data **without timestamps** - ml1m-mm's interactions.csv has none (docs of the data
  set), so graphrec uses the set view there and the sequence encoder is never built.
* :class:`SequenceUserEncoder`: a GRU (GRU4Rec, Hidasi et al., ICLR 2016) or a small causal
  transformer (SASRec, Kang & McAuley, ICDM 2018) over the user's most recent items in time
  order; the state after the last item is the user view.

:func:`recent_histories` builds the padded, time-ordered input from train edges and
timestamps; :func:`user_view_kind` says which view a data set supports.
"""

from __future__ import annotations

import torch
from torch import nn


def user_view_kind(timestamps: torch.Tensor | None) -> str:
    """``"sequence"`` when every train interaction has a timestamp, else ``"set"``."""
    if timestamps is None or timestamps.numel() == 0 or torch.isnan(timestamps.double()).any():
        return "set"
    return "sequence"


def recent_histories(edges: torch.Tensor, timestamps: torch.Tensor, num_users: int, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``max_len`` most recent items of each user, oldest first, right-padded with -1.

    Ties in time keep the input order (stable sort).

    Args:
        edges: train ``[user, item]`` pairs.
        timestamps: one per edge (any monotone unit).
        num_users: number of users.
        max_len: history length kept.

    Returns:
        ``(items (U, L) long, -1 = padding; lengths (U,) long)``

    Shapes:
        edges: (2, E), timestamps: (E,) -> (U, max_len), (U,)
    """
    if timestamps is None or timestamps.shape != (edges.shape[1],):
        raise ValueError("recent_histories: need one timestamp per train edge (data without timestamps use the set view)")
    if max_len < 1:
        raise ValueError(f"recent_histories: max_len must be >= 1, got {max_len}")
    # order by (user, time): stable sort by time, then stable by user
    o1 = torch.sort(timestamps.double(), stable=True).indices
    o2 = torch.sort(edges[0][o1], stable=True).indices
    order = o1[o2]
    users, items = edges[0][order], edges[1][order]
    counts = torch.bincount(users, minlength=num_users)
    ends = torch.cumsum(counts, 0)  # (U,)
    from_end = ends[users] - 1 - torch.arange(users.numel())  # 0 = most recent
    keep = from_end < max_len
    lengths = counts.clamp(max=max_len)
    col = lengths[users] - 1 - from_end  # oldest kept -> 0
    out = torch.full((num_users, max_len), -1, dtype=torch.long)
    out[users[keep], col[keep]] = items[keep]
    return out, lengths


class SetUserEncoder(nn.Module):
    """Order-free user view: masked mean of history item embeddings, then a residual MLP.

    Args:
        dim: embedding size.

    Shapes:
        item_emb: (B, L, d), lengths: (B,) -> (B, d)
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.mlp:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        nn.init.zeros_(self.mlp[-1].weight)  # starts as the plain mean
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, item_emb: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        L = item_emb.shape[1]
        valid = torch.arange(L).unsqueeze(0) < lengths.unsqueeze(1)  # (B, L)
        w = valid.to(item_emb.dtype).unsqueeze(-1)
        mean = (item_emb * w).sum(1) / w.sum(1).clamp_min(1.0)  # (B, d)
        return mean + self.mlp(mean)


class SequenceUserEncoder(nn.Module):
    """Ordered user view over the recent history: GRU or a small causal transformer.

    Args:
        dim: embedding size.
        kind: ``"gru"`` (GRU4Rec) or ``"transformer"`` (SASRec-style, learned positions).
        max_len: maximum history length (transformer positions).
        num_layers: recurrent / transformer layers.
        num_heads: attention heads (transformer).
        dropout: dropout inside the encoder.

    Shapes:
        item_emb: (B, L, d) oldest first, right-padded; lengths: (B,) -> (B, d).
        Users with length 0 get zeros.
    """

    def __init__(self, dim: int, kind: str = "gru", max_len: int = 50, num_layers: int = 1, num_heads: int = 2,
                 dropout: float = 0.1) -> None:
        super().__init__()
        if kind not in ("gru", "transformer"):
            raise ValueError(f"SequenceUserEncoder: kind must be 'gru' or 'transformer', got {kind!r}")
        self.kind, self.max_len = kind, max_len
        if kind == "gru":
            self.rnn = nn.GRU(dim, dim, num_layers=num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0)
        else:
            self.pos = nn.Embedding(max_len, dim)
            layer = nn.TransformerEncoderLayer(dim, num_heads, dim_feedforward=2 * dim, dropout=dropout, batch_first=True,
                                               norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.kind == "gru":
            self.rnn.reset_parameters()
        else:
            nn.init.normal_(self.pos.weight, std=0.02)
            for layer in self.encoder.layers:
                for m in layer.modules():
                    if m is not layer and hasattr(m, "reset_parameters"):
                        m.reset_parameters()

    def forward(self, item_emb: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        B, L, _ = item_emb.shape
        if L > self.max_len and self.kind == "transformer":
            raise ValueError(f"SequenceUserEncoder: sequence length {L} > max_len {self.max_len}")
        lengths = lengths.long()
        last = (lengths - 1).clamp_min(0)  # (B,)
        if self.kind == "gru":
            h, _ = self.rnn(item_emb)  # (B, L, d)
        else:
            x = item_emb + self.pos.weight[:L].unsqueeze(0)
            causal = torch.triu(torch.ones(L, L, dtype=torch.bool), 1)  # True = blocked
            pad = torch.arange(L).unsqueeze(0) >= lengths.clamp_min(1).unsqueeze(1)  # (B, L)
            h = self.encoder(x, mask=causal, src_key_padding_mask=pad)  # (B, L, d)
        out = h[torch.arange(B), last]  # (B, d): state after the most recent item
        return out * (lengths > 0).to(out.dtype).unsqueeze(1)
