"""Encoding in this process: config -> encoders -> feature store -> :class:`ItemFeatures` + encode report.

:func:`encode_items_local` encodes every enabled modality; :func:`encode_modality` is one
modality's store lookup, encoding of the missing rows (in this process, or through a ``compute``
the Ray engine supplies) and merged write. :func:`graphrec.encoders.engine.encode_items` picks the
engine; this module does not know the Ray engine (which builds on it).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch

from graphrec.config_base import ConfigError
from graphrec.data.features import ItemFeatures
from graphrec.encoders.base import _REGISTRY, EncodeResult, Encoder, build_encoder
from graphrec.encoders.config import EncodersConfig
from graphrec.encoders.store import FeatureStore, StoredFeatures, now_iso

log = logging.getLogger(__name__)

MAX_EXAMPLES = 5  # per status


def _supported(factory: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in params}


def encoder_name(modality: str, cfg: EncodersConfig) -> str:
    return cfg.text.name if modality == "text" else cfg.image.resolved_name


def encoder_from_config(modality: str, cfg: EncodersConfig, hash_cache: str | Path | None = None,
                        device: str | torch.device | None = None) -> Encoder:
    """Build the configured encoder of ``modality``; extra options an encoder does not take are not passed.

    ``device`` (a resolved device, :func:`graphrec.devices.resolve_device`; None = CPU) is where
    the encoder's network runs; it is not part of the fingerprint (features are the same up to
    float rounding on every device, so the feature store is shared)."""
    name = encoder_name(modality, cfg)
    if name not in _REGISTRY:
        raise ConfigError(f"encoders.{modality}.name: unknown encoder {name!r}; registered: {sorted(_REGISTRY)}")
    common = {"batch_size": cfg.batch_size_for(modality), "hash_cache": hash_cache,
              "arch": cfg.image.arch, "checkpoint": cfg.image.checkpoint}
    if device is not None:
        common["device"] = device
    if modality == "text":
        kw = {**common, "model": cfg.text.model, "template": cfg.text.template, "normalize": cfg.text.normalize,
              "max_seq_length": cfg.text.max_seq_length, "precision": cfg.text.precision}
    else:
        kw = {**common, "weights": cfg.image.weights, "num_workers": cfg.num_workers,
              "max_pixels": cfg.image.max_pixels, "normalize": cfg.image.normalize}
    passed = _supported(_REGISTRY[name], kw)
    if modality == "text" and cfg.text.precision != "fp32" and "precision" not in passed:
        raise ConfigError(f"encoders.text.precision: {cfg.text.precision!r} is supported by the sentence-transformers "
                          f"encoders (minilm, mpnet, sentence_transformers), not by {name!r}; use fp32")
    return build_encoder(name, **passed)


def check_items(items: pd.DataFrame) -> list[str]:
    """Item ids as strings; raises ValueError naming the row of a missing or duplicate id."""
    if "item_id" not in items.columns:
        raise ValueError(f"items table has no `item_id` column; columns: {list(items.columns)}")
    ids = ["" if pd.isna(v) else str(v).strip() for v in items["item_id"].tolist()]
    seen: dict[str, int] = {}
    for row, i in enumerate(ids):
        if not i:
            raise ValueError(f"items table row {row}: empty item_id")
        if i in seen:
            raise ValueError(f"items table row {row}: duplicate item_id {i!r} (first at row {seen[i]})")
        seen[i] = row
    return ids


def encode_modality(items: pd.DataFrame, ids: list[str], modality: str, encoder: Encoder, registry_name: str,
                    store: FeatureStore, progress: bool = True,
                    compute: Callable[[pd.DataFrame, bool], EncodeResult] | None = None) -> tuple[ItemFeatures, dict[str, Any]]:
    """Load what the store has for ``encoder``'s fingerprint, encode only the rest, save, align to ``ids``.

    ``compute(rows, progress)`` encodes the rows the store lacks (default: ``encoder.encode`` in this
    process; the Ray engine passes a distributed one). It is not called when nothing is missing.
    """
    t0 = time.perf_counter()
    fp = encoder.fingerprint()
    keys = encoder.input_keys(items)
    stored, ignored = store.load(modality, registry_name, fp)
    pos = {i: k for k, i in enumerate(stored.item_ids)} if stored is not None else {}
    reuse = [stored is not None and i in pos and stored.input_keys[pos[i]] == key for i, key in zip(ids, keys)]
    todo = [r for r, ok in enumerate(reuse) if not ok]
    notes: dict[str, str] = dict(stored.meta.get("notes", {})) if stored is not None else {}
    new = _encode_missing(items, ids, todo, encoder, registry_name, notes, progress, compute) if todo else None
    x, mask, status = _align(ids, stored, pos, reuse, todo, new)
    changed = new is not None
    created = stored.meta.get("created_at") if stored is not None and not changed else now_iso()
    path = store.path(modality, registry_name, fp)
    if changed:
        meta = {"encoder": registry_name, "encoder_class": type(encoder).__name__, "modality": modality,
                "fingerprint": fp, "dim": int(x.shape[1]), "created_at": created,
                "text_source": getattr(encoder, "last_text_info", None) or None}
        requested = StoredFeatures(modality, registry_name, fp, list(ids), list(keys), x, mask, status, meta)
        path = _save_merged(store, stored, requested, notes)
    report = _modality_report(ids, registry_name, fp, x, mask, status, notes, todo, path, t0)
    if ignored:
        report["cache_ignored"] = ignored
    if modality == "text":
        info = getattr(encoder, "last_text_info", None)
        if info:
            report["text_source"] = info
    meta = {k: report[k] for k in ("encoder", "dim", "missing", "unreadable", "converted", "counts", "cache_file")}
    meta["created_at"] = created
    feats = ItemFeatures(modality, list(ids), x, mask, fp, meta)
    return feats, report


def _encode_missing(items: pd.DataFrame, ids: list[str], todo: list[int], encoder: Encoder, registry_name: str,
                    notes: dict[str, str], progress: bool,
                    compute: Callable[[pd.DataFrame, bool], EncodeResult] | None) -> EncodeResult:
    """Encode rows ``todo`` of ``items``; their notes replace the stored ones in ``notes`` (in place)."""
    res = (compute or encoder.encode)(items.iloc[todo].reset_index(drop=True), progress)
    if res.x.shape[0] != len(todo) or res.mask.shape != (len(todo),) or len(res.status) != len(todo):
        raise RuntimeError(f"encoder {registry_name} returned {tuple(res.x.shape)} for {len(todo)} items")
    for j, r in enumerate(todo):
        notes.pop(ids[r], None)
        if j in res.notes:
            notes[ids[r]] = res.notes[j]
    return EncodeResult(res.x.float(), res.mask.bool(), list(res.status), res.notes)


def _align(ids: list[str], stored: StoredFeatures | None, pos: dict[str, int], reuse: list[bool], todo: list[int],
           new: EncodeResult | None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Features, mask and status in ``ids`` order: reused rows from the store, the others from ``new``."""
    n = len(ids)
    dim = int(new.x.shape[1]) if new is not None else int(stored.x.shape[1])
    x = torch.zeros(n, dim)
    mask = torch.zeros(n, dtype=torch.bool)
    status = [""] * n
    if stored is not None:
        rows = [r for r, ok in enumerate(reuse) if ok]
        if rows:
            src = torch.tensor([pos[ids[r]] for r in rows])
            x[rows] = stored.x[src]
            mask[rows] = stored.mask[src]
            for r in rows:
                status[r] = stored.status[pos[ids[r]]]
    if new is not None:
        x[todo] = new.x
        mask[todo] = new.mask
        for j, r in enumerate(todo):
            status[r] = new.status[j]
    return x, mask, status


