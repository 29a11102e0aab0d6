"""Sanity checks on the real pretrained weights (MiniLM text, EfficientNet-Lite0 images).

Marked ``weights`` (and ``data`` where ml1m-mm posters are used): skipped by default, run with
``python3 -m pytest tests/test_encoders_weights.py -m "weights or data" -q``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from graphrec.encoders import build_encoder

pytestmark = [pytest.mark.weights, pytest.mark.slow]

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ml1m-mm"


def cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(a, dim=-1) @ torch.nn.functional.normalize(b, dim=-1).T


def test_minilm_similar_texts_are_nearer():
    enc = build_encoder("minilm", template=None)
    df = pd.DataFrame({"item_id": list("abcd"), "text": [
        "A crew of astronauts fights a deadly alien creature aboard their spaceship.",
        "On a starship in deep space, the crew is hunted by a monstrous alien.",
        "A romantic comedy about two strangers who fall in love before a wedding in Paris.",
        "",
    ]})
    res = enc.encode(df, progress=False)
    assert res.x.shape == (4, 384) and res.mask.tolist() == [True, True, True, False] and res.status[3] == "empty"
    s = cos(res.x[:3], res.x[:3])
    assert s[0, 1] > s[0, 2] + 0.2 and s[1, 0] > s[1, 2] + 0.2
    assert torch.allclose(res.x[:3].norm(dim=1), torch.ones(3), atol=1e-5)


def test_lite0_loads_strictly_and_classifies_a_photo():
    import matplotlib.cbook
    from PIL import Image

    enc = build_encoder("efficientnet_lite0")
    img = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    x = enc.preprocess(img)[None]
    with torch.inference_mode():
        probs = enc.model(x).softmax(-1)[0]
        feats = enc.forward(x)
    # ImageNet classes 400 academic gown, 652 military uniform, 667 mortarboard, 906 Windsor tie
    assert int(probs.argmax()) in (400, 652, 667, 906) and float(probs.max()) > 0.3
    assert feats.shape == (1, 1280)


@pytest.mark.data
def test_lite0_crops_of_one_poster_are_nearer_than_other_posters():
    if not DATA.exists():
        pytest.skip(f"{DATA} not found")
    from PIL import Image

    enc = build_encoder("efficientnet_lite0")
    ids = ["1", "260", "1196", "2571", "356", "593", "1721", "2858"]
    rng = np.random.default_rng(0)
    a, b = [], []
    for i in ids:
        img = Image.open(DATA / "images" / f"{i}.jpg").convert("RGB")
        w, h = img.size
        crops = []
        for _ in range(2):
            cw, ch = int(w * 0.8), int(h * 0.8)
            l, t = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            crops.append(enc.preprocess(img.crop((l, t, l + cw, t + ch))))
        a.append(crops[0])
        b.append(crops[1])
    fa, fb = enc.forward(torch.stack(a)), enc.forward(torch.stack(b))
    s = cos(fa, fb)  # (P, P): diagonal = same poster
    same = s.diag()
    other = s[~torch.eye(len(ids), dtype=torch.bool)]
    assert same.mean() > other.mean() + 0.2
    assert (s.argmax(dim=1) == torch.arange(len(ids))).float().mean() >= 0.85
