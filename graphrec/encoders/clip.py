"""open_clip image and text towers, from a local checkpoint file or a pretrained tag.

Reference: Radford et al., "Learning Transferable Visual Models From Natural Language
Supervision", ICML 2021; Ilharco et al., OpenCLIP, 2021 (Cherti et al., CVPR 2023).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from graphrec.encoders.base import file_sha256, fingerprint_of, register_encoder
from graphrec.encoders.images import ImageEncoderBase
from graphrec.encoders.text import TextEncoderBase

CHECKPOINT_SUFFIXES = (".bin", ".pt", ".pth", ".safetensors")
_MODELS: dict[tuple[str, str, str], tuple[Any, Any, Any]] = {}
_LOCK = threading.Lock()


def is_checkpoint_file(checkpoint: str) -> bool:
    """True when ``checkpoint`` names a file (by suffix or path separator) rather than a tag."""
    return checkpoint.endswith(CHECKPOINT_SUFFIXES) or "/" in checkpoint or Path(checkpoint).is_file()


def checkpoint_id(checkpoint: str, hash_cache: str | Path | None = None) -> str:
    """``sha256:<hex>`` of a checkpoint file, or ``tag:<name>`` for a pretrained tag."""
    if is_checkpoint_file(checkpoint):
        p = Path(checkpoint)
        if not p.is_file():
            raise FileNotFoundError(f"open_clip checkpoint file not found: {checkpoint}")
        return "sha256:" + file_sha256(p, hash_cache)
    return f"tag:{checkpoint}"


def load_open_clip(arch: str, checkpoint: str, device: str | torch.device | None = None) -> tuple[Any, Any, Any]:
    """``(model, preprocess, tokenizer)`` for ``arch`` with weights from a file or a tag (memoised
    per device; the model is in eval mode on ``device``, None = CPU).

    Raises:
        FileNotFoundError: a checkpoint path that does not exist.
        RuntimeError: a tag that cannot be fetched (offline), naming arch and tag.
    """
    device = torch.device(device or "cpu")
    key = (arch, checkpoint, str(device))
    with _LOCK:
        if key in _MODELS:
            return _MODELS[key]
        from graphrec.encoders._compat import ensure_torchvision_importable

        ensure_torchvision_importable()
        import open_clip

        if arch not in open_clip.list_models():
            raise ValueError(f"unknown open_clip architecture {arch!r}; see open_clip.list_models()")
        if is_checkpoint_file(checkpoint):
            if not Path(checkpoint).is_file():
                raise FileNotFoundError(f"open_clip checkpoint file not found: {checkpoint}")
            model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=str(checkpoint))
        else:
            try:
                model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=checkpoint)
            except Exception as exc:  # noqa: BLE001 - offline hub failures come in many types
                raise RuntimeError(
                    f"could not load open_clip {arch} pretrained={checkpoint!r}: {exc}. A pretrained tag needs "
                    "network access (Hugging Face hub); offline, pass a local checkpoint file instead") from exc
        tokenizer = open_clip.get_tokenizer(arch)
        model.to(device).eval()
        _MODELS[key] = (model, preprocess, tokenizer)
        return _MODELS[key]


def embed_dim(model: Any) -> int:
    """Joint embedding size of an open_clip model."""
    d = getattr(getattr(model, "visual", None), "output_dim", None)
    if d is None:
        with torch.inference_mode():
            dev = next(model.parameters()).device
            d = model.encode_text(torch.zeros(1, getattr(model, "context_length", 77), dtype=torch.long, device=dev)).shape[-1]
    return int(d)


class OpenCLIPImageEncoder(ImageEncoderBase):
    """open_clip image tower; L2-normalised embeddings by default.

    Args:
        arch: open_clip architecture (``ViT-B-32`` ...).
        checkpoint: local weights file or pretrained tag.
        batch_size, num_workers, max_pixels, normalize: see :class:`ImageEncoderBase`.

    Shapes:
        forward: (B, 3, S, S) -> (B, embed_dim)
    """

    name = "open_clip"

    def __init__(self, arch: str = "ViT-B-32", checkpoint: str | None = None, batch_size: int = 8, num_workers: int = 2,
                 max_pixels: int = 50_000_000, normalize: bool | None = None, hash_cache: str | Path | None = None,
                 device: str | torch.device | None = None) -> None:
        if not checkpoint:
            raise ValueError("open_clip image encoder needs checkpoint=<file or pretrained tag>")
        super().__init__(batch_size, num_workers, max_pixels, True if normalize is None else bool(normalize), device)
        self.arch, self.checkpoint, self.hash_cache = arch, str(checkpoint), hash_cache
        self._fp: str | None = None

    @property
    def parts(self) -> tuple[Any, Any, Any]:
        return load_open_clip(self.arch, self.checkpoint, self.device)

    @property
    def input_size(self) -> int:  # type: ignore[override]
        size = getattr(self.parts[0].visual, "image_size", 224)
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    @property
    def dim(self) -> int:
        return embed_dim(self.parts[0])

    def fingerprint(self) -> str:
        if self._fp is None:
            self._fp = fingerprint_of({"encoder": "open_clip_image", "arch": self.arch,
                                       "weights": checkpoint_id(self.checkpoint, self.hash_cache),
                                       "preprocess": "open_clip val transform", "normalize": self.normalize})
        return self._fp

    def preprocess(self, img: Any) -> torch.Tensor:
        return self.parts[1](img)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.parts[0].encode_image(batch)


class OpenCLIPTextEncoder(TextEncoderBase):
    """open_clip text tower as a text encoder (same space as :class:`OpenCLIPImageEncoder`).

    Shapes:
        encode: N items -> x (N, embed_dim), mask (N,)
    """

    name = "open_clip_text"

    def __init__(self, arch: str = "ViT-B-32", checkpoint: str | None = None, template: str | None = None,
                 batch_size: int = 64, normalize: bool = True, hash_cache: str | Path | None = None,
                 device: str | torch.device | None = None) -> None:
        if not checkpoint:
            raise ValueError("open_clip_text encoder needs checkpoint=<file or pretrained tag> (encoders.image.checkpoint)")
        super().__init__(template, batch_size, normalize)
        self.device = torch.device(device or "cpu")
        self.arch, self.checkpoint, self.hash_cache = arch, str(checkpoint), hash_cache
        self._fp: str | None = None

    @property
    def dim(self) -> int:
        return embed_dim(load_open_clip(self.arch, self.checkpoint, self.device)[0])

    def fingerprint(self) -> str:
        if self._fp is None:
            self._fp = fingerprint_of({"encoder": "open_clip_text", "arch": self.arch,
                                       "weights": checkpoint_id(self.checkpoint, self.hash_cache),
                                       "normalize": self.normalize, "template": self.template})
        return self._fp

    def embed(self, texts: list[str], progress: bool) -> torch.Tensor:
        from tqdm.auto import tqdm

        model, _, tokenizer = load_open_clip(self.arch, self.checkpoint, self.device)
        out = []
        with torch.inference_mode():
            for s in tqdm(range(0, len(texts), self.batch_size), desc="open_clip texts", disable=not progress):
                tokens = tokenizer(texts[s:s + self.batch_size]).to(self.device)
                out.append(model.encode_text(tokens).float().cpu())
        return torch.cat(out)


register_encoder("open_clip", OpenCLIPImageEncoder)
register_encoder("open_clip_text", OpenCLIPTextEncoder)
