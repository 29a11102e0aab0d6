"""The encoder protocol, its result type, the registry and fingerprint helpers."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import pandas as pd
import torch

#: Per-item input status values. ``ok`` and ``converted``/``downscaled`` have features
#: (mask True); the others are masked out.
STATUS_WITH_FEATURES = ("ok", "converted", "downscaled")
STATUS_MISSING = ("missing", "empty")
STATUS_BAD = ("unreadable", "too_large")


@dataclass
class EncodeResult:
    """Output of :meth:`Encoder.encode` for N items.

    Attributes:
        x: float32 features; rows of items without this modality are zeros.
        mask: True where the item had a usable input.
        status: one status string per item (``ok``, ``converted``, ``downscaled``,
            ``missing``, ``empty``, ``unreadable``, ``too_large``).
        notes: per-item detail for non-ok items (e.g. ``"CMYK->RGB"``, the decode error).

    Shapes:
        x: (N, D); mask: (N,)
    """

    x: torch.Tensor
    mask: torch.Tensor
    status: list[str]
    notes: dict[int, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return dict(Counter(self.status))


@runtime_checkable
class Encoder(Protocol):
    """An item encoder for one modality.

    Attributes:
        name: registry name (``"minilm"``, ``"efficientnet_lite0"``, ...).
        modality: ``"text"`` or ``"image"``.
    """

    name: str
    modality: str

    @property
    def dim(self) -> int:
        """Output dimension D."""
        ...

    def fingerprint(self) -> str:
        """Short string identifying model, weights (file sha256 or tag), preprocessing, template."""
        ...

    def input_keys(self, items: pd.DataFrame) -> list[str]:
        """One string per item that changes whenever that item's input changes (for the store)."""
        ...

    def encode(self, items: pd.DataFrame, progress: bool = True) -> EncodeResult:
        """Encode every row of ``items``; never raises for a bad individual input."""
        ...


_REGISTRY: dict[str, Callable[..., Encoder]] = {}


def register_encoder(name: str, factory: Callable[..., Encoder] | None = None, *, overwrite: bool = False):
    """Register an encoder factory under ``name``; usable as ``@register_encoder("name")``."""

    def deco(f: Callable[..., Encoder]) -> Callable[..., Encoder]:
        if name in _REGISTRY and not overwrite and _REGISTRY[name] is not f:
            raise ValueError(f"encoder {name!r} is already registered ({_REGISTRY[name]!r})")
        _REGISTRY[name] = f
        return f

    return deco(factory) if factory is not None else deco


def build_encoder(name: str, **kwargs: Any) -> Encoder:
    """Instantiate a registered encoder; unknown names list the registered ones."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown encoder {name!r}; registered: {sorted(_REGISTRY)}")
    return _REGISTRY[name](**kwargs)


def list_encoders() -> list[str]:
    return sorted(_REGISTRY)


def fingerprint_of(spec: dict[str, Any]) -> str:
    """A 16-hex-digit hash of a JSON-serialisable description."""
    blob = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


_SHA_LOCK = threading.Lock()
_SHA_MEMO: dict[tuple, str] = {}


def file_sha256(path: str | Path, cache_file: str | Path | None = None) -> str:
    """sha256 of a file, memoised by (path, size, mtime) in memory and optionally in a JSON file."""
    path = Path(path).resolve()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _SHA_LOCK:
        if key in _SHA_MEMO:
            return _SHA_MEMO[key]
    disk: dict[str, str] = {}
    skey = "|".join(map(str, key))
    if cache_file is not None and Path(cache_file).exists():
        try:
            disk = json.loads(Path(cache_file).read_text())
        except (OSError, ValueError):
            disk = {}
        if skey in disk:
            with _SHA_LOCK:
                _SHA_MEMO[key] = disk[skey]
            return disk[skey]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    with _SHA_LOCK:
        _SHA_MEMO[key] = digest
    if cache_file is not None:
        disk[skey] = digest
        try:
            Path(cache_file).parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(f"{cache_file}.tmp{os.getpid()}")
            tmp.write_text(json.dumps(disk, indent=0))
            os.replace(tmp, cache_file)
        except OSError:
            pass  # the memo is an optimisation only
    return digest


def short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