def _save_merged(store: FeatureStore, stored: StoredFeatures | None, requested: StoredFeatures,
                 notes: dict[str, str]) -> Path:
    """Write one file: the stored rows not asked for now + the ``requested`` rows (``ids`` order)."""
    asked = set(requested.item_ids)
    keep_old = [k for k, i in enumerate(stored.item_ids) if i not in asked] if stored is not None else []
    all_ids = [stored.item_ids[k] for k in keep_old] + requested.item_ids
    all_keys = [stored.input_keys[k] for k in keep_old] + requested.input_keys
    all_x = torch.cat([stored.x[keep_old], requested.x]) if keep_old else requested.x
    all_mask = torch.cat([stored.mask[keep_old], requested.mask]) if keep_old else requested.mask
    all_status = [stored.status[k] for k in keep_old] + requested.status
    m = requested.meta
    meta = {"encoder": m["encoder"], "encoder_class": m["encoder_class"], "modality": m["modality"],
            "fingerprint": m["fingerprint"], "dim": m["dim"], "num_items": len(all_ids),
            "counts": dict(Counter(all_status)), "created_at": m["created_at"],
            "notes": {i: notes[i] for i in all_ids if i in notes}, "text_source": m["text_source"]}
    return store.save(StoredFeatures(requested.modality, requested.encoder, requested.fingerprint, all_ids, all_keys,
                                     all_x, all_mask, all_status, meta))


