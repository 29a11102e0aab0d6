"""Dynamic loss weighting on scripted validation traces."""

import pytest

from graphrec.training.weighting import LossWeighter, plot_weight_trajectories


def scripted(mode):
    w = LossWeighter({"rec": 1.0, "barlow": 0.1, "genre": 0.1, "off": 0.0}, mode=mode)
    # 'barlow' keeps falling (the model optimises it) while validation gets worse;
    # 'genre' is flat (no credit, no blame); 'rec' is never adjusted.
    trace = [(0.10, 5.0), (0.09, 4.0), (0.08, 3.0), (0.07, 2.0)]
    for t, (metric, barlow) in enumerate(trace):
        w.update(metric, {"rec_loss": 1.0 - 0.1 * t, "barlow_loss": barlow, "genre_loss": 0.7, "off_loss": 1.0}, step=t)
    return w


def test_harmful_term_is_turned_down():
    w = scripted("validation")
    assert w.weight("barlow") < 0.1 * 0.2
    assert w.weight("genre") == 0.1 and w.weight("rec") == 1.0 and w.weight("off") == 0.0
    assert len(w.trajectory) == 4 and w.trajectory[0]["delta"] is None
    assert [r["weights"]["barlow"] for r in w.trajectory] == sorted([r["weights"]["barlow"] for r in w.trajectory], reverse=True)


def test_fixed_mode_keeps_weights_but_records():
    w = scripted("fixed")
    assert w.weights == {"rec": 1.0, "barlow": 0.1, "genre": 0.1, "off": 0.0}
    assert len(w.trajectory) == 4


def test_helpful_term_goes_up_capped_and_floor():
    w = LossWeighter({"rec": 1.0, "aux": 0.1}, mode="validation", up=2.0, max_ratio=3.0)
    for t in range(6):
        w.update(0.1 + 0.01 * t, {"aux": 10.0 - t})
    assert w.weight("aux") == pytest.approx(0.3)
    w = LossWeighter({"rec": 1.0, "aux": 0.1}, mode="validation", down=0.1, min_ratio=0.05)
    for t in range(6):
        w.update(0.1 - 0.01 * t, {"aux": 10.0 - t})
    assert w.weight("aux") == pytest.approx(0.005)


def test_share_splits_blame_and_state_roundtrip(tmp_path):
    w = LossWeighter({"rec": 1.0, "a": 1.0, "b": 1.0}, mode="validation", down=0.5)
    w.update(0.2, {"a": 1.0, "b": 1.0})
    w.update(0.1, {"a": 0.5, "b": 0.75})  # a progressed 50%, b 25%
    assert w.weight("a") == pytest.approx(0.5) and w.weight("b") == pytest.approx(0.5 ** 0.5)
    w2 = LossWeighter({"rec": 1.0, "a": 1.0, "b": 1.0}, mode="validation")
    w2.load_state_dict(w.state_dict())
    assert w2.weights == w.weights and w2.trajectory == w.trajectory
    path = plot_weight_trajectories(w.trajectory, tmp_path / "w.png")
    assert path.exists() and path.stat().st_size > 1000


def test_bad_arguments():
    with pytest.raises(ValueError):
        LossWeighter({"rec": 1.0}, mode="magic")
    with pytest.raises(KeyError):
        LossWeighter({"rec": 1.0}, adjustable=["nope"])
