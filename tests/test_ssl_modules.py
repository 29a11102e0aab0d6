"""Heads, user-view encoders and genre targets used by the self-supervised objectives."""

import pandas as pd
import pytest
import torch

from graphrec.data.genres import genre_targets
from graphrec.encoders.template import template_mentions_genres, template_without_genres
from graphrec.nn.heads import BarlowProjector, FeatureReconstructor, GenreClassifier
from graphrec.nn.sequence import SequenceUserEncoder, SetUserEncoder, recent_histories, user_view_kind


def test_heads_shapes_and_grad():
    x = torch.randn(6, 8, requires_grad=True)
    assert GenreClassifier(8, 18)(x).shape == (6, 18)
    assert GenreClassifier(8, 18, hidden=16)(x).shape == (6, 18)
    assert FeatureReconstructor(8, 384, 32)(x).shape == (6, 384)
    p = BarlowProjector(8, 32, 16, layers=3)
    p(x).sum().backward()
    assert x.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        BarlowProjector(8, layers=0)


def test_genre_targets():
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "genres": ["Drama|Comedy", "", "Horror"]})
    t, mask, vocab, rep = genre_targets(items)
    assert vocab == ["Comedy", "Drama", "Horror"]
    assert t.tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 1]] and mask.tolist() == [True, False, True]
    assert rep["n_without_genre"] == 1
    t2, _, _, rep2 = genre_targets(items, vocab=["Drama"])
    assert t2.shape == (3, 1) and rep2["unknown_genres"] == {"Comedy": 1, "Horror": 1}
    with pytest.raises(KeyError):
        genre_targets(items, column="tags")


def test_template_without_genres():
    from graphrec.encoders.config import DEFAULT_TEMPLATE

    assert template_mentions_genres(DEFAULT_TEMPLATE)
    t = template_without_genres(DEFAULT_TEMPLATE)
    assert "{genres}" not in t and "{title}" in t and "{plot}" in t and not template_mentions_genres(t)


def test_recent_histories_time_order():
    edges = torch.tensor([[0, 0, 0, 1, 0], [5, 6, 7, 8, 9]])
    ts = torch.tensor([3.0, 1.0, 2.0, 0.0, 4.0])
    items, lengths = recent_histories(edges, ts, 3, max_len=3)
    assert items.tolist() == [[7, 5, 9], [8, -1, -1], [-1, -1, -1]] and lengths.tolist() == [3, 1, 0]
    assert user_view_kind(None) == "set" and user_view_kind(ts) == "sequence"
    with pytest.raises(ValueError):
        recent_histories(edges, None, 3, 3)


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_sequence_encoder_uses_order_and_ignores_padding(kind):
    torch.manual_seed(0)
    enc = SequenceUserEncoder(8, kind=kind, max_len=5, dropout=0.0).eval()
    seq = torch.randn(2, 5, 8)
    lengths = torch.tensor([3, 0])
    out = enc(seq, lengths)
    assert out.shape == (2, 8) and out[1].abs().sum() == 0
    seq2 = seq.clone()
    seq2[0, 3:] = torch.randn(2, 8)  # padding changes nothing
    assert torch.allclose(enc(seq2, lengths), out, atol=1e-5)
    rev = seq.clone()
    rev[0, :3] = seq[0, :3].flip(0)  # order matters
    assert not torch.allclose(enc(rev, lengths)[0], out[0], atol=1e-4)


def test_set_encoder_order_free():
    enc = SetUserEncoder(4)
    seq = torch.randn(1, 3, 4)
    a = enc(seq, torch.tensor([3]))
    assert torch.allclose(a, seq.mean(1))  # starts as the plain mean
    assert torch.allclose(enc(seq.flip(1), torch.tensor([3])), a)