def _modality_report(ids: list[str], registry_name: str, fp: str, x: torch.Tensor, mask: torch.Tensor,
                     status: list[str], notes: dict[str, str], todo: list[int], path: Path, t0: float) -> dict[str, Any]:
    """Counts by status (up to :data:`MAX_EXAMPLES` examples each), cache use and seconds of one modality."""
    n = len(ids)
    counts = dict(Counter(status))
    examples: dict[str, list[dict[str, str]]] = {}
    for r in range(n):
        if status[r] != "ok" and len(examples.setdefault(status[r], [])) < MAX_EXAMPLES:
            examples[status[r]].append({"item_id": ids[r], "note": notes.get(ids[r], "")})
    return {
        "encoder": registry_name, "fingerprint": fp, "dim": int(x.shape[1]), "items": n,
        "with_features": int(mask.sum()),
        "missing": counts.get("missing", 0) + counts.get("empty", 0),
        "unreadable": counts.get("unreadable", 0) + counts.get("too_large", 0),
        "converted": counts.get("converted", 0) + counts.get("downscaled", 0),
        "counts": counts, "cache_hits": n - len(todo), "encoded": len(todo),
        "cache": "hit" if not todo else ("partial" if len(todo) < n else "miss"),
        "cache_file": str(path), "examples": examples, "seconds": round(time.perf_counter() - t0, 3),
    }


def encode_items_local(items: pd.DataFrame, cfg: EncodersConfig, cache_dir: str | Path, progress: bool = True,
                       compute_for: Callable[[str, Encoder, str], Callable[[pd.DataFrame, bool], EncodeResult]] | None = None,
                       device: str | torch.device | None = None) -> tuple[dict[str, ItemFeatures], dict[str, Any]]:
    """:func:`~graphrec.encoders.engine.encode_items` in this process; ``compute_for(modality, encoder, registry_name)`` may
    supply the function that encodes the missing rows (see :func:`encode_modality`)."""
    t0 = time.perf_counter()
    ids = check_items(items)
    store = FeatureStore(cache_dir)
    hash_cache = Path(cache_dir) / ".sha256.json"
    prev_threads = torch.get_num_threads()
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    features: dict[str, ItemFeatures] = {}
    report: dict[str, Any] = {"items": len(ids), "cache_dir": str(cache_dir), "modalities": {}}
    try:
        for modality in cfg.enabled:
            enc = encoder_from_config(modality, cfg, hash_cache, device)
            name = encoder_name(modality, cfg)
            compute = compute_for(modality, enc, name) if compute_for is not None else None
            feats, rep = encode_modality(items, ids, modality, enc, name, store, progress, compute)
            features[modality] = feats
            report["modalities"][modality] = rep
            log.info("%s: %d/%d items with features (%s), cache %s, %.1fs", modality, rep["with_features"],
                     rep["items"], rep["counts"], rep["cache"], rep["seconds"])
    finally:
        if cfg.num_threads > 0:
            torch.set_num_threads(prev_threads)
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return features, report
