"""Deterministic fake encoders and a synthetic items table with every kind of bad image.

``FakeTextEncoder`` ("fake_text"): hashed bag of words, so texts that share words are near.
``FakeImageEncoder`` ("fake_image"): the real decode / convert / worker-pool path, then a
fixed 2x2 colour pooling instead of a network. Both count what they encode (``calls``,
``encoded``) so tests can check that the feature store re-encodes only what it must.
Importing this module registers both names (idempotently).
"""

from __future__ import annotations

import hashlib
import inspect
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from graphrec.encoders.base import fingerprint_of, register_encoder
from graphrec.encoders.images import ImageEncoderBase, resize_center_crop
from graphrec.encoders.text import TextEncoderBase


class FakeTextEncoder(TextEncoderBase):
    """Hashed bag-of-words text encoder.

    Shapes:
        encode: N items -> x (N, dim), mask (N,)
    """

    name = "fake_text"

    def __init__(self, template: str | None = None, batch_size: int = 64, normalize: bool = True, dim: int = 32,
                 version: str = "v1") -> None:
        super().__init__(template, batch_size, normalize)
        self._dim, self.version = dim, version
        self.calls = 0
        self.encoded = 0

    @property
    def dim(self) -> int:
        return self._dim

    def fingerprint(self) -> str:
        return fingerprint_of({"encoder": "fake_text", "dim": self._dim, "version": self.version,
                               "template": self.template, "normalize": self.normalize})

    def embed(self, texts: list[str], progress: bool) -> torch.Tensor:
        self.calls += 1
        self.encoded += len(texts)
        out = torch.zeros(len(texts), self._dim)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self._dim] += 1.0
        return out


class FakeImageEncoder(ImageEncoderBase):
    """Real decoding and preprocessing, then mean colour of each 2x2 quadrant (12-d).

    Shapes:
        forward: (B, 3, 8, 8) -> (B, 12)
    """

    name = "fake_image"
    input_size = 8

    def __init__(self, batch_size: int = 4, num_workers: int = 2, max_pixels: int = 50_000_000,
                 normalize: bool | None = None) -> None:
        super().__init__(batch_size, num_workers, max_pixels, bool(normalize))
        self.calls = 0
        self.encoded = 0

    @property
    def dim(self) -> int:
        return 12

    def fingerprint(self) -> str:
        return fingerprint_of({"encoder": "fake_image", "normalize": self.normalize})

    def preprocess(self, img: Any) -> torch.Tensor:
        return torch.from_numpy(resize_center_crop(img, 8, 8).astype(np.float32) / 255.0).permute(2, 0, 1)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.encoded += batch.shape[0]
        return torch.nn.functional.avg_pool2d(batch, 4).flatten(1)  # (B, 3*2*2)


#: The last instances built through the registry (tests inspect their counters).
LAST: dict[str, Any] = {}


def _make_text(**kw: Any) -> FakeTextEncoder:
    LAST["fake_text"] = FakeTextEncoder(**kw)
    return LAST["fake_text"]


def _make_image(**kw: Any) -> FakeImageEncoder:
    LAST["fake_image"] = FakeImageEncoder(**kw)
    return LAST["fake_image"]


# the pipeline passes only the options a factory's signature names
_make_text.__signature__ = inspect.signature(FakeTextEncoder)  # type: ignore[attr-defined]
_make_image.__signature__ = inspect.signature(FakeImageEncoder)  # type: ignore[attr-defined]
register_encoder("fake_text", _make_text, overwrite=True)
register_encoder("fake_image", _make_image, overwrite=True)


def fake_config(**overrides: Any):
    """EncodersConfig using the fake encoders (``text.template`` etc. via dotted overrides)."""
    from graphrec.encoders.config import EncodersConfig

    cfg = EncodersConfig.from_dict({"text": {"name": "fake_text"}, "image": {"name": "fake_image"}, "num_workers": 2})
    return cfg.with_overrides(overrides) if overrides else cfg


def write_images(root: Path) -> dict[str, str]:
    """Small image files of every kind the encoders must handle; name -> path ('' = no path)."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths: dict[str, str] = {}

    def rgb(w: int, h: int, seed: int) -> Image.Image:
        r = np.random.default_rng(seed)
        base = r.integers(0, 255, size=(1, 1, 3))
        arr = np.clip(base + r.integers(-20, 20, size=(h, w, 3)), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "RGB")

    for k in range(3):
        p = root / f"ok{k}.jpg"
        rgb(30, 45, k).save(p, quality=90)
        paths[f"ok{k}"] = str(p)
    rgb(30, 45, 10).convert("L").save(root / "gray.jpg")
    paths["gray"] = str(root / "gray.jpg")
    rgb(30, 45, 11).convert("CMYK").save(root / "cmyk.jpg")
    paths["cmyk"] = str(root / "cmyk.jpg")
    im = rgb(30, 45, 12).convert("RGBA")
    im.putalpha(128)
    im.save(root / "rgba.png")
    paths["rgba"] = str(root / "rgba.png")
    rgb(30, 45, 13).convert("P").save(root / "palette.png")
    paths["palette"] = str(root / "palette.png")
    Image.fromarray((rng.integers(0, 65535, size=(20, 20))).astype(np.uint16)).save(root / "i16.png")
    paths["i16"] = str(root / "i16.png")
    rgb(300, 200, 14).save(root / "huge.jpg", quality=80)  # > max_pixels in the tests' config
    paths["huge"] = str(root / "huge.jpg")
    rgb(120, 100, 15).save(root / "big.jpg", quality=80)  # > 4x the fake input size: drafted
    paths["big"] = str(root / "big.jpg")
    full = (root / "ok0.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(full[: len(full) // 2])
    paths["truncated"] = str(root / "truncated.jpg")
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg" + bytes(rng.integers(0, 255, 200, dtype=np.uint8)))
    paths["corrupt"] = str(root / "corrupt.jpg")
    (root / "empty.jpg").write_bytes(b"")
    paths["emptyfile"] = str(root / "empty.jpg")
    paths["nofile"] = str(root / "does_not_exist.jpg")
    paths["nopath"] = ""
    return paths


#: Expected image status per kind (with ``image.max_pixels`` = 20000).
EXPECTED_STATUS = {
    "ok0": "ok", "ok1": "ok", "ok2": "ok", "gray": "converted", "cmyk": "converted", "rgba": "converted",
    "palette": "converted", "i16": "converted", "huge": "too_large", "big": "downscaled", "truncated": "unreadable",
    "corrupt": "unreadable", "emptyfile": "unreadable", "nofile": "missing", "nopath": "missing",
}


def make_items(root: Path) -> pd.DataFrame:
    """An ml1m-mm-like items table (string ids) whose images cover every bad-input case."""
    paths = write_images(root)
    rows = []
    words = ["space alien invasion", "romantic comedy wedding", "space station alien crew", "cartoon toys friends"]
    for k, (kind, p) in enumerate(paths.items()):
        rows.append({
            "item_id": f"m{k}", "title": f"Film {kind}", "text": f"Film {kind}. {words[k % 4]}",
            "image_path": p if p else np.nan, "genres": "Drama|Comedy" if k % 2 else "",
            "plot": words[k % 4] if kind != "ok2" else "", "director": "Someone" if k % 3 else "",
            "actors": "A, B", "year": "1999", "kind": kind,
        })
    df = pd.DataFrame(rows)
    df.loc[df.kind == "ok2", ["title", "genres", "plot", "director", "actors"]] = ""  # nothing to say: empty text
    return df
