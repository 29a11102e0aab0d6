"""open_clip through its real loading path, with a tiny random checkpoint saved by the test."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import fakes  # noqa: E402,F401

from graphrec.encoders import EncodersConfig, encode_items, ensure_torchvision_importable  # noqa: E402

ensure_torchvision_importable()  # before anything imports open_clip / torchvision
pytest.importorskip("open_clip", reason="open-clip-torch not installed (extra [clip])")

pytestmark = pytest.mark.slow  # importing open_clip alone takes several seconds

TINY = {"embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    ensure_torchvision_importable()
    import open_clip

    d = tmp_path_factory.mktemp("clip")
    (d / "graphrec-tiny-clip.json").write_text(json.dumps(TINY))
    open_clip.add_model_config(d / "graphrec-tiny-clip.json")
    torch.manual_seed(0)
    model = open_clip.create_model("graphrec-tiny-clip", pretrained=None)
    torch.save(model.state_dict(), d / "tiny.pt")
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(d / "tiny.safetensors"))
    return d


def test_open_clip_image_and_text_from_local_file(tiny_checkpoint, tmp_path):
    items = fakes.make_items(tmp_path / "img")
    ckpt = str(tiny_checkpoint / "tiny.pt")
    cfg = EncodersConfig.from_dict({"text": {"name": "open_clip_text"},
                                    "image": {"arch": "graphrec-tiny-clip", "checkpoint": ckpt, "max_pixels": 20000}})
    feats, report = encode_items(items, cfg, tmp_path / "c", progress=False)
    img, txt = feats["image"], feats["text"]
    assert report["modalities"]["image"]["encoder"] == "open_clip"  # checkpoint selected open_clip
    assert img.dim == txt.dim == 16
    assert img.mask.tolist() == [fakes.EXPECTED_STATUS[k] in ("ok", "converted", "downscaled") for k in items.kind]
    assert torch.allclose(img.x[img.mask].norm(dim=1), torch.ones(int(img.mask.sum())), atol=1e-5)
    assert txt.mask.sum() == 14
    # the same weights as safetensors give the same features; the fingerprint names the file hash
    cfg2 = cfg.with_overrides({"image.checkpoint": str(tiny_checkpoint / "tiny.safetensors")})
    feats2, report2 = encode_items(items, cfg2, tmp_path / "c", progress=False)
    assert torch.allclose(feats2["image"].x, img.x, atol=1e-5)
    assert feats2["image"].fingerprint != img.fingerprint  # other file, other sha256
    _, r3 = encode_items(items, cfg, tmp_path / "c", progress=False)
    assert r3["modalities"]["image"]["cache"] == "hit" and r3["modalities"]["text"]["cache"] == "hit"


def test_missing_file_and_offline_tag_fail_clearly(tiny_checkpoint, tmp_path):
    from graphrec.encoders import build_encoder

    enc = build_encoder("open_clip", arch="graphrec-tiny-clip", checkpoint=str(tmp_path / "nope.pt"))
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        enc.fingerprint()
    enc = build_encoder("open_clip", arch="graphrec-tiny-clip", checkpoint="some_tag_that_does_not_exist")
    assert enc.fingerprint()  # a tag is fingerprinted by name, without loading
    with pytest.raises(RuntimeError, match="some_tag_that_does_not_exist"):
        _ = enc.dim
