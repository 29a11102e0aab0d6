"""Image decoding, preprocessing in a worker pool, and the shared image-encoder loop.

Every bad input is handled and named: a missing file or empty path (``missing``), a corrupt
or truncated file (``unreadable``), more than ``max_pixels`` pixels (``too_large``), a
non-RGB mode such as L, CMYK, RGBA, P or I;16 (``converted`` to RGB; transparency composited
on white), a JPEG far larger than the model input (``downscaled`` while decoding).
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from graphrec.encoders.base import EncodeResult, file_sha256

log = logging.getLogger(__name__)


def image_path_of(value: Any) -> str:
    """The cleaned ``image_path`` cell ('' for empty/NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    s = str(value).strip()
    return "" if s.lower() in ("nan", "none") else s


def image_input_key(path: str) -> str:
    """Changes when the file's bytes change (size + content hash); 'missing' if absent.

    The path and mtime are not part of the key: moving or re-copying a data set keeps its
    cached image embeddings, editing an image re-encodes it.
    """
    if not path:
        return "missing"
    try:
        size = os.stat(path).st_size
        return f"{size}|{file_sha256(path)[:20]}"
    except OSError:
        return "missing"


def load_rgb(path: str, max_pixels: int, min_side: int = 224) -> tuple[Any, str, str]:
    """Decode an image file into an RGB PIL image.

    Args:
        path: file path ('' = no image).
        max_pixels: refuse images with more pixels (decompression bombs, scans).
        min_side: JPEGs whose shorter side exceeds 4x this are decoded at reduced scale.

    Returns:
        ``(image or None, status, note)`` with status one of ok, converted, downscaled,
        missing, unreadable, too_large.
    """
    from PIL import Image

    if not path:
        return None, "missing", "no image_path"
    if not os.path.isfile(path):
        return None, "missing", f"file not found: {path}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    return None, "too_large", f"{w}x{h} pixels > max_pixels={max_pixels}"
                status, note = "ok", ""
                if im.format == "JPEG" and min(w, h) > 4 * min_side:
                    im.draft("RGB", (2 * min_side, 2 * min_side))
                    status, note = "downscaled", f"{w}x{h} decoded at {im.size[0]}x{im.size[1]}"
                im.load()
                mode = im.mode
                if mode != "RGB":
                    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
                        rgba = im.convert("RGBA")
                        out = Image.new("RGB", rgba.size, (255, 255, 255))
                        out.paste(rgba, mask=rgba.getchannel("A"))
                    elif mode.startswith("I;16") or mode in ("I", "F"):
                        arr = np.asarray(im, dtype=np.float64)
                        lo, hi = float(arr.min()), float(arr.max())
                        arr = (arr - lo) / (hi - lo or 1.0) * 255.0
                        out = Image.fromarray(arr.astype(np.uint8)).convert("RGB")
                    else:
                        out = im.convert("RGB")
                    return out, "converted", f"{mode}->RGB" + (f"; {note}" if note else "")
                return im.copy(), status, note
    except Image.DecompressionBombError as exc:
        return None, "too_large", str(exc)
    except (OSError, SyntaxError, ValueError, Image.UnidentifiedImageError) as exc:
        return None, "unreadable", f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a bad file must never crash a run
        return None, "unreadable", f"{type(exc).__name__}: {exc}"


def resize_center_crop(img: Any, resize: int, crop: int) -> np.ndarray:
    """Shorter side to ``resize`` (bilinear), centre crop ``crop`` x ``crop``; uint8 (crop, crop, 3)."""
    from PIL import Image

    w, h = img.size
    s = resize / min(w, h)
    nw, nh = max(crop, round(w * s)), max(crop, round(h * s))
    # crop box in source coordinates, so resizing and cropping are one resample
    left, top = (nw - crop) / 2 / s, (nh - crop) / 2 / s
    box = (left, top, left + crop / s, top + crop / s)
    out = img.resize((crop, crop), Image.BILINEAR, box=box)
    return np.asarray(out, dtype=np.uint8)


class ImageEncoderBase:
    """Shared image loop: decode + preprocess in a thread pool, batched forward, masking.

    Subclasses define ``preprocess(PIL RGB image) -> (3, H, W) float tensor``,
    ``forward(batch (B, 3, H, W)) -> (B, D)``, ``dim``, ``fingerprint()`` and ``input_size``.
    """

    modality = "image"
    name = "image"
    input_size = 224

    def __init__(self, batch_size: int = 8, num_workers: int = 2, max_pixels: int = 50_000_000,
                 normalize: bool = False, device: str | torch.device | None = None) -> None:
        self.device = torch.device(device or "cpu")  # batches go there; outputs come back to the CPU
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.max_pixels = max_pixels
        self.normalize = normalize

    # --- interface for subclasses -------------------------------------------------
    def preprocess(self, img: Any) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def forward(self, batch: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------
    def paths(self, items: pd.DataFrame) -> list[str]:
        if "image_path" not in items.columns:
            raise ValueError(f"items table has no `image_path` column; columns: {list(items.columns)}")
        return [image_path_of(v) for v in items["image_path"].tolist()]

    def input_keys(self, items: pd.DataFrame) -> list[str]:
        return [image_input_key(p) for p in self.paths(items)]

    def load_one(self, path: str) -> tuple[torch.Tensor | None, str, str]:
        """Decode + preprocess one file; never raises."""
        img, status, note = load_rgb(path, self.max_pixels, self.input_size)
        if img is None:
            return None, status, note
        try:
            return self.preprocess(img), status, note
        except Exception as exc:  # noqa: BLE001
            return None, "unreadable", f"preprocess failed: {type(exc).__name__}: {exc}"

    def iter_batches(self, paths: list[str], progress: bool = False):
        """Yield ``(start, [(tensor|None, status, note)...])`` per batch, decoding ahead in threads."""
        from tqdm.auto import tqdm

        bs = self.batch_size
        starts = list(range(0, len(paths), bs))
        bar = tqdm(total=len(paths), desc=f"{self.name} images", unit="img", disable=not progress)
        if self.num_workers <= 0:
            for s in starts:
                yield s, [self.load_one(p) for p in paths[s:s + bs]]
                bar.update(min(bs, len(paths) - s))
            bar.close()
            return
        ahead = max(2, 2 * self.num_workers)  # batches decoded ahead of the model
        with ThreadPoolExecutor(self.num_workers, thread_name_prefix="graphrec-img") as pool:
            queue: deque[tuple[int, list[Future]]] = deque()
            it = iter(starts)
            for s in it:
                queue.append((s, [pool.submit(self.load_one, p) for p in paths[s:s + bs]]))
                if len(queue) >= ahead:
                    break
            while queue:
                s, futs = queue.popleft()
                nxt = next(it, None)
                if nxt is not None:
                    queue.append((nxt, [pool.submit(self.load_one, p) for p in paths[nxt:nxt + bs]]))
                yield s, [f.result() for f in futs]
                bar.update(len(futs))
        bar.close()

    def encode(self, items: pd.DataFrame, progress: bool = True) -> EncodeResult:
        paths = self.paths(items)
        n = len(paths)
        x = torch.zeros(n, self.dim)
        status = ["missing"] * n
        notes: dict[int, str] = {}
        for s, loaded in self.iter_batches(paths, progress):
            ok = [(s + j, t) for j, (t, st, note) in enumerate(loaded) if t is not None]
            for j, (t, st, note) in enumerate(loaded):
                status[s + j] = st
                if note:
                    notes[s + j] = note
            if ok:
                with torch.inference_mode():
                    out = self.forward(torch.stack([t for _, t in ok]).to(self.device)).float().cpu()
                if self.normalize:
                    out = torch.nn.functional.normalize(out, dim=-1)
                x[torch.tensor([i for i, _ in ok])] = out
        mask = torch.tensor([st in ("ok", "converted", "downscaled") for st in status], dtype=torch.bool)
        return EncodeResult(x, mask, status, notes)
