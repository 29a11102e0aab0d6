"""Unit tests of graphrec.encoders with deterministic fake encoders (no model weights)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import fakes  # noqa: E402  (registers fake_text / fake_image)

from graphrec.config_base import ConfigError  # noqa: E402
from graphrec.encoders import (  # noqa: E402
    DEFAULT_TEMPLATE,
    EncodersConfig,
    Encoder,
    build_encoder,
    build_texts,
    check_items,
    encode_items,
    list_encoders,
    load_rgb,
    map_lite0_state_dict,
    parse_template,
    register_encoder,
)


@pytest.fixture
def items(tmp_path):
    return fakes.make_items(tmp_path / "img")


def test_default_template_renders_and_drops_empty_sentences():
    df = pd.DataFrame([
        {"item_id": "1", "title": "Toy Story (1995)", "genres": "Animation|Comedy", "plot": "Toys come alive.",
         "director": "John Lasseter", "actors": "Tom Hanks, Tim Allen"},
        {"item_id": "2", "title": "Heat", "genres": "", "plot": np.nan, "director": "Michael Mann", "actors": ""},
    ])
    texts, info = build_texts(df, DEFAULT_TEMPLATE)
    assert texts[0] == ("Toy Story (1995). Genres: Animation, Comedy. Toys come alive. "
                        "Directed by John Lasseter. Starring Tom Hanks, Tim Allen.")
    assert texts[1] == "Heat. Directed by Michael Mann."
    assert info["source"] == "template"


def test_template_none_and_default_fallback_use_text_column():
    df = pd.DataFrame({"item_id": ["a", "b"], "text": ["hello world", np.nan]})
    assert build_texts(df, None)[0] == ["hello world", ""]
    texts, info = build_texts(df, DEFAULT_TEMPLATE)  # table lacks the default template's columns
    assert texts == ["hello world", ""] and info["source"] == "text column" and "lacks" in info["fallback"]


def test_custom_template_with_missing_column_raises_naming_it():
    df = pd.DataFrame({"item_id": ["a"], "text": ["x"], "title": ["T"]})
    with pytest.raises(ValueError, match="plott"):
        build_texts(df, "{title}. {plott}")


def test_malformed_template_is_a_config_error():
    with pytest.raises(ConfigError):
        parse_template("{title")
    with pytest.raises(ConfigError):
        EncodersConfig.from_dict({"text": {"template": "{0} {title}"}})


def test_config_is_strict_and_round_trips(tmp_path):
    with pytest.raises(ConfigError, match="batchsize"):
        EncodersConfig.from_dict({"text": {"batchsize": 3}})
    with pytest.raises(ConfigError, match="checkpoint"):
        EncodersConfig.from_dict({"image": {"name": "open_clip"}})
    with pytest.raises(ConfigError, match="audio"):
        EncodersConfig.from_dict({"enabled": ["text", "audio"]})
    cfg = EncodersConfig.from_dict({"image": {"checkpoint": "/w/clip.pt", "arch": "ViT-B-32"}, "batch_size": 4})
    assert cfg.image.resolved_name == "open_clip"  # a CLIP checkpoint selects open_clip
    assert cfg.batch_size_for("text") == 4 == cfg.batch_size_for("image")
    cfg.save_yaml(tmp_path / "enc.yaml")
    assert EncodersConfig.load_yaml(tmp_path / "enc.yaml") == cfg
    assert EncodersConfig().image.resolved_name == "efficientnet_lite0"
    assert EncodersConfig().text.template == DEFAULT_TEMPLATE


def test_registry():
    assert {"minilm", "sentence_transformers", "efficientnet_lite0", "open_clip", "open_clip_text",
            "fake_text", "fake_image"} <= set(list_encoders())
    with pytest.raises(KeyError, match="registered"):
        build_encoder("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_encoder("fake_text", lambda **kw: None)
    enc = build_encoder("fake_text", template=None)
    assert isinstance(enc, Encoder) and enc.modality == "text"


def test_check_items_names_bad_rows():
    with pytest.raises(ValueError, match="row 2: duplicate item_id '1'"):
        check_items(pd.DataFrame({"item_id": ["1", "2", "1"]}))
    with pytest.raises(ValueError, match="row 1: empty item_id"):
        check_items(pd.DataFrame({"item_id": ["1", np.nan]}))
    assert check_items(pd.DataFrame({"item_id": [1, 2]})) == ["1", "2"]


def test_every_bad_image_is_handled_and_counted(items, tmp_path):
    cfg = fakes.fake_config(**{"image.max_pixels": 20000})
    feats, report = encode_items(items, cfg, tmp_path / "cache", progress=False)
    img, rep = feats["image"], report["modalities"]["image"]
    stored = torch.load(rep["cache_file"], weights_only=True)
    status = dict(zip(stored["item_ids"], stored["status"]))
    for kid, kind in zip(items.item_id, items.kind):
        assert status[kid] == fakes.EXPECTED_STATUS[kind], kind
    with_feat = {k for k, s in fakes.EXPECTED_STATUS.items() if s in ("ok", "converted", "downscaled")}
    assert img.mask.tolist() == [k in with_feat for k in items.kind]
    assert torch.all(img.x[~img.mask] == 0) and torch.all(img.x[img.mask].abs().sum(1) > 0)
    assert rep["missing"] == 2 and rep["unreadable"] == 4 and rep["converted"] == 6
    assert rep["with_features"] == len(with_feat) and rep["cache"] == "miss"
    assert {e["item_id"] for e in rep["examples"]["unreadable"]} == set(items.item_id[items.kind.isin(["truncated", "corrupt", "emptyfile"])])
    txt = feats["text"]
    assert txt.mask.tolist() == [k != "ok2" for k in items.kind]  # ok2 has no text at all
    assert report["modalities"]["text"]["counts"] == {"ok": 14, "empty": 1}
    assert torch.allclose(txt.x[txt.mask].norm(dim=1), torch.ones(int(txt.mask.sum())))
    assert img.item_ids == txt.item_ids == list(items.item_id)


def test_grayscale_and_rgba_conversion(tmp_path):
    from PIL import Image

    Image.new("L", (10, 10), 77).save(tmp_path / "g.png")
    im, st, note = load_rgb(str(tmp_path / "g.png"), 10**6)
    assert st == "converted" and im.mode == "RGB" and im.getpixel((0, 0)) == (77, 77, 77)
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(tmp_path / "t.png")
    im, st, note = load_rgb(str(tmp_path / "t.png"), 10**6)
    assert st == "converted" and im.getpixel((3, 3)) == (255, 255, 255) and note == "RGBA->RGB"


def test_sequential_and_threaded_decoding_agree(items, tmp_path):
    a = build_encoder("fake_image", num_workers=0, batch_size=3, max_pixels=20000).encode(items, progress=False)
    b = build_encoder("fake_image", num_workers=3, batch_size=2, max_pixels=20000).encode(items, progress=False)
    assert torch.equal(a.x, b.x) and a.status == b.status and torch.equal(a.mask, b.mask)


def test_lite0_key_mapping_rejects_foreign_keys():
    sd = {"_conv_stem.weight": torch.zeros(1), "_blocks.0._depthwise_conv.weight": torch.zeros(1),
          "_blocks.1._expand_conv.weight": torch.zeros(1), "_blocks.15._bn2.bias": torch.zeros(1), "_fc.bias": torch.zeros(1)}
    out = map_lite0_state_dict(sd)
    assert set(out) == {"conv_stem.weight", "blocks.0.0.conv_dw.weight", "blocks.1.0.conv_pw.weight",
                        "blocks.6.0.bn3.bias", "classifier.bias"}
    with pytest.raises(KeyError, match="_se_reduce"):
        map_lite0_state_dict({"_blocks.3._se_reduce.weight": torch.zeros(1)})


def test_text_only_table_with_default_config(tmp_path):
    df = pd.DataFrame({"item_id": ["x", "y"], "text": ["space alien", ""], "image_path": ["", np.nan]})
    feats, report = encode_items(df, fakes.fake_config(), tmp_path / "c", progress=False)
    assert feats["text"].mask.tolist() == [True, False]
    assert report["modalities"]["text"]["text_source"]["source"] == "text column"
    assert feats["image"].mask.tolist() == [False, False] and report["modalities"]["image"]["missing"] == 2


def test_fake_text_similarity_is_meaningful(items, tmp_path):
    feats, _ = encode_items(items, fakes.fake_config(**{"enabled": ["text"]}), tmp_path / "c", progress=False)
    x = feats["text"].x
    # rows 0 and 2 share "space ... alien", row 1 is a romantic comedy (template includes plot words)
    df = pd.DataFrame({"item_id": ["a", "b", "c"], "text": ["space alien invasion", "space alien crew", "romantic comedy wedding"]})
    f2, _ = encode_items(df, fakes.fake_config(**{"enabled": ["text"], "text.template": None}), tmp_path / "c2", progress=False)
    s = f2["text"].x @ f2["text"].x.T
    assert s[0, 1] > s[0, 2]
    assert x.shape == (len(items), 32)
