"""Fingerprinted feature store: one file per encoder fingerprint, rows keyed by item id + input key.

A file ``<modality>__<encoder>__<fingerprint>.pt`` holds every item ever encoded with that
fingerprint: ``item_ids``, per-item ``input_keys`` (text hash / image path+size+mtime),
``x``, ``mask``, ``status`` and metadata. A lookup reuses a row only when both the id and
its input key match, so new items, changed texts or replaced posters are re-encoded and
nothing else is. Writes go to a temporary file in the same directory, are fsynced, then
renamed over the target (atomic on POSIX): an interrupted run leaves either the old file or
the new one, and a stray temporary is never read. A file that fails to load or whose
contents do not match its name is ignored (and reported), never trusted.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class StoredFeatures:
    """All rows stored for one fingerprint.

    Shapes:
        x: (M, D); mask: (M,)
    """

    modality: str
    encoder: str
    fingerprint: str
    item_ids: list[str]
    input_keys: list[str]
    x: torch.Tensor
    mask: torch.Tensor
    status: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        m = len(self.item_ids)
        if not (len(self.input_keys) == len(self.status) == m and self.x.dim() == 2 and self.x.shape[0] == m
                and tuple(self.mask.shape) == (m,)):
            raise ValueError(f"inconsistent stored features for {self.encoder} {self.fingerprint}")
        if len(set(self.item_ids)) != m:
            raise ValueError(f"duplicate item ids in stored features for {self.encoder} {self.fingerprint}")


class FeatureStore:
    """Directory of fingerprinted feature files.

    Args:
        root: cache directory (created on first write).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, modality: str, encoder: str, fingerprint: str) -> Path:
        return self.root / f"{modality}__{encoder}__{fingerprint}.pt"

    def load(self, modality: str, encoder: str, fingerprint: str) -> tuple[StoredFeatures | None, str | None]:
        """The stored rows for a fingerprint, or ``(None, reason)`` if absent or untrustworthy."""
        p = self.path(modality, encoder, fingerprint)
        if not p.exists():
            return None, None
        try:
            blob = torch.load(p, map_location="cpu", weights_only=True)
            if blob.get("format_version") != FORMAT_VERSION or blob.get("fingerprint") != fingerprint:
                raise ValueError(f"format/fingerprint mismatch in {p.name}")
            sf = StoredFeatures(modality, encoder, fingerprint, list(blob["item_ids"]), list(blob["input_keys"]),
                                blob["x"].float(), blob["mask"].bool(), list(blob["status"]), dict(blob.get("meta", {})))
            sf.check()
            return sf, None
        except Exception as exc:  # noqa: BLE001 - any unreadable cache file is simply not trusted
            log.warning("ignoring unreadable feature cache %s: %s", p, exc)
            return None, f"{p.name}: {type(exc).__name__}: {exc}"

    def save(self, sf: StoredFeatures) -> Path:
        """Atomically write ``sf`` (plus a human-readable ``.json`` sidecar of its metadata)."""
        sf.check()
        self.root.mkdir(parents=True, exist_ok=True)
        p = self.path(sf.modality, sf.encoder, sf.fingerprint)
        blob = {"format_version": FORMAT_VERSION, "fingerprint": sf.fingerprint, "modality": sf.modality,
                "encoder": sf.encoder, "item_ids": list(sf.item_ids), "input_keys": list(sf.input_keys),
                "x": sf.x.float().contiguous(), "mask": sf.mask.bool().contiguous(), "status": list(sf.status),
                "meta": _plain(sf.meta)}
        _atomic_write(p, lambda f: torch.save(blob, f))
        side = {k: v for k, v in blob.items() if k not in ("x", "mask", "item_ids", "input_keys", "status")}
        side.update(num_items=len(sf.item_ids), dim=int(sf.x.shape[1]))
        _atomic_write(p.with_suffix(".json"), lambda f: f.write(json.dumps(side, indent=2, default=str).encode()))
        return p


def _plain(obj: Any) -> Any:
    """Meta restricted to JSON-like types (loadable with ``weights_only=True``)."""
    return json.loads(json.dumps(obj, default=str))


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
